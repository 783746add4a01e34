"""Detected -> render task on Work Queue -> verification -> Processed | Failed.

The broker handler (:meth:`Dispatcher.handle`) returns at once with a Future;
the photo waits here until :mod:`dp3_dispatcher.batching` sends it, alone when
a worker is free, else with others in one task (``render_task.py --batch``:
one Python start for several photos). The Work Queue loop thread resolves the
task, and a small pool reads its results, verifies and commits each photo's
artifacts, then resolves each photo's Future with the events to publish (the
consumer publishes them, confirmed, before it acknowledges the Detected).
Every rule below is per photo: one bad photo in a batch fails alone.

What a returned task means, in order:

* Work Queue could not send an input because a photo's original has left
  the inbox since it was accepted (collected after an earlier render of the
  same photo, whose Detected came again; or deleted by its owner): that photo
  has nothing to render and nothing to report, and the others of the task,
  not at fault (one missing input fails the whole task), are sent again
  without an attempt counted.
* Work Queue could not run it otherwise (worker lost too often...):
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

import collections
import concurrent.futures
import logging
import tarfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dp3.broker import Message
from dp3.events import ErrorInfo, ErrorKind, JournalEntry, Status
from dp3.files import OutsideRoot, is_within, path_under
from dp3.log import PhotoLogger, photo_logger
from dp3_dispatcher import metrics, render_task
from dp3_dispatcher.batch_results import Missing, PhotoOutcome, RenderFailed, outcome_names, read_results
from dp3_dispatcher.batching import batch_sizes
from dp3_dispatcher.runner import TaskRunner
from dp3_dispatcher.settings import DispatcherSettings
from dp3_dispatcher.staging import Staging
from dp3_dispatcher.verify import classify_exit, permanent, verify_render
from dp3_dispatcher.workqueue import (
    InputFile,
    OutputFile,
    Result,
    Task,
    TaskResult,
    hostname_of,
    query_workers,
    result_text,
)

log = logging.getLogger(__name__)

SERVICE = "dispatcher"
SCRIPT_REMOTE = "render_task.py"
RESULTS_REMOTE = "results.tar"
RENDER_SCRIPT = Path(__file__).with_name("render_task.py")

Events = Sequence[JournalEntry]


def photo_remote(index: int) -> str:
    """The i-th photo's name on the worker: fixed, so no user file name reaches its shell."""
    return f"photo{index}"


def render_command(max_pixels: int, photos: int) -> str:
    """The shell command a worker runs: fixed names and integers, never user data."""
    names = " ".join(photo_remote(index) for index in range(photos))
    return f"python3 {SCRIPT_REMOTE} --max-pixels {int(max_pixels)} --batch {RESULTS_REMOTE} {names}"


def original_present(source: Path) -> bool:
    """The photo's original is still in the inbox: a regular file, not a symlink."""
    return source.is_file() and not source.is_symlink()


GONE = "the original is no longer in the inbox (%s); nothing to render"
"""Log line for a photo whose original left the inbox (collected after an earlier render, or deleted)."""


@dataclass
class _Job:
    """One photo's render, across its attempts."""

    entry: JournalEntry
    source: Path
    future: concurrent.futures.Future[Events] = field(default_factory=concurrent.futures.Future)
    attempts: int = 0
    environment_failures: int = 0


