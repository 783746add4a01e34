from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tests.rabbit import create_vhost, delete_vhost
from tests.stack import Stack

CHAOS_ENV = {
    # Lost messages are healed by the scanner's re-drive of files still in the inbox: keep it
    # short so healing happens within the test (production: 10 minutes, doubling).
    "DP3_REDRIVE_SECONDS": "20",
    "DP3_REDRIVE_MAX_SECONDS": "40",
    # A photo held back by a store comes back quickly once the store is fine again.
    "DP3_RETRY_DELAYS": "1,2,4",
}

StackFactory = Callable[..., AbstractContextManager[tuple[Stack, str]]]


@pytest.fixture
def chaos_stack(tmp_path: Path) -> StackFactory:
    """Starts the stack (make up) with the chaos settings; yields (stack, vhost); stopped and checked after."""

    @contextmanager
    def start(
        extra_env: dict[str, str] | None = None, before_start: Callable[[Path], None] | None = None
    ) -> Iterator[tuple[Stack, str]]:
        vhost, url = create_vhost("dp3-chaos")
        running = Stack(tmp_path / "home", url, {**CHAOS_ENV, **(extra_env or {})})
        # The portal's status page shows the workers and the stores' health from these.
        for service in ("dispatcher", "archiver"):
            running.env[f"DP3_{service.upper()}_METRICS_URL"] = (
                f"http://127.0.0.1:{running.metrics_ports[service]}/metrics"
            )
        try:
            if before_start is not None:
                before_start(running.home)
            running.start()
            yield running, vhost
        except BaseException:
            print(running.tail_logs(80))
            raise
        finally:
            try:
                running.stop()
            finally:
                delete_vhost(vhost)

    return start
