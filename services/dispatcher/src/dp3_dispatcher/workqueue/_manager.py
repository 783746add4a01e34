"""A typed, memory-safe face on the compiled Work Queue binding.

:class:`Manager` owns one ``struct work_queue`` and every ``struct
work_queue_task`` submitted to it; C memory is freed when a task comes back
from :meth:`Manager.wait`, when it is cancelled, and at :meth:`Manager.shutdown`.
Callers only ever see plain Python values (:class:`Task` in,
:class:`TaskResult` and :class:`Stats` out), never a cdata pointer.

The C library is not thread-safe: one thread owns a manager (the dispatcher
runs a single wait loop thread). ``work_queue_wait`` releases the GIL, so the
rest of the process keeps running while it blocks.

Behaviours of cctools 8.0 this wrapper smooths over:

* ``work_queue_create(0)`` takes the first free port from 1024 up, not a
  random one; :attr:`Manager.port` reads back the one it got.
* ``work_queue_wait`` returns at once when nothing is outstanding, whatever
  the timeout; :meth:`Manager.wait` says so by returning ``None`` quickly, and
  callers must not spin on it (see :attr:`Manager.empty`).
* ``work_queue_specify_name`` returns void.
* A task's ``hostname`` may be garbage for workers started through Condor;
  :attr:`TaskResult.worker_address` (``host:port``, from the socket) is
  always reliable, and :attr:`TaskResult.hostname` is sanitised.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dp3_dispatcher.workqueue._wq import ffi, lib  # type: ignore[import-not-found]


class WorkQueueError(RuntimeError):
    """The C library refused a call (no port, a missing input file, ...).

    Not a :class:`dp3.errors.DP3Error`: the binding is a thin layer over cctools
    and knows nothing of DP3; the dispatcher turns it into a photo's outcome.
    """


class Result(enum.IntEnum):
    """``work_queue_result_t``: how Work Queue itself saw the task end."""

    SUCCESS = 0
    INPUT_MISSING = 1
    OUTPUT_MISSING = 2
    STDOUT_MISSING = 4
    SIGNAL = 1 << 3
    RESOURCE_EXHAUSTION = 2 << 3
    TASK_TIMEOUT = 3 << 3
    UNKNOWN = 4 << 3
    FORSAKEN = 5 << 3
    MAX_RETRIES = 6 << 3
    TASK_MAX_RUN_TIME = 7 << 3
    DISK_ALLOC_FULL = 8 << 3
    RMONITOR_ERROR = 9 << 3

    @classmethod
    def of(cls, value: int) -> Result:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True)
class InputFile:
    """A file sent to the worker; ``cache`` keeps it there for later tasks (the render script)."""

    local: Path
    remote: str
    cache: bool = False


@dataclass(frozen=True)
class OutputFile:
    """A file brought back from the task's directory on the worker to ``local``."""

    remote: str
    local: Path


@dataclass(frozen=True)
class Task:
    """What to run. ``command`` is run by ``/bin/sh`` on the worker: keep user data out of it."""

    command: str
    inputs: Sequence[InputFile] = ()
    outputs: Sequence[OutputFile] = ()
    tag: str | None = None
    cores: int | None = None
    memory_mb: int | None = None
    disk_mb: int | None = None
    max_retries: int | None = None
    max_run_seconds: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    """A task as it came back from ``work_queue_wait``, copied out of C memory."""

    task_id: int
    tag: str | None
    result: Result
    return_status: int
    output: str
    worker_address: str | None
    hostname: str | None
    try_count: int
    submitted_at: float
    done_at: float
    execute_seconds: float

    @property
    def succeeded(self) -> bool:
        """Work Queue's success: the command ran and its outputs came back (any exit code)."""
        return self.result is Result.SUCCESS


@dataclass(frozen=True)
class Stats:
    """A subset of ``struct work_queue_stats``: what the dispatcher reports and scales on."""

    workers_connected: int
    workers_init: int
    workers_idle: int
    workers_busy: int
    workers_joined: int
    workers_removed: int
    workers_lost: int
    workers_blocked: int
    tasks_waiting: int
    tasks_on_workers: int
    tasks_running: int
    tasks_with_results: int
    tasks_submitted: int
    tasks_done: int
    tasks_failed: int
    tasks_cancelled: int