@dataclass(frozen=True)
class _Batch:
    """One Work Queue task: these photos, rendered by one process, results into ``workspace``."""

    jobs: tuple[_Job, ...]
    workspace: Path


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
        self._waiting: collections.deque[_Job] = collections.deque()
        self._tasks_out = 0  # submitted to Work Queue, not back yet
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
        if not original_present(source):
            # Gone since detection (collected after an earlier render, or deleted by
            # its owner): nothing to render and nothing to report.
            plog.warning(GONE, source)
            return []
        job = _Job(entry=entry, source=source)
        with self._lock:
            self._inflight[entry.id] = job
            self._waiting.append(job)
        job.future.add_done_callback(lambda _done: self._forget(job))
        self._submit_waiting()
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

    def _submit_waiting(self) -> None:
        """Send what waits as tasks, sized by :func:`batching.batch_sizes`."""
        with self._lock:
            if self._closed:
                return
            sizes = batch_sizes(len(self._waiting), self._tasks_out, self._workers(), self._settings.render_batch)
            batches = [[self._waiting.popleft() for _ in range(size)] for size in sizes]
            self._tasks_out += len(batches)
        for jobs in batches:
            self._submit(jobs)

    def _workers(self) -> int:
        """How many tasks can run at once: the workers connected, or the factory's maximum it will bring up."""
        connected = self._runner.stats.workers_connected
        if self._settings.work_queue_batch == "none":
            return connected  # workers come from elsewhere: only those that are here count
        return max(connected, self._settings.max_workers)

    def _requeue(self, jobs: Iterable[_Job]) -> None:
        """Put photos back at the head of the line; they leave with the next submission."""
        with self._lock:
            self._waiting.extendleft(reversed(list(jobs)))

    def _submit(self, jobs: Sequence[_Job]) -> None:
        try:
            workspace = self._staging.workspace()
        except OSError as exc:
            self._task_back()
            for job in jobs:
                self._settle_exception(job, exc)
            return
        batch = _Batch(tuple(jobs), workspace)
        first = jobs[0].entry.id
        task = Task(
            command=render_command(self._settings.max_pixels, len(jobs)),
            inputs=(
                InputFile(self._script, SCRIPT_REMOTE, cache=True),
                *(InputFile(job.source, photo_remote(index), cache=False) for index, job in enumerate(jobs)),
            ),
            outputs=(OutputFile(RESULTS_REMOTE, workspace / RESULTS_REMOTE),),
            tag=first if len(jobs) == 1 else f"{first} and {len(jobs) - 1} more",
            cores=1,
            memory_mb=self._settings.task_memory_mb,
            max_retries=10,  # lost workers: Work Queue resubmits by itself, up to this many tries
            max_run_seconds=self._settings.task_max_seconds * len(jobs),
        )
        metrics.TASKS_SUBMITTED.inc()
        metrics.PHOTOS_PER_TASK.observe(len(jobs))
        future = self._runner.submit(task)
        future.add_done_callback(lambda done: self._hand_over(batch, done))

    def _task_back(self) -> None:
        with self._lock:
            self._tasks_out -= 1

    def _hand_over(self, batch: _Batch, done: concurrent.futures.Future[TaskResult]) -> None:
        # On the Work Queue loop thread: reading and verifying is slow, it runs on the pool.
        if self._closed:
            return
        try:
            self._pool.submit(self._on_task_done, batch, done)
        except RuntimeError:  # the pool shut down meanwhile: the messages will be redelivered
            return

    def _on_task_done(self, batch: _Batch, done: concurrent.futures.Future[TaskResult]) -> None:
        try:
            self._conclude(batch, done.result())
        except Exception as exc:  # noqa: BLE001 - every outcome settles each photo's future
            for job in batch.jobs:
                self._settle_exception(job, exc)
        finally:
            self._staging.discard(batch.workspace)
            self._task_back()
            self._submit_waiting()  # a worker is free: what waits (retries first) goes now

    def _conclude(self, batch: _Batch, result: TaskResult) -> None:
        """The task as a whole first (Work Queue, the worker's environment), then each photo."""
        metrics.TASK_SECONDS.observe(max(0.0, result.done_at - result.submitted_at))
        if result.result is Result.INPUT_MISSING and self._drop_gone_originals(batch.jobs):
            return
        if result.result not in (Result.SUCCESS, Result.OUTPUT_MISSING) or (
            result.result is Result.OUTPUT_MISSING and result.return_status == 0
        ):
            reason = f"Work Queue: {result_text(result.result)} (after {result.try_count} tries)"
            self._retry_all(batch.jobs, reason, result)
            return
        if result.return_status != 0:
            kind, message = classify_exit(result.return_status, result.output)
            if kind is ErrorKind.WORKER_ENVIRONMENT:
                self._broken_worker(batch.jobs, result, message)
                return
            self._retry_all(batch.jobs, f"{kind.value}: {message}", result)
            return
        try:
            outcomes = read_results(batch.workspace / RESULTS_REMOTE, len(batch.jobs), self._staging.workspace)
        except (OSError, tarfile.TarError) as exc:
            self._set_aside(result)
            self._retry_all(batch.jobs, f"unreadable results from {result.worker_address}: {exc}", result)
            return
        if len(batch.jobs) > 1:
            log.info("batch of %d back from %s: %s", len(batch.jobs), result.worker_address, outcome_names(outcomes))
        invalid = False
        for job, outcome in zip(batch.jobs, outcomes, strict=True):
            try:
                invalid |= self._conclude_photo(job, outcome, result)
            except Exception as exc:  # noqa: BLE001 - one photo's trouble does not stop the others
                self._settle_exception(job, exc)
        if invalid:
            self._set_aside(result)

    def _conclude_photo(self, job: _Job, outcome: PhotoOutcome, result: TaskResult) -> bool:
        """Settle or retry one photo of a returned task; True if the worker returned invalid artifacts."""
        entry = job.entry
        plog = photo_logger(log, entry.id, worker=result.worker_address or "-")
        if isinstance(outcome, Missing):
            self._retry(job, f"{outcome.reason} (worker {result.worker_address})", plog)
            return True
        if isinstance(outcome, RenderFailed):
            kind, message = classify_exit(outcome.status, outcome.output)
            if outcome.status == render_task.EXIT_MISSING_DECODER:
                self._missing_decoder(job, message, plog)
            elif kind is ErrorKind.WORKER_ENVIRONMENT:
                self._broken_worker([job], result, message)
            elif permanent(kind):
                plog.warning("render failed permanently: %s: %s", kind.value, message)
                self._settle(job, [self._failed(entry, kind, message)])
            else:
                self._retry(job, f"{kind.value}: {message}", plog)
            return False
        workspace = outcome.workspace
        try:
            thumbnail, web, meta = self._staging.name_artifacts(workspace, entry.id, outcome.artifacts)
            assert entry.sha256 is not None
            verification = verify_render(thumbnail, web, meta, entry.sha256)
            if not verification.ok or verification.meta is None:
                self._retry(job, f"invalid artifacts from {result.worker_address}: {verification.reason}", plog)
                return True
            self._staging.commit(workspace, entry.id)
        finally:
            self._staging.discard(workspace)  # nothing left once committed
        plog.info("rendered and verified (its task ran %.2fs)", result.execute_seconds)
        self._settle(job, [self._processed(entry, verification.meta)])
        return False

    def _missing_decoder(self, job: _Job, message: str, plog: PhotoLogger) -> None:
        """This worker lacks a decoder for this photo (HEIC without pillow-heif); another worker may have it.

        Not a broken worker (it renders JPEGs), so its host is not blocked; the
        photo is tried again up to ``DP3_RENDER_ATTEMPTS`` times, then fails
        as ``worker_environment``, which names what to install.
        """
        job.attempts += 1
        metrics.TASKS_FAILED.labels(ErrorKind.WORKER_ENVIRONMENT.value).inc()
        if job.attempts >= self._settings.render_attempts:
            plog.error("no worker could decode it in %d attempts: %s", job.attempts, message)
            self._settle(job, [self._failed(job.entry, ErrorKind.WORKER_ENVIRONMENT, message)])
            return
        plog.warning("this worker cannot decode it (%s); trying again", message)
        self._requeue([job])

    def _drop_gone_originals(self, jobs: Sequence[_Job]) -> bool:
        """After INPUT_MISS: settle the photos whose original left the inbox, send the others again.

        False if every original is still there: then the miss was something else,
        and it counts as a failed attempt for each photo.
        """
        present = [original_present(job.source) for job in jobs]
        if all(present):
            return False
        for job, there in zip(jobs, present, strict=True):
            if not there:
                photo_logger(log, job.entry.id).warning(GONE, job.source)
                self._settle(job, [])
        self._requeue(job for job, there in zip(jobs, present, strict=True) if there)
        return True

    def _retry_all(self, jobs: Sequence[_Job], reason: str, result: TaskResult) -> None:
        for job in jobs:
            self._retry(job, reason, photo_logger(log, job.entry.id, worker=result.worker_address or "-"))

    def _retry(self, job: _Job, reason: str, plog: PhotoLogger) -> None:
        job.attempts += 1
        if job.attempts >= self._settings.render_attempts:
            plog.error("render failed %d times; giving up: %s", job.attempts, reason)
            message = f"no valid artifacts after {job.attempts} attempts; last: {reason}"
            self._settle(job, [self._failed(job.entry, ErrorKind.RENDER_FAILED, message)])
            return
        plog.warning("render attempt %d failed (%s); retrying", job.attempts, reason)
        metrics.TASKS_FAILED.labels(ErrorKind.RENDER_FAILED.value).inc()
        self._requeue([job])

    def _broken_worker(self, jobs: Sequence[_Job], result: TaskResult, message: str) -> None:
        """This worker cannot render at all: block its host, send the photos elsewhere."""
        metrics.TASKS_FAILED.labels(ErrorKind.WORKER_ENVIRONMENT.value).inc()
        host = result.hostname or self._hostname_by_address(result.worker_address)
        first = photo_logger(log, jobs[0].entry.id, worker=result.worker_address or "-")
        if host is None:
            first.error(
                "worker %s cannot render (%s) and reports no usable host name to block", result.worker_address, message
            )
        elif host not in self._blocked_hosts:
            self._blocked_hosts.add(host)
            metrics.WORKERS_BLOCKED.set(len(self._blocked_hosts))
            self._runner.call(lambda manager: manager.block_host(host))
            first.error("worker host %s (%s) cannot render: %s; blocked it", host, result.worker_address, message)
        again = []
        for job in jobs:
            job.environment_failures += 1
            if job.environment_failures >= self._settings.environment_failures_max:
                self._settle(job, [self._failed(job.entry, ErrorKind.WORKER_ENVIRONMENT, message)])
            else:
                again.append(job)
        self._requeue(again)

    def _set_aside(self, result: TaskResult) -> None:
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
        log.warning("set worker host %s aside for %ds after invalid artifacts", host, seconds)

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
