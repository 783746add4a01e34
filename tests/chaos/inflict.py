"""Carry out a chaos plan against a running stack, and record what was actually hit.

Services are SIGKILLed by the PID supervisord reports (supervisord restarts
them: that is the process manager of ``make up``). A render worker is found
through /proc (its environment names the stack's ``DP3_HOME``, its command is
``work_queue_worker``) and killed only while it runs a task, i.e. while it has
a child process. RabbitMQ is restarted with ``rabbitmqctl stop_app`` /
``start_app``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.schedule import Action
from tests.rabbit import restart_broker_app
from tests.stack import Stack

TARGET_WAIT_SECONDS = 30.0
"""How long an action waits for its target to exist (a service restarting, a worker getting a task)."""


@dataclass
class Hit:
    action: Action
    at: float
    detail: str

    def __str__(self) -> str:
        return f"{self.action} -> at t+{self.at:.1f}s: {self.detail}"


@dataclass
class ChaosRun:
    stack: Stack
    actions: list[Action]
    hits: list[Hit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, started: float) -> None:
        """Carry out every action at its time after ``started`` (time.monotonic); on this thread."""
        for action in self.actions:
            if self.stop.wait(max(0.0, started + action.at - time.monotonic())):
                return
            try:
                detail = self._do(action)
            except Exception as exc:  # a chaos step that cannot be done is reported, not hidden
                detail = f"FAILED: {exc!r}"
                self.errors.append(f"{action}: {exc!r}")
            hit = Hit(action, time.monotonic() - started, detail)
            self.hits.append(hit)
            print(f"chaos: {hit}", flush=True)

    def _do(self, action: Action) -> str:
        if action.kind == "kill":
            pid = self._wait_for(lambda: self.stack.service_pid(action.target) or None, f"{action.target} running")
            os.kill(pid, signal.SIGKILL)
            return f"SIGKILL {action.target} pid {pid}"
        if action.kind == "kill_worker":
            pid = self._wait_for(lambda: busy_worker(self.stack.home), "a worker running a task")
            os.kill(pid, signal.SIGKILL)
            return f"SIGKILL work_queue_worker pid {pid} mid-task"
        if action.kind == "restart_broker":
            began = time.monotonic()
            restart_broker_app()
            return f"rabbitmqctl stop_app/start_app took {time.monotonic() - began:.1f}s"
        raise ValueError(f"unknown chaos action {action.kind!r}")

    def _wait_for(self, find: Callable[[], int | None], what: str) -> int:
        deadline = time.monotonic() + TARGET_WAIT_SECONDS
        while time.monotonic() < deadline and not self.stop.is_set():
            try:
                found = find()
            except ValueError:  # supervisorctl answered something else than a pid: ask again
                found = None
            if found:
                return found
            time.sleep(0.1)
        raise RuntimeError(f"no {what} within {TARGET_WAIT_SECONDS:.0f}s")


def stack_processes(home: Path) -> dict[int, tuple[str, int]]:
    """pid -> (command name, parent pid) of every process whose environment names this DP3_HOME."""
    marker = f"DP3_HOME={home}".encode()
    found: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry.name)] = (Path(argv0).name, parent)
    return found


def busy_worker(home: Path) -> int | None:
    """The PID of a work_queue_worker of this stack that has a task running (a child process), if any."""
    processes = stack_processes(home)
    workers = {pid for pid, (name, _) in processes.items() if name == "work_queue_worker"}
    for _pid, (_name, parent) in processes.items():
        if parent in workers:
            return parent
    return None
