"""Detected -> render task on Work Queue -> verification -> Processed | Failed.

The broker handler (:meth:`Dispatcher.handle`) returns at once with a Future;
the Work Queue loop thread resolves the task, and a small pool verifies and
commits the artifacts, then resolves the Future with the events to publish
(the consumer publishes them, confirmed, before it acknowledges the Detected).

What a returned task means, in order:

* Work Queue could not run it (worker lost too often, missing input...):
  retried up to ``render_attempts`` times, then ``Failed render_failed``.
  A worker lost mid-task is not such a failure: Work Queue resubmits it by
  itself and it comes back once, from another worker.
* exit ``worker_environment`` (this worker has no Python or no Pillow): the
  worker's host is blocked for this manager, the task is submitted again and
  runs elsewhere; the photo is not at fault.
* a permanent kind (corrupt, unsupported, too large, empty): ``Failed``.
* exit 0 but artifacts that do not verify (the seed's "complete is not
  success"): retried up to ``render_attempts`` times, then ``Failed
  render_failed`` with the last reason.
* verified: the workspace is renamed into ``staging/<id>/``; ``Processed``
  carries meta.json.

Idempotency: a Detected whose verified artifacts for the same sha256 are
already staged is answered with ``Processed`` without rendering; a Detected
for a photo already in flight joins the running render.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dp3.broker import Message
from dp3.events import ErrorInfo, ErrorKind, JournalEntry, Status
from dp3.files import OutsideRoot, is_within, path_under
from dp3.log import photo_logger
from dp3.workqueue import (
    InputFile,
    OutputFile,
    Result,
    Task,
    TaskResult,
    hostname_of,
    query_workers,
    result_text,
)
from dp3_dispatcher import metrics
from dp3_dispatcher.runner import TaskRunner
from dp3_dispatcher.settings import DispatcherSettings
from dp3_dispatcher.staging import Staging
from dp3_dispatcher.verify import classify_exit, permanent, verify_render

log = logging.getLogger(__name__)

SERVICE = "dispatcher"
SCRIPT_REMOTE = "render_task.py"
PHOTO_REMOTE = "photo"
OUTPUT_REMOTES = ("thumbnail.jpg", "web.jpg", "meta.json")
RENDER_SCRIPT = Path(__file__).with_name("render_task.py")

Events = Sequence[JournalEntry]


def render_command(max_pixels: int) -> str:
    """The shell command a worker runs: fixed names and one integer, never user data."""
    return f"python3 {SCRIPT_REMOTE} --max-pixels {int(max_pixels)} {PHOTO_REMOTE} ."


def _received(workspace: Path) -> tuple[Path, Path, Path]:
    """Where Work Queue writes the task's outputs: fixed, shell- and Work-Queue-safe names."""
    thumbnail, web, meta = (workspace / remote for remote in OUTPUT_REMOTES)
    return thumbnail, web, meta


@dataclass
class _Job:
    """One photo's render, across its attempts."""

    entry: JournalEntry
    source: Path
    future: concurrent.futures.Future[Events] = field(default_factory=concurrent.futures.Future)
    attempts: int = 0
    environment_failures: int = 0
    workspace: Path | None = None
    last_reason: str = ""


