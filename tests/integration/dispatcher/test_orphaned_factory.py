"""A SIGKILLed dispatcher's factory and workers are reaped by the next dispatcher; a live one's are not.

Found by the chaos test (tests/chaos): after the dispatcher was SIGKILLed its
work_queue_factory, reparented to init, kept running with its workers for
minutes, beyond DP3_WORKERS_MAX, and outlived ``make down``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dp3.workqueue import Manager
from dp3_dispatcher.orphans import FACTORY, reap_orphaned_factories
from dp3_dispatcher.runner import TaskRunner
from dp3_dispatcher.workers import FactoryConfig, WorkerFactory
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration

DISPATCHER = """
import sys, time
from pathlib import Path
from dp3_dispatcher.workers import FactoryConfig, WorkerFactory
config = FactoryConfig(
    batch="local", manager_host="127.0.0.1", manager_port=int(sys.argv[2]),
    workers_min=1, workers_max=1, idle_timeout=300, scratch=Path(sys.argv[1]),
)
WorkerFactory(config).ensure_running()
print("started", flush=True)
time.sleep(600)
"""


def sessions_under(scratch: Path) -> dict[int, list[int]]:
    """Factory session id -> every live process in it, for factories working in ``scratch``."""
    stats: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                stats[int(entry.name)] = (fields[0], int(fields[3]))
    sessions: dict[int, list[int]] = {}
    for pid, (_, session) in stats.items():
        if pid != session:
            continue
        try:
            argv0 = Path((Path(f"/proc/{pid}") / "cmdline").read_bytes().split(b"\0")[0].decode()).name
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue
        if argv0 == FACTORY and cwd.parent == scratch.resolve():
            sessions[pid] = [p for p, (_, s) in stats.items() if s == session]
    return sessions


@pytest.mark.skipif(
    os.environ.get("CI") == "true",
    reason="known failure in CI's full sequential run (the live factory not seen in time), passes alone; "
    "see the note on issue 9",
)
def test_a_killed_dispatchers_factory_and_workers_are_reaped(tmp_path: Path) -> None:
    scratch = tmp_path / "work-queue"
    manager = Manager(0)
    runner = TaskRunner(manager)  # answers the factories' status queries
    runner.start()
    live: WorkerFactory | None = None
    dead = subprocess.Popen(
        [sys.executable, "-c", DISPATCHER, str(scratch), str(manager.port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert dead.stdout is not None and dead.stdout.readline().strip() == "started"
        wait_for(lambda: any(len(p) >= 2 for p in sessions_under(scratch).values()), 30, "the factory and its worker")
        [(orphan, members)] = list(sessions_under(scratch).items())
        os.kill(dead.pid, signal.SIGKILL)  # the dispatcher dies; its factory and worker stay
        dead.wait(10)
        orphan_folder = Path(os.readlink(f"/proc/{orphan}/cwd"))

        # The restarted dispatcher's own factory, in the same scratch folder, must survive the reaping.
        live = WorkerFactory(
            FactoryConfig(
                batch="local",
                manager_host="127.0.0.1",
                manager_port=manager.port,
                workers_min=0,
                workers_max=1,
                idle_timeout=300,
                scratch=scratch,
            )
        )
        live.ensure_running()
        wait_for(lambda: len(sessions_under(scratch)) == 2, 120, "the live factory")

        assert all(Path(f"/proc/{pid}").exists() for pid in members)  # still there before reaping
        killed = reap_orphaned_factories(scratch)

        assert killed >= 2  # the factory and its worker at least
        left = sessions_under(scratch)
        assert orphan not in left and list(left) == [live.pid], left
        assert not any(Path(f"/proc/{pid}").exists() and _not_zombie(pid) for pid in members)
        assert not orphan_folder.exists()
        assert live.running and Path(os.readlink(f"/proc/{live.pid}/cwd")).exists()
        assert reap_orphaned_factories(scratch) == 0  # nothing more to do
    finally:
        if dead.poll() is None:
            dead.kill()
        if live is not None:
            live.stop()
        for members in sessions_under(scratch).values():
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        runner.stop()


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
