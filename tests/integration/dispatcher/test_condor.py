"""The Condor path against a real HTCondor pool: renders run on workers that are Condor jobs.

The pool is Debian trixie's minicondor in a debootstrap chroot
(deploy/condor/pool.sh; built once and cached under /var/cache/dp3-condor).
Its execute node has Debian's python3 + python3-pil, not this virtual
environment: the render task runs on the cluster's Python.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dp3.events import Status
from tests.conftest import REPO
from tests.integration.dispatcher.harness import detected, publish, worker_processes
from tests.rabbit import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POOL = REPO / "deploy" / "condor" / "pool.sh"
ROOT = Path(os.environ.get("DP3_CONDOR_ROOT", "/var/cache/dp3-condor/root"))
MIRROR_UNREACHABLE = 3


@pytest.fixture
def condor_pool(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A running pool; yields (shared scratch folder, folder of condor_* wrappers)."""
    if os.environ.get("DP3_CONDOR_TEST") == "0":
        # The first run builds the chroot from the Debian mirror (about a minute); later ones
        # start the cached pool in a few seconds.
        pytest.skip("DP3_CONDOR_TEST=0: the HTCondor pool test is switched off")
    if os.geteuid() != 0:
        pytest.skip("the Condor pool needs root (chroot, bind mounts)")
    shared, bindir = tmp_path / "work-queue", tmp_path / "condor-bin"
    started = subprocess.run(
        [str(POOL), "start", str(shared), str(bindir)], capture_output=True, text=True, timeout=900, check=False
    )
    if started.returncode == MIRROR_UNREACHABLE:
        pytest.skip(f"cannot build the Condor chroot: {started.stderr.strip()}")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield shared, bindir
    finally:
        subprocess.run([str(POOL), "stop"], check=False, timeout=120)


def _condor(bindir: Path, shared: Path, *args: str) -> str:
    # The wrappers run the tool inside the chroot from the same folder: it must be
    # the shared scratch, the one host folder mounted there.
    return subprocess.run(
        [str(bindir / args[0]), *args[1:]], capture_output=True, text=True, timeout=60, check=True, cwd=shared
    ).stdout


def _jobs(bindir: Path, shared: Path) -> set[str]:
    """Cluster ids of the queued jobs of this test's factories (their folders are in ``shared``)."""
    lines = _condor(bindir, shared, "condor_q", "-af", "ClusterId", "Iwd").splitlines()
    return {line.split()[0] for line in lines if line.split()[1:] and line.split()[1].startswith(f"{shared}/")}


def test_renders_run_on_condor_job_workers_with_the_clusters_python(
    corpus: Path, amqp_url: str, outcomes, start_dispatcher, condor_pool
) -> None:
    shared, bindir = condor_pool
    entries = [detected(photo, corpus) for photo in sorted((corpus / "jpg" / "orientation").glob("*.jpg"))]
    dispatcher = start_dispatcher(
        PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
        DP3_WORKER_PROVIDER="condor",
        DP3_WORK_QUEUE_HOST="127.0.0.1",  # the chroot shares the host's network
        DP3_WORK_QUEUE_SCRATCH=str(shared),
        DP3_WORKERS_MIN="0",
        DP3_WORKERS_MAX="2",
        DP3_WORKER_IDLE_TIMEOUT="30",
    )
    dispatcher.metrics_port()
    manager_port = dispatcher.manager_port()
    roots: set[str] = set()
    stop = threading.Event()

    def watch() -> None:  # where do the workers run? (/proc/<pid>/root)
        while not stop.is_set():
            for pid in worker_processes(manager_port):
                with contextlib.suppress(OSError):  # gone meanwhile
                    roots.add(os.readlink(f"/proc/{pid}/root"))
            stop.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        publish(amqp_url, entries)
        final = outcomes.wait_all({e.id for e in entries}, timeout=120)
    finally:
        stop.set()
        watcher.join()
    assert {final[e.id].status for e in entries} == {Status.PROCESSED}
    # Every worker seen ran inside the pool's chroot, i.e. as a Condor job.
    assert roots == {str(ROOT)}
    running = _condor(bindir, shared, "condor_q", "-af", "ClusterId", "Cmd")
    assert str(shared) in running  # the factory's jobs (condor.sh in its scratch folder)

    # A factory that dies cannot remove its jobs: the dispatcher starts a new one and
    # removes the dead one's jobs itself. Left alone they would end by the workers' idle
    # timeout (30 s), as Completed (4); removed, they are Removed (3) in the history.
    dead_jobs = _jobs(bindir, shared)
    assert dead_jobs
    [factory] = dispatcher.factory_pids()
    os.kill(factory, signal.SIGKILL)
    wait_for(lambda: len(dispatcher.factory_pids()) == 2, 30, "a new factory")
    wait_for(
        lambda: not dead_jobs & _jobs(bindir, shared),
        90,
        "the dead factory's worker jobs to leave the queue",
    )
    ended = dict(
        line.split()
        for line in _condor(bindir, shared, "condor_history", "-af", "ClusterId", "JobStatus").splitlines()
        if line.split() and line.split()[0] in dead_jobs
    )
    assert ended == dict.fromkeys(dead_jobs, "3"), ended
    assert "had left queued" in dispatcher.log()

    later = detected(corpus / "jpg" / "Canon_40D.jpg", corpus)  # the new factory brings workers too
    publish(amqp_url, [later])
    assert outcomes.wait_all({later.id}, timeout=120)[later.id].status is Status.PROCESSED
    assert dispatcher.stop(90) == 0
    # Stopping the dispatcher stopped the factory, which removed its Condor jobs.
    wait_for(lambda: not _jobs(bindir, shared), 60, "the worker jobs to leave")
    history = _condor(bindir, shared, "condor_history", "-af", "ClusterId", "Owner", "Cmd", "JobStatus")
    jobs = [line.split() for line in history.splitlines() if str(shared) in line]
    assert jobs, history
    assert all(owner == "dp3" for _cluster, owner, _cmd, _status in jobs)
