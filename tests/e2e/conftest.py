from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rabbit import create_vhost, delete_vhost
from tests.stack import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The one-machine stack (make up) in a temporary home and vhost; stopped and checked after."""
    vhost, url = create_vhost("dp3-e2e")
    running = Stack(tmp_path / "home", url)
    try:
        running.start()
        yield running
    except BaseException:
        print(running.tail_logs(60))
        raise
    finally:
        try:
            running.stop()
        finally:
            delete_vhost(vhost)
