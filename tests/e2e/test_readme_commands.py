"""The README's commands beside `make up`: `make demo` fills the gallery, `make down` stops everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.rabbit import REPO_ROOT, wait_for
from tests.stack import Stack, leftover_processes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEMO_PHOTOS = 6


def stack_command(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """``deploy/local/stack.py`` as the Makefile runs it, with the stack's settings."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "deploy" / "local" / "stack.py"), *args],
        env=stack.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_photos_are_collected_and_down_stops_every_process(stack: Stack, corpus: Path) -> None:
    demo = stack_command(stack, "demo", "--count", str(DEMO_PHOTOS))
    assert demo.returncode == 0 and f"dropped {DEMO_PHOTOS} photos" in demo.stdout, demo.stdout + demo.stderr
    dropped = [p for p in stack.inbox.rglob("*") if p.is_file()]
    assert len(dropped) == DEMO_PHOTOS
    wait_for(lambda: stack.api("/api/stats")["Collected"] == DEMO_PHOTOS, 120, "the demo photos collected")
    assert not any(p.exists() for p in dropped)

    down = stack_command(stack, "down")
    assert down.returncode == 0 and "dp3: stopped" in down.stdout, down.stdout + down.stderr
    assert stack.process is not None
    assert stack.process.wait(30) == 0, stack.tail_logs()  # `make up` in the foreground returns, cleanly
    assert leftover_processes(stack.home) == []
    again = stack_command(stack, "down")
    assert again.returncode == 0 and "no stack is running" in again.stdout
