from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.stack import Stack, running_stack

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

    def start(
        extra_env: dict[str, str] | None = None, before_start: Callable[[Path], None] | None = None
    ) -> AbstractContextManager[tuple[Stack, str]]:
        def prepare(running: Stack) -> None:
            # The portal's status page shows the workers and the stores' health from these.
            for service in ("dispatcher", "archiver"):
                running.env[f"DP3_{service.upper()}_METRICS_URL"] = (
                    f"http://127.0.0.1:{running.metrics_ports[service]}/metrics"
                )
            if before_start is not None:
                before_start(running.home)

        return running_stack(tmp_path / "home", "dp3-chaos", {**CHAOS_ENV, **(extra_env or {})}, prepare, 80)

    return start
