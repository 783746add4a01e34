from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import Stack, running_stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The one-machine stack (make up) in a temporary home and vhost; stopped and checked after."""
    with running_stack(tmp_path / "home", "dp3-e2e") as (running, _vhost):
        yield running
