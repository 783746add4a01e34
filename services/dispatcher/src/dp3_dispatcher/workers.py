"""Elastic workers: the ``work_queue_factory`` process and its lifecycle.

The factory asks the manager (directly, by host and port: no catalog server)
how many tasks wait, and keeps between ``min`` and ``max`` workers running,
locally (``-T local``) or as HTCondor jobs (``-T condor``). Workers leave by
themselves after ``idle_timeout`` seconds without work, so a burst brings them
up and a quiet queue lets them go.

Stopping: a SIGTERM to the factory alone left its local workers running until
their idle timeout, so :meth:`WorkerFactory.stop` notes every descendant
first, asks the factory to stop (for Condor it removes its jobs with
``condor_rm``), then kills the factory's process group and whatever
descendant is left. A factory that died, was killed or did not finish its
clean-up in time leaves its Condor jobs queued, so the dispatcher then
removes whatever job still has the factory's folder as its working
directory (``condor_rm -constraint 'Iwd == "<folder>"'``), also when it
starts a new factory in place of a dead one.

Demand with a password: the manager authenticates every connection, and
``work_queue_factory`` 8.0 sends its status query (``queue_status``)
without the password, so it never sees the tasks waiting (the manager logs
``presented the wrong password`` for it each cycle). The dispatcher
therefore tells the factory how many workers to keep, through the
factory's ``--config-file``, which it re-reads every cycle: see
:func:`factory_workers`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dp3.files import atomic_write_bytes
from dp3_dispatcher.orphans import factory_folder_prefix
from dp3_dispatcher.processes import alive, descendants

log = logging.getLogger(__name__)

FACTORY = "work_queue_factory"


@dataclass(frozen=True)
class FactoryConfig:
    """What the factory is told; see ``work_queue_factory --help``."""

    provider: str  # "local" or "condor": the factory's -T (its "batch type"); DP3_WORKER_PROVIDER
    manager_host: str
    manager_port: int
    workers_min: int
    workers_max: int
    idle_timeout: int
    scratch: Path
    cores_per_worker: int = 1
    # The manager refuses workers without it; the factory hands the file to each worker (Condor: as an input file).
    password_file: Path | None = None
    demand_file: Path | None = None  # --config-file: the worker count the dispatcher asks for
    condor_requirements: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    debug_log: Path | None = None

    def command(self) -> list[str]:
        args = [
            FACTORY,
            "-T",
            self.provider,
            "--min-workers",
            str(self.workers_min),
            "--max-workers",
            str(self.workers_max),
            # A burst may bring every worker up in the first 30 s cycle.
            "--workers-per-cycle",
            str(self.workers_max),
            "--timeout",
            str(self.idle_timeout),
            "--cores",
            str(self.cores_per_worker),
            "--scratch-dir",
            str(self.scratch),
            "--parent-death",
        ]
        if self.condor_requirements:
            args += ["--condor-requirements", self.condor_requirements]
        if self.password_file is not None:
            args += ["--password", str(self.password_file)]
        if self.demand_file is not None:
            args += ["--config-file", str(self.demand_file)]
        if self.debug_log is not None:
            args += ["-d", "all", "-o", str(self.debug_log)]
        args += [self.manager_host, str(self.manager_port)]
        return args


def factory_workers(demand: int, connected: int, workers_min: int, workers_max: int) -> int:
    """The ``min-workers`` (and ``max-workers``) to write for a factory that cannot query the manager.

    ``demand`` is the tasks that could run now (the dispatcher's, see
    ``Dispatcher.demand``); the factory should keep
    ``wanted`` = demand within ``[workers_min, workers_max]``. Seeing no
    manager, the factory counts 0 workers connected, takes each worker it
    submitted as still on its way, and so submits ``value - 2 * submitted``
    new ones. Adding the workers connected (its own, once they are up) makes
    that ``wanted - submitted``; while some are still starting it asks for
    fewer, never more, and catches up once they connect.
    """
    wanted = min(workers_max, max(workers_min, demand))
    return wanted + max(0, connected)


class DemandFile:
    """A factory's ``--config-file``: the worker count the dispatcher asks for (see :func:`factory_workers`).

    Written by the dispatcher for the factory it runs, and, when workers come
    from elsewhere (``DP3_WORKER_PROVIDER=none``), as
    ``$DP3_HOME/work-queue-demand.json`` for a factory started outside it
    (compose's condor profile), which cannot see the demand either.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: int | None = None
        self._mtime = 0

    def write(self, count: int) -> None:
        if count == self._written:
            return
        # max-workers 0 is refused ("less than one"), and the factory then exits at start.
        limits = {"min-workers": count, "max-workers": max(1, count)}
        atomic_write_bytes(self.path, json.dumps(limits).encode())
        # The factory re-reads the file when its mtime, in whole seconds, changes: make each write a new second.
        self._mtime = max(int(time.time()), self._mtime + 1)
        os.utime(self.path, (self._mtime, self._mtime))
        self._written = count


def local_worker_environment() -> dict[str, str]:
    """PATH with this interpreter's folder first, so a local worker's ``python3`` has Pillow."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{path}"}


class WorkerFactory:
    """Runs one ``work_queue_factory``; restarts it if it dies; stops it with its workers."""

    def __init__(self, config: FactoryConfig) -> None:
        self.config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._scratch: Path | None = None
        self._demand = (0, 0)  # (tasks waiting or running, workers connected), from set_demand
        self._demand_file: DemandFile | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def ensure_running(self) -> None:
        """Start the factory if it is not running (first demand, or after it died)."""
        with self._lock:
            if self._stopped or self.running:
                return
            if self._process is not None:
                log.warning("work_queue_factory exited with status %s; starting it again", self._process.returncode)
                if self._scratch is not None:
                    self._remove_condor_jobs(self._scratch)
                    shutil.rmtree(self._scratch, ignore_errors=True)
            # A scratch folder of its own: the factory copies work_queue_worker
            # there, which fails ("text file busy", exit 1) while a factory left
            # by a killed dispatcher still runs workers from a shared one.
            self.config.scratch.mkdir(parents=True, exist_ok=True)
            # Its name says which dispatcher started it (see dp3_dispatcher.orphans).
            scratch = Path(tempfile.mkdtemp(prefix=factory_folder_prefix(), dir=self.config.scratch))
            self._scratch = scratch
            self._demand_file = DemandFile(scratch / "demand.json")
            self._write_demand()
            env = {**os.environ, **self.config.extra_env}
            self._process = subprocess.Popen(
                dataclasses.replace(self.config, scratch=scratch, demand_file=self._demand_file.path).command(),
                cwd=scratch,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() takes the workers too
            )
            log.info(
                "started work_queue_factory -T %s (pid %d, %d..%d workers)",
                self.config.provider,
                self._process.pid,
                self.config.workers_min,
                self.config.workers_max,
            )

    def set_demand(self, demand: int, connected: int) -> None:
        """Tell the factory (next cycle) how many workers the tasks need; see :func:`factory_workers`."""
        with self._lock:
            self._demand = (demand, connected)
            if self.running:
                self._write_demand()

    def _write_demand(self) -> None:
        if self._demand_file is not None:
            self._demand_file.write(factory_workers(*self._demand, self.config.workers_min, self.config.workers_max))

    def stop(self, grace: float = 10.0) -> None:
        """Stop the factory and every worker it started. Idempotent."""
        with self._lock:
            self._stopped = True
            process, self._process = self._process, None
        if process is None:
            return
        below = descendants(process.pid)
        if process.poll() is None:
            # For Condor the factory's own clean-up removes its jobs (condor_rm);
            # local workers get the SIGTERM themselves, as the factory alone
            # would leave them running until their idle timeout.
            targets = [process.pid] if self.config.provider == "condor" else [process.pid, *below]
            for pid in targets:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("work_queue_factory did not stop in %.0fs; killing it", grace)
        below += descendants(process.pid)
        _kill_all([process.pid, *below], process_group=process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        if self._scratch is not None:
            self._remove_condor_jobs(self._scratch)
            shutil.rmtree(self._scratch, ignore_errors=True)
        log.info("stopped work_queue_factory and %d processes below it", len(set(below)))

    def _remove_condor_jobs(self, folder: Path) -> None:
        """Remove the Condor jobs a factory working in ``folder`` left queued (none if it cleaned up)."""
        if self.config.provider != "condor":
            return
        quoted = str(folder).replace("\\", "\\\\").replace('"', '\\"')  # a ClassAd string literal
        try:
            result = subprocess.run(
                ["condor_rm", "-constraint", f'Iwd == "{quoted}"'],
                cwd=self.config.scratch if self.config.scratch.is_dir() else None,  # its own may be gone
                env={**os.environ, **self.config.extra_env},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("could not remove the Condor jobs of the factory in %s: %s", folder, exc)
            return
        if result.returncode == 0:
            log.warning("removed Condor jobs the factory in %s had left queued", folder)
        else:  # "Couldn't find/remove all jobs matching constraint": nothing was left
            log.info("no Condor job of the factory in %s was left: %s", folder, result.stderr.strip()[:200])


def _kill_all(pids: Sequence[int], process_group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process_group, signal.SIGKILL)
    for pid in set(pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.05)
