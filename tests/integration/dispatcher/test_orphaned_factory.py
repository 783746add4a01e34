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

from dp3_dispatcher.orphans import FACTORY, reap_orphaned_factories
from dp3_dispatcher.runner import TaskRunner
from dp3_dispatcher.workers import FactoryConfig, WorkerFactory
from dp3_dispatcher.workqueue import Manager
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration

DISPATCHER = """
import sys, time
from pathlib import Path
from dp3_dispatcher.workers import FactoryConfig, WorkerFactory
config = FactoryConfig(
    provider="local", manager_host="127.0.0.1", manager_port=int(sys.argv[2]),
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


@pytest.mark.parametrize("factory_exited", [False, True], ids=["factory-alive", "factory-exited"])
def test_a_killed_dispatchers_factory_and_workers_are_reaped(tmp_path: Path, factory_exited: bool) -> None:
    """Reaped whether the orphaned factory still runs or already left on its own, leaving its worker.

    An orphaned factory notices its parent's death about 35 s later and exits,
    but its worker stays (idle timeout 300 s here). ``factory_exited`` makes
    that state at once by killing the factory alone.
    """
    scratch = tmp_path / "work-queue"
    manager = Manager(0)
    runner = TaskRunner(manager)  # answers the factories' status queries
    runner.start()
    live: WorkerFactory | None = None
    orphan: int | None = None
    dead = subprocess.Popen(
        [sys.executable, "-c", DISPATCHER, str(scratch), str(manager.port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert dead.stdout is not None and dead.stdout.readline().strip() == "started"
        wait_for(lambda: any(len(p) >= 2 for p in sessions_under(scratch).values()), 30, "the factory and its worker")
        [orphan] = list(sessions_under(scratch))
        leader = orphan
        wait_for(lambda: any(_is_worker(pid) for pid in _session(leader)), 30, "the orphan's worker")
        members = _session(orphan)
        os.kill(dead.pid, signal.SIGKILL)  # the dispatcher dies; its factory and worker stay
        dead.wait(10)
        orphan_folder = Path(os.readlink(f"/proc/{orphan}/cwd"))
        if factory_exited:
            os.kill(orphan, signal.SIGKILL)
            wait_for(lambda: not _not_zombie(orphan), 10, "the orphaned factory to exit")

        # The restarted dispatcher's own factory, in the same scratch folder, must survive the reaping.
        live = WorkerFactory(
            FactoryConfig(
                provider="local",
                manager_host="127.0.0.1",
                manager_port=manager.port,
                workers_min=0,
                workers_max=1,
                idle_timeout=300,
                scratch=scratch,
            )
        )
        live.ensure_running()
        assert live.pid is not None
        wait_for(lambda: live.pid in sessions_under(scratch), 60, "the live factory")

        left_behind = [pid for pid in members if _not_zombie(pid)]
        assert any(_is_worker(pid) for pid in left_behind), "the orphan's worker must still run before reaping"
        killed = reap_orphaned_factories(scratch)

        assert killed >= len(left_behind)
        assert not any(_not_zombie(pid) for pid in members), [_describe(pid) for pid in members]
        assert list(sessions_under(scratch)) == [live.pid]
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
        for pid in _session(orphan) if orphan is not None else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        runner.stop()


def _session(session: int) -> list[int]:
    """Every live process of a session, its leader gone or not."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[3]) == session:
                    found.append(int(entry.name))
    return found


def _is_worker(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("work_queue_work")
    except OSError:
        return False


def _describe(pid: int) -> str:
    try:
        return f"{pid} {Path(f'/proc/{pid}/cmdline').read_bytes()[:80]!r}"
    except OSError:
        return f"{pid} gone"


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