class Dispatcher:
    """The dispatcher's message handler and what it does with returned tasks."""

    def __init__(
        self,
        settings: DispatcherSettings,
        runner: TaskRunner,
        staging: Staging,
        *,
        render_script: Path = RENDER_SCRIPT,
    ) -> None:
        self._settings = settings
        self._runner = runner
        self._staging = staging
        self._script = render_script
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="dp3-verify")
        self._lock = threading.Lock()
        self._inflight: dict[str, _Job] = {}
        self._blocked_hosts: set[str] = set()
        self._closed = False

    @property
    def blocked_hosts(self) -> frozenset[str]:
        return frozenset(self._blocked_hosts)

    def close(self) -> None:
        """Stop settling photos: called once the consumer has stopped, so their messages are redelivered."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- the broker handler -------------------------------------------------

    def handle(self, message: Message) -> Events | concurrent.futures.Future[Events]:
        entry = message.entry
        plog = photo_logger(log, entry.id)
        if entry.status is not Status.DETECTED:
            plog.warning("ignoring a %s event on the dispatcher queue", entry.status.value)
            return []
        if not entry.sha256:
            return [self._failed(entry, ErrorKind.UNREADABLE, "the Detected event carries no sha256")]
        meta = self._staging.verified_meta(entry.id, entry.sha256)
        if meta is not None:
            metrics.FAST_PATH.inc()
            plog.info("verified artifacts already staged; publishing Processed again without rendering")
            return [self._processed(entry, meta)]
        with self._lock:
            running = self._inflight.get(entry.id)
            if running is not None and running.entry.sha256 == entry.sha256:
                plog.info("render already in flight; joining it")
                return running.future
        source = self._source_path(entry)
        if source is None:
            return [self._failed(entry, ErrorKind.UNREADABLE, f"path {entry.path!r} is not inside the inbox")]
        if not source.is_file() or source.is_symlink():
            # Gone since detection (collected after an earlier render, or deleted by
            # its owner): nothing to render and nothing to report.
            plog.warning("the original is no longer in the inbox (%s); nothing to render", source)
            return []
        job = _Job(entry=entry, source=source)
        with self._lock:
            self._inflight[entry.id] = job
        job.future.add_done_callback(lambda _done: self._forget(job))
        self._submit(job)
        return job.future

    def _source_path(self, entry: JournalEntry) -> Path | None:
        inbox = self._settings.inbox_dir
        try:
            path = Path(entry.path)
            if path.is_absolute():
                return path if is_within(inbox, path) else None
            return path_under(inbox, path)
        except OutsideRoot:
            return None

    def _forget(self, job: _Job) -> None:
        with self._lock:
            if self._inflight.get(job.entry.id) is job:
                del self._inflight[job.entry.id]

    # --- submissions --------------------------------------------------------

    def _submit(self, job: _Job) -> None:
        entry = job.entry
        try:
            workspace = self._staging.workspace()
        except OSError as exc:
            self._settle_exception(job, exc)
            return
        job.workspace = workspace
        received = _received(workspace)
        task = Task(
            command=render_command(self._settings.max_pixels),
            inputs=(
                InputFile(self._script, SCRIPT_REMOTE, cache=True),
                InputFile(job.source, PHOTO_REMOTE, cache=False),
            ),
            outputs=tuple(OutputFile(remote, local) for remote, local in zip(OUTPUT_REMOTES, received, strict=True)),
            tag=entry.id,
            cores=1,
            memory_mb=self._settings.task_memory_mb,
            max_retries=10,  # lost workers: Work Queue resubmits by itself, up to this many tries
            max_run_seconds=self._settings.task_max_seconds,
        )
        metrics.TASKS_SUBMITTED.inc()
        future = self._runner.submit(task)
        future.add_done_callback(lambda done: self._hand_over(job, done))

    def _hand_over(self, job: _Job, done: concurrent.futures.Future[TaskResult]) -> None:
        # On the Work Queue loop thread: verification is slow, it runs on the pool.
        if self._closed:
            return
        try:
            self._pool.submit(self._on_task_done, job, done)
        except RuntimeError:  # the pool shut down meanwhile: the message will be redelivered
            return

    def _on_task_done(self, job: _Job, done: concurrent.futures.Future[TaskResult]) -> None:
        try:
            self._conclude(job, done.result())
        except Exception as exc:  # noqa: BLE001 - every outcome settles the photo's future
            self._settle_exception(job, exc)

    def _conclude(self, job: _Job, result: TaskResult) -> None:
        entry = job.entry
        plog = photo_logger(log, entry.id, worker=result.worker_address or "-")
        metrics.TASK_SECONDS.observe(max(0.0, result.done_at - result.submitted_at))
        assert job.workspace is not None
        workspace = job.workspace
        if result.result not in (Result.SUCCESS, Result.OUTPUT_MISSING) or (
            result.result is Result.OUTPUT_MISSING and result.return_status == 0
        ):
            self._retry(job, f"Work Queue: {result_text(result.result)} (after {result.try_count} tries)", plog)
            return
        if result.return_status != 0:
            kind, message = classify_exit(result.return_status, result.output)
            if kind is ErrorKind.WORKER_ENVIRONMENT:
                self._broken_worker(job, result, message, plog)
                return
            if permanent(kind):
                self._staging.discard(workspace)
                plog.warning("render failed permanently: %s: %s", kind.value, message)
                self._settle(job, [self._failed(entry, kind, message)])
                return
            self._retry(job, f"{kind.value}: {message}", plog)
            return
        thumbnail, web, meta = self._staging.name_artifacts(workspace, entry.id, _received(workspace))
        assert entry.sha256 is not None
        verification = verify_render(thumbnail, web, meta, entry.sha256)
        if not verification.ok or verification.meta is None:
            self._set_aside(result, plog)
            self._retry(job, f"invalid artifacts from {result.worker_address}: {verification.reason}", plog)
            return
        self._staging.commit(workspace, entry.id)
        plog.info("rendered and verified in %.2fs", result.execute_seconds)
        self._settle(job, [self._processed(entry, verification.meta)])

    def _retry(self, job: _Job, reason: str, plog: logging.LoggerAdapter) -> None:  # type: ignore[type-arg]
        job.attempts += 1
        job.last_reason = reason
        if job.workspace is not None:
            self._staging.discard(job.workspace)
        if job.attempts >= self._settings.render_attempts:
            plog.error("render failed %d times; giving up: %s", job.attempts, reason)
            message = f"no valid artifacts after {job.attempts} attempts; last: {reason}"
            self._settle(job, [self._failed(job.entry, ErrorKind.RENDER_FAILED, message)])
            return
        plog.warning("render attempt %d failed (%s); retrying", job.attempts, reason)
        metrics.TASKS_FAILED.labels(ErrorKind.RENDER_FAILED.value).inc()
        self._submit(job)

    def _broken_worker(self, job: _Job, result: TaskResult, message: str, plog: logging.LoggerAdapter) -> None:  # type: ignore[type-arg]
        job.environment_failures += 1
        metrics.TASKS_FAILED.labels(ErrorKind.WORKER_ENVIRONMENT.value).inc()
        if job.workspace is not None:
            self._staging.discard(job.workspace)
        host = result.hostname or self._hostname_by_address(result.worker_address)
        if host is None:
            plog.error(
                "worker %s cannot render (%s) and reports no usable host name to block", result.worker_address, message
            )
        elif host not in self._blocked_hosts:
            self._blocked_hosts.add(host)
            metrics.WORKERS_BLOCKED.set(len(self._blocked_hosts))
            self._runner.call(lambda manager: manager.block_host(host))
            plog.error("worker host %s (%s) cannot render: %s; blocked it", host, result.worker_address, message)
        if job.environment_failures >= self._settings.environment_failures_max:
            self._settle(job, [self._failed(job.entry, ErrorKind.WORKER_ENVIRONMENT, message)])
            return
        self._submit(job)

    def _set_aside(self, result: TaskResult, plog: logging.LoggerAdapter) -> None:  # type: ignore[type-arg]
        """Keep the next attempt off a host that returned invalid artifacts, if another host can take it.

        Work Queue cannot exclude a worker per task; a short block of the host
        does it, but only when some other host is connected, so that a
        one-machine installation never stalls.
        """
        host = result.hostname or self._hostname_by_address(result.worker_address)
        if host is None or host in self._blocked_hosts:
            return
        try:
            others = {w.hostname for w in query_workers(self._runner.port)} - {host}
        except (OSError, ValueError):
            return
        if not others:
            return
        seconds = self._settings.bad_worker_block_seconds
        self._runner.call(lambda manager: manager.block_host(host, seconds))
        plog.warning("set worker host %s aside for %ds after invalid artifacts", host, seconds)

    def _hostname_by_address(self, address: str | None) -> str | None:
        """Ask the manager (on this pool thread; the loop thread answers) which host a worker is on."""
        if address is None:
            return None
        try:
            name = hostname_of(self._runner.port, address)
        except (OSError, ValueError) as exc:
            log.warning("could not ask the manager about worker %s: %s", address, exc)
            return None
        # A worker whose own host name does not resolve reports garbage (cctools 8.0).
        return name if name and name.isprintable() and name.isascii() else None

    # --- outcomes -----------------------------------------------------------

    def _settle(self, job: _Job, events: Events) -> None:
        if self._closed:
            return
        for event in events:
            if event.status is Status.FAILED and event.error is not None:
                metrics.TASKS_FAILED.labels(event.error.kind.value).inc()
        if not job.future.done():
            job.future.set_result(events)

    def _settle_exception(self, job: _Job, exc: BaseException) -> None:
        if job.workspace is not None:
            self._staging.discard(job.workspace)
        if self._closed:
            return
        if not job.future.done():
            job.future.set_exception(exc)

    @staticmethod
    def _processed(entry: JournalEntry, meta: dict[str, object]) -> JournalEntry:
        return entry.next(Status.PROCESSED, service=SERVICE, meta=meta, error=None)

    @staticmethod
    def _failed(entry: JournalEntry, kind: ErrorKind, message: str) -> JournalEntry:
        error = ErrorInfo(stage=SERVICE, kind=kind, message=message)
        return entry.next(Status.FAILED, service=SERVICE, error=error)