def _text(pointer: Any) -> str | None:
    if pointer == ffi.NULL:
        return None
    return str(ffi.string(pointer).decode("utf-8", errors="replace"))


def _printable_host(value: str | None) -> str | None:
    """A host name, or None if the field holds bytes that are not one."""
    if not value or len(value) > 255:
        return None
    if all(c.isalnum() or c in "-._:" for c in value):
        return value
    return None


def _check_remote_name(remote: str) -> None:
    # The C library calls fatal() -- exits the process -- on an absolute remote name.
    parts = remote.split("/")
    if not remote or remote.startswith("/") or "\0" in remote or ".." in parts:
        raise WorkQueueError(f"remote name {remote!r} must be a relative path inside the task's folder")


class Manager:
    """One Work Queue manager listening on ``port`` (0: the first free port from 1024).

    With ``password_file``, a worker must prove it holds the same bytes
    (``work_queue_worker --password FILE``, a challenge-response: the
    password never crosses the wire) before it is sent any task.
    """

    def __init__(
        self,
        port: int = 0,
        name: str | None = None,
        *,
        log_path: Path | None = None,
        password_file: Path | None = None,
    ) -> None:
        queue = lib.work_queue_create(port)
        if queue == ffi.NULL:
            raise WorkQueueError(f"cannot create a Work Queue manager on port {port}")
        self._queue: Any = queue
        self._tasks: dict[int, Any] = {}
        self.port: int = int(lib.work_queue_port(queue))
        # For this process's own status queries (dp3_dispatcher.workqueue.query_workers); C reads up to a NUL byte too.
        self.password: bytes | None = None
        # Set before any worker can be accepted: the first wait() is what accepts them.
        if password_file is not None and not lib.work_queue_specify_password_file(queue, os.fsencode(password_file)):
            lib.work_queue_delete(queue)
            self._queue = None
            raise WorkQueueError(f"cannot read the Work Queue password from {password_file} (missing or empty)")
        if password_file is not None:
            self.password = password_file.read_bytes().split(b"\0", 1)[0]
        if name:
            lib.work_queue_specify_name(queue, name.encode())
        if log_path is not None:
            lib.work_queue_specify_log(queue, os.fsencode(log_path))

    # --- tasks -----------------------------------------------------------

    def submit(self, task: Task) -> int:
        """Queue a task; returns its id. Raises :class:`WorkQueueError` if a file spec is refused."""
        queue = self._live()
        for remote in [spec.remote for spec in task.inputs] + [out.remote for out in task.outputs]:
            _check_remote_name(remote)
        pointer = lib.work_queue_task_create(task.command.encode())
        if pointer == ffi.NULL:
            raise WorkQueueError("work_queue_task_create failed")
        try:
            for spec in task.inputs:
                flags = lib.WORK_QUEUE_CACHE if spec.cache else lib.WORK_QUEUE_NOCACHE
                if not lib.work_queue_task_specify_file(
                    pointer, os.fsencode(spec.local), spec.remote.encode(), lib.WORK_QUEUE_INPUT, flags
                ):
                    raise WorkQueueError(f"input {spec.local} -> {spec.remote!r} refused")
            for out in task.outputs:
                if not lib.work_queue_task_specify_file(
                    pointer, os.fsencode(out.local), out.remote.encode(), lib.WORK_QUEUE_OUTPUT, lib.WORK_QUEUE_NOCACHE
                ):
                    raise WorkQueueError(f"output {out.remote!r} -> {out.local} refused")
            if task.tag is not None:
                lib.work_queue_task_specify_tag(pointer, task.tag.encode())
            if task.cores is not None:
                lib.work_queue_task_specify_cores(pointer, task.cores)
            if task.memory_mb is not None:
                lib.work_queue_task_specify_memory(pointer, task.memory_mb)
            if task.disk_mb is not None:
                lib.work_queue_task_specify_disk(pointer, task.disk_mb)
            if task.max_retries is not None:
                lib.work_queue_task_specify_max_retries(pointer, task.max_retries)
            if task.max_run_seconds is not None:
                lib.work_queue_task_specify_running_time_max(pointer, task.max_run_seconds)
            for key, value in task.env.items():
                lib.work_queue_task_specify_environment_variable(pointer, key.encode(), value.encode())
        except BaseException:
            lib.work_queue_task_delete(pointer)
            raise
        task_id = int(lib.work_queue_submit(queue, pointer))
        self._tasks[task_id] = pointer
        return task_id

    def wait(self, timeout: int) -> TaskResult | None:
        """The next finished task, or None after ``timeout`` seconds (at once if nothing is outstanding).

        The GIL is released while Work Queue waits.
        """
        pointer = lib.work_queue_wait(self._live(), max(0, int(timeout)))
        if pointer == ffi.NULL:
            return None
        task_id = int(pointer.taskid)
        result = self._copy(pointer)
        self._tasks.pop(task_id, None)
        lib.work_queue_task_delete(pointer)
        return result

    def cancel(self, task_id: int) -> bool:
        """Remove a task wherever it is (waiting or running); False if it is unknown or already done."""
        pointer = lib.work_queue_cancel_by_taskid(self._live(), task_id)
        if pointer == ffi.NULL:
            return False
        self._tasks.pop(task_id, None)
        lib.work_queue_task_delete(pointer)
        return True

    @property
    def outstanding(self) -> int:
        """Tasks submitted and not yet returned by :meth:`wait` nor cancelled."""
        return len(self._tasks)

    @property
    def empty(self) -> bool:
        return bool(lib.work_queue_empty(self._live()))

    # --- workers ---------------------------------------------------------

    def stats(self) -> Stats:
        raw = ffi.new("struct work_queue_stats *")
        lib.work_queue_get_stats(self._live(), raw)
        return Stats(**{name: int(getattr(raw, name)) for name in Stats.__dataclass_fields__})

    def block_host(self, hostname: str, seconds: int | None = None) -> None:
        """Send no more tasks to workers reporting ``hostname`` (for ``seconds``, or for good)."""
        if seconds is None:
            lib.work_queue_block_host(self._live(), hostname.encode())
        else:
            lib.work_queue_block_host_with_timeout(self._live(), hostname.encode(), seconds)

    def unblock_host(self, hostname: str) -> None:
        lib.work_queue_unblock_host(self._live(), hostname.encode())

    def tune(self, name: str, value: float) -> None:
        """``work_queue_tune`` (e.g. ``"keepalive-interval"``); raises if the name is unknown."""
        if lib.work_queue_tune(self._live(), name.encode(), value) != 0:
            raise WorkQueueError(f"unknown Work Queue tuning parameter {name!r}")

    def set_keepalive(self, interval: int, timeout: int) -> None:
        """How often idle workers are pinged, and how long a silent worker is given before it counts as lost."""
        lib.work_queue_specify_keepalive_interval(self._live(), interval)
        lib.work_queue_specify_keepalive_timeout(self._live(), timeout)

    def release_workers(self, count: int = 0) -> int:
        """Ask ``count`` idle workers (0: all) to exit; returns how many were asked."""
        return int(lib.work_queue_shut_down_workers(self._live(), count))

    def shutdown(self) -> None:
        """Cancel what is outstanding, free every task and the manager. Idempotent."""
        if self._queue is None:
            return
        for task_id in list(self._tasks):
            self.cancel(task_id)
        for pointer in self._tasks.values():  # not cancellable any more: free it ourselves
            lib.work_queue_task_delete(pointer)
        self._tasks.clear()
        lib.work_queue_delete(self._queue)
        self._queue = None

    def __enter__(self) -> Manager:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()

    def _live(self) -> Any:
        if self._queue is None:
            raise WorkQueueError("the manager was shut down")
        return self._queue

    @staticmethod
    def _copy(pointer: Any) -> TaskResult:
        return TaskResult(
            task_id=int(pointer.taskid),
            tag=_text(pointer.tag),
            result=Result.of(int(pointer.result)),
            return_status=int(pointer.return_status),
            output=_text(pointer.output) or "",
            worker_address=_text(pointer.host),
            hostname=_printable_host(_text(pointer.hostname)),
            try_count=int(pointer.try_count),
            submitted_at=int(pointer.time_when_submitted) / 1e6,
            done_at=int(pointer.time_when_done) / 1e6,
            execute_seconds=int(pointer.time_workers_execute_last) / 1e6,
        )


def result_text(result: Result) -> str:
    """Work Queue's own words for a result code."""
    return str(ffi.string(lib.work_queue_result_str(int(result))).decode())
