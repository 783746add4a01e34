"""The one thread that owns the Work Queue manager.

The C library is not thread-safe, so every call on the manager happens on this
thread: other threads hand it submissions through a queue and get a
:class:`concurrent.futures.Future` of the :class:`~dp3_dispatcher.workqueue.TaskResult`.
The loop alternates between draining that queue and ``wait`` on the manager
(which releases the GIL). When nothing is outstanding ``work_queue_wait``
returns at once, so the loop then blocks on its own queue instead of
spinning, after one short wait that still lets the manager accept workers and
answer the factory's status queries.

Done callbacks of the futures run on this thread: keep them short (hand real
work to another executor).
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dp3_dispatcher.workqueue import Manager, Stats, Task, TaskResult, WorkQueueError, hostname_of, query_workers

log = logging.getLogger(__name__)

WAIT_SECONDS = 1
IDLE_BLOCK_SECONDS = 0.25


class RunnerStopped(RuntimeError):
    """The runner was stopped before the task came back; the work must be redone.

    A ``RuntimeError`` like the binding's own, not a :class:`dp3.errors.DP3Error`:
    it settles a photo's future at shutdown, when its message is redelivered anyway.
    """


@dataclass
class _Submit:
    task: Task
    future: concurrent.futures.Future[TaskResult]


@dataclass
class _Call:
    action: Callable[[Manager], None]


class Runner(Protocol):
    """Work Queue as the dispatcher uses it: the narrow interface :class:`TaskRunner` implements.

    :class:`dp3.testing.FakeRunner` implements it too, in memory, so the
    dispatcher's handling of returned tasks is unit-tested without a manager.
    """

    @property
    def stats(self) -> Stats: ...

    def submit(self, task: Task) -> concurrent.futures.Future[TaskResult]: ...

    def block_host(self, hostname: str, seconds: int | None = None) -> None:
        """No task goes to ``hostname`` (for ``seconds``, or until the manager stops)."""
        ...

    def worker_hosts(self) -> set[str]:
        """The host names of the workers connected now; OSError or ValueError if the manager cannot say."""
        ...

    def hostname_of(self, worker_address: str) -> str | None:
        """The host name of the worker at ``worker_address``; OSError or ValueError if the manager cannot say."""
        ...


class TaskRunner:
    """Runs tasks on ``manager`` from a single wait-loop thread."""

    def __init__(self, manager: Manager) -> None:
        self._manager = manager
        self._commands: queue.SimpleQueue[_Submit | _Call] = queue.SimpleQueue()
        self._futures: dict[int, concurrent.futures.Future[TaskResult]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dp3-workqueue", daemon=True)
        self._stats: Stats = manager.stats()
        self.port = manager.port
        self.password = manager.password  # for status queries from other threads
        self.alive = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def submit(self, task: Task) -> concurrent.futures.Future[TaskResult]:
        """Thread-safe: queue ``task``; the future resolves when Work Queue returns it."""
        future: concurrent.futures.Future[TaskResult] = concurrent.futures.Future()
        if self._stop.is_set():
            future.set_exception(RunnerStopped("the Work Queue runner is stopped"))
        else:
            self._commands.put(_Submit(task, future))
        return future

    def call(self, action: Callable[[Manager], None]) -> None:
        """Thread-safe: run ``action(manager)`` on the loop thread (e.g. block a host)."""
        self._commands.put(_Call(action))

    @property
    def stats(self) -> Stats:
        """The manager's stats as of the last loop turn (at most about a second old)."""
        return self._stats

    def block_host(self, hostname: str, seconds: int | None = None) -> None:
        """Thread-safe: block ``hostname`` on the loop thread."""
        self.call(lambda manager: manager.block_host(hostname, seconds))

    def worker_hosts(self) -> set[str]:
        """Asked of the manager over its status port (from this thread; the loop thread answers)."""
        return {worker.hostname for worker in query_workers(self.port, password=self.password)}

    def hostname_of(self, worker_address: str) -> str | None:
        return hostname_of(self.port, worker_address, password=self.password)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop; outstanding futures fail with :class:`RunnerStopped`; the manager is shut down."""
        self._stop.set()
        self._commands.put(_Call(lambda _manager: None))  # wake the loop
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- on the loop thread -------------------------------------------------

    def _loop(self) -> None:
        self.alive.set()
        try:
            while not self._stop.is_set():
                self._drain()
                result = self._manager.wait(WAIT_SECONDS)
                if result is not None:
                    self._resolve(result)
                self._stats = self._manager.stats()
                if self._manager.outstanding == 0 and result is None:
                    self._block_for_command()
        except Exception:
            log.exception("the Work Queue loop failed")
            raise
        finally:
            self.alive.clear()
            self._shutdown()

    def _drain(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            self._run(command)

    def _block_for_command(self) -> None:
        try:
            command = self._commands.get(timeout=IDLE_BLOCK_SECONDS)
        except queue.Empty:
            return
        self._run(command)

    def _run(self, command: _Submit | _Call) -> None:
        if isinstance(command, _Call):
            try:
                command.action(self._manager)
            except Exception:
                log.exception("a call on the Work Queue manager failed")
            return
        if not command.future.set_running_or_notify_cancel():
            return
        try:
            task_id = self._manager.submit(command.task)
        except WorkQueueError as exc:
            command.future.set_exception(exc)
            return
        self._futures[task_id] = command.future

    def _resolve(self, result: TaskResult) -> None:
        future = self._futures.pop(result.task_id, None)
        if future is None:
            log.warning("Work Queue returned task %d that nobody waits for", result.task_id)
            return
        future.set_result(result)

    def _shutdown(self) -> None:
        futures, self._futures = self._futures, {}
        self._manager.shutdown()
        for future in futures.values():
            future.set_exception(RunnerStopped("the dispatcher stopped before the task came back"))
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            if isinstance(command, _Submit) and command.future.set_running_or_notify_cancel():
                command.future.set_exception(RunnerStopped("the dispatcher stopped before the task was submitted"))
