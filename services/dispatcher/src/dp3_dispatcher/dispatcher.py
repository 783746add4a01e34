"""Detected -> render task on Work Queue -> verification -> Processed | Failed.

The broker handler (:meth:`Dispatcher.handle`) returns at once with a Future;
the photo waits here until :mod:`dp3_dispatcher.batching` sends it, alone when
a worker is free, else with others in one task (``render_task.py --batch``:
one Python start for several photos). The Work Queue loop thread resolves the
task, and a small pool reads its results, verifies and commits each photo's
artifacts, then resolves each photo's Future with the events to publish (the
consumer publishes them, confirmed, before it acknowledges the Detected).
Every rule below is per photo: one bad photo in a batch fails alone.

What a returned task means is decided by :func:`dp3_dispatcher.verdict.verdict`
(a pure function; its docstring lists the rules): this module reads the
results, asks it, and carries out the actions. In short: INPUT_MISS for an
original that left the inbox drops that photo and sends the others again
uncharged; a worker that cannot render is blocked; a task that died without
per-photo outcomes has its photos run again alone, uncharged, and only a
photo that dies alone is charged; each photo of a batch that ran gets its own
outcome (the render task renders each photo in a child process under the
per-photo memory and time limits); verified artifacts are renamed into
``staging/<id>/`` and ``Processed`` carries meta.json.

A retry from the portal (``service: portal``) of a photo whose original has
been collected renders a private copy of the stores' original, verified
against the sha256 (:meth:`Dispatcher._copy_from_stores`).

Staging full (its results could not be written, or too little room is left)
is a staging problem, not the photo's nor the worker's: no attempt is
charged, no worker is set aside; the photos wait, and nothing is sent to a
worker, until staging has room again (checked every
``STAGING_RETRY_SECONDS``; ``dp3_dispatcher_staging_full``).

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

from dp3 import formats, layout, render_task
from dp3.broker import Message
from dp3.events import ErrorInfo, ErrorKind, JournalEntry, Status
from dp3.files import OutsideRoot, atomic_copy, event_path_under, path_under
from dp3.log import photo_logger
from dp3_dispatcher.batch_results import PhotoOutcome, Rendered, describe_outcomes, read_results
from dp3_dispatcher.batching import batch_sizes
from dp3_dispatcher.metrics import DispatcherMetrics, dispatcher_metrics
from dp3_dispatcher.runner import Runner
from dp3_dispatcher.settings import DispatcherSettings
from dp3_dispatcher.staging import Staging, out_of_space
from dp3_dispatcher.task_files import TaskFiles
from dp3_dispatcher.verdict import (
    Action,
    BlockHost,
    Drop,
    Fail,
    JobState,
    Limits,
    Retry,
    SetAside,
    Verify,
    charge,
    verdict,
)
from dp3_dispatcher.verify import verify_render
from dp3_dispatcher.workqueue import (
    InputFile,
    OutputFile,
    Result,
    Task,
    TaskResult,
    result_text,
)

log = logging.getLogger(__name__)

SERVICE = "dispatcher"
SCRIPT_REMOTE = "render_task.py"
FORMATS_REMOTE = "dp3_formats.py"
RESULTS_REMOTE = "results.tar"
RENDER_SCRIPT = Path(render_task.__file__)
FORMATS_MODULE = Path(formats.__file__)
TASK_FILES = ((RENDER_SCRIPT, SCRIPT_REMOTE), (FORMATS_MODULE, FORMATS_REMOTE))
"""What a worker needs beside the photos: the render task, and the contracts it shares (this very file).

Sent through :class:`~dp3_dispatcher.task_files.TaskFiles`, so that a worker's cached copy is never stale."""
TASK_FILES_FOLDER = "task-files"
"""Inside ``DP3_WORK_QUEUE_SCRATCH``: the content-named copies the task files are sent from."""
STAGING_RETRY_SECONDS = 10.0

Events = Sequence[JournalEntry]
RETRY_SERVICE = "portal"
TASK_START_SECONDS = 30
"""Beyond its photos' time limits, what a task may take to start Python, import Pillow and write its tar."""


def photo_remote(index: int) -> str:
    """The i-th photo's name on the worker: fixed, so no user file name reaches its shell."""
    return f"photo{index}"


def render_command(max_pixels: int, photos: int, memory_mb: int, seconds: int) -> str:
    """The shell command a worker runs: fixed names and integers, never user data.

    ``memory_mb`` and ``seconds`` bound each photo's render (the task renders
    each in a child process under them), not the task as a whole.
    """
    names = " ".join(photo_remote(index) for index in range(photos))
    limits = f"--max-pixels {int(max_pixels)} --memory-mb {int(memory_mb)} --seconds {int(seconds)}"
    return f"python3 {SCRIPT_REMOTE} {limits} --batch {RESULTS_REMOTE} {names}"


def is_retry(entry: JournalEntry) -> bool:
    """A Detected the portal re-emitted for a failed photo (its retry button or API)."""
    return entry.service == RETRY_SERVICE and entry.attempt > 0


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
    scratch: Path | None = None  # a workspace holding a private copy of the original (a retry from the stores)
    charged_renders: int = 0  # render attempts charged to this photo (verdict.JobState.charged_renders)
    environment_failures: int = 0
    alone: bool = False  # its batch died without outcomes: it runs in a task of its own until settled


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
        runner: Runner,
        staging: Staging,
        *,
        render_script: Path = RENDER_SCRIPT,
        metrics: DispatcherMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics or dispatcher_metrics()
        self._runner = runner
        self._staging = staging
        self._task_files = TaskFiles(
            settings.scratch_dir / TASK_FILES_FOLDER, ((render_script, SCRIPT_REMOTE), (FORMATS_MODULE, FORMATS_REMOTE))
        )
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="dp3-verify")
        self._lock = threading.Lock()
        self._inflight: dict[str, _Job] = {}
        self._waiting: collections.deque[_Job] = collections.deque()
        self._alone: collections.deque[_Job] = collections.deque()
        self._limits = Limits(settings.render_attempts, settings.environment_failures_max)
        self._tasks_out = 0  # submitted to Work Queue, not back yet
        self._blocked_hosts: set[str] = set()
        self._closed = False
        self._space_timer: threading.Timer | None = None

    @property
    def demand(self) -> int:
        """Tasks that could run now: those out on Work Queue, plus one per photo still waiting here."""
        with self._lock:
            return self._tasks_out + len(self._waiting)

    @property
    def blocked_hosts(self) -> frozenset[str]:
        return frozenset(self._blocked_hosts)

    def close(self) -> None:
        """Stop settling photos: called once the consumer has stopped, so their messages are redelivered."""
        self._closed = True
        if self._space_timer is not None:
            self._space_timer.cancel()
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
        name_problem = layout.id_problem(entry.id)
        if name_problem is not None:  # an id from before names were kept short: it can never be staged
            return [self._failed(entry, ErrorKind.BAD_NAME, name_problem)]
        meta = self._staging.verified_meta(entry.id, entry.sha256)
        if meta is not None:
            self._metrics.fast_path.inc()
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
        scratch = None
        if not original_present(source):
            if not is_retry(entry):
                # Gone since detection (collected after an earlier render, or deleted by
                # its owner): nothing to render and nothing to report.
                plog.warning(GONE, source)
                return []
            # A retry of a photo whose render failed, collected since: render the stores' copy.
            found = self._copy_from_stores(entry)
            if found is None:
                reason = "retry: the original has left the inbox and no store holds a copy with its sha256"
                plog.error(reason)
                return [self._failed(entry, ErrorKind.UNREADABLE, reason)]
            scratch, source = found
            plog.info("retry: rendering the stores' verified copy (the original has left the inbox)")
        job = _Job(entry=entry, source=source, scratch=scratch)
        with self._lock:
            self._inflight[entry.id] = job
            self._waiting.append(job)
        job.future.add_done_callback(lambda _done: self._forget(job))
        self._submit_waiting()
        return job.future

    def _source_path(self, entry: JournalEntry) -> Path | None:
        try:
            return event_path_under(self._settings.inbox_dir, entry.fs_path)
        except OutsideRoot:
            return None

    def _forget(self, job: _Job) -> None:
        with self._lock:
            if self._inflight.get(job.entry.id) is job:
                del self._inflight[job.entry.id]
        if job.scratch is not None:
            self._staging.discard(job.scratch)

    def _copy_from_stores(self, entry: JournalEntry) -> tuple[Path, Path] | None:
        """(workspace, original) for a private copy of the archived original whose bytes have the event's sha256.

        Stores are only read: the copy goes into a staging workspace (Work Queue
        reads its input from there), and it is the copy that is hashed, so the
        bytes rendered are the bytes verified. None if no store has them.
        """
        names = list(dict.fromkeys(name for name in (entry.stored_name, entry.id) if name))
        dates = [Path(folder).name for folder in entry.archives]
        dates.append(layout.date_folder(entry.datetime, self._settings.zone))
        for root in self._settings.stores:
            for date in dict.fromkeys(dates):
                for name in names:
                    try:
                        candidate = path_under(root, Path(date) / name)
                    except OutsideRoot:
                        continue
                    if not original_present(candidate):
                        continue
                    workspace = self._staging.workspace()
                    copy = workspace / "original"
                    try:
                        digest, _size = atomic_copy(candidate, copy)
                    except OSError as exc:
                        photo_logger(log, entry.id).warning("could not copy %s: %s", candidate, exc)
                        digest = ""
                    if digest == entry.sha256:
                        return workspace, copy
                    self._staging.discard(workspace)
        return None

    # --- submissions --------------------------------------------------------

    def _submit_waiting(self) -> None:
        """Send what waits as tasks, sized by :func:`batching.batch_sizes`."""
        if self._hold_while_staging_full():
            return
        with self._lock:
            if self._closed:
                return
            # Photos of a task that died go one per task, at once: Work Queue queues them for free workers.
            batches = [[self._alone.popleft()] for _ in range(len(self._alone))]
            sizes = batch_sizes(
                len(self._waiting), self._tasks_out + len(batches), self._workers(), self._settings.render_batch
            )
            batches += [[self._waiting.popleft() for _ in range(size)] for size in sizes]
            self._tasks_out += len(batches)
        for jobs in batches:
            self._submit(jobs)

    def _workers(self) -> int:
        """How many tasks can run at once: the workers connected, or the factory's maximum it will bring up."""
        connected = self._runner.stats.workers_connected
        if self._settings.worker_provider == "none":
            return connected  # workers come from elsewhere: only those that are here count
        return max(connected, self._settings.workers_max)

    def _requeue(self, jobs: Iterable[_Job]) -> None:
        """Put photos back at the head of the line; they leave with the next submission."""
        jobs = list(jobs)
        with self._lock:
            self._waiting.extendleft(reversed([job for job in jobs if not job.alone]))
            self._alone.extend(job for job in jobs if job.alone)

    def _submit(self, jobs: Sequence[_Job]) -> None:
        try:
            shipped = self._task_files.inputs()  # first: nothing to clean up if they cannot be copied
            workspace = self._staging.workspace()
        except OSError as exc:
            self._task_back()
            if out_of_space(exc):
                self._staging_full(jobs, f"cannot make a workspace: {exc}")
                return
            for job in jobs:
                self._settle_exception(job, exc)
            return
        batch = _Batch(tuple(jobs), workspace)
        first = jobs[0].entry.id
        task = Task(
            command=render_command(
                self._settings.max_pixels, len(jobs), self._settings.task_memory_mb, self._settings.task_max_seconds
            ),
            inputs=(
                *shipped,
                *(
                    InputFile(self._staging.input_alias(workspace, index, job.source), photo_remote(index), cache=False)
                    for index, job in enumerate(jobs)
                ),
            ),
            outputs=(OutputFile(RESULTS_REMOTE, workspace / RESULTS_REMOTE),),
            tag=first if len(jobs) == 1 else f"{first} and {len(jobs) - 1} more",
            cores=1,
            memory_mb=self._settings.task_memory_mb,
            max_retries=10,  # lost workers: Work Queue resubmits by itself, up to this many tries
            # Each photo's own timer fires first (it names the photo); this bounds the rest (start-up, the tar).
            # A photo may render twice: in the batch's shared child, then alone after a failure there.
            max_run_seconds=2 * self._settings.task_max_seconds * len(jobs) + TASK_START_SECONDS,
        )
        self._metrics.tasks_submitted.inc()
        self._metrics.photos_per_task.observe(len(jobs))
        future = self._runner.submit(task)
        future.add_done_callback(lambda done: self._read_on_pool(batch, done))

    def _task_back(self) -> None:
        with self._lock:
            self._tasks_out -= 1

    def _read_on_pool(self, batch: _Batch, done: concurrent.futures.Future[TaskResult]) -> None:
        # On the Work Queue loop thread: reading and verifying is slow, it runs on the pool.
        if self._closed:
            return
        try:
            self._pool.submit(self._on_task_done, batch, done)
        except RuntimeError:  # the pool shut down meanwhile: the messages will be redelivered
            return

    def _on_task_done(self, batch: _Batch, done: concurrent.futures.Future[TaskResult]) -> None:
        try:
            self._carry_out_verdict(batch, done.result())
        except Exception as exc:  # noqa: BLE001 - every outcome settles each photo's future
            for job in batch.jobs:
                self._settle_exception(job, exc)
        finally:
            self._staging.discard(batch.workspace)
            self._task_back()
            self._submit_waiting()  # a worker is free: what waits (retries first) goes now

    def _carry_out_verdict(self, batch: _Batch, result: TaskResult) -> None:
        """Read what the task left, ask :func:`verdict.verdict` what it means, and carry that out."""
        self._metrics.task_seconds.observe(max(0.0, result.done_at - result.submitted_at))
        if result.result is not Result.SUCCESS and self._staging.full():
            # Work Queue could not write the results: OUTPUT_MISSING, or MAX_RETRIES after it
            # dropped the worker on each failed transfer (cctools 8.0 counts that as the worker's).
            self._staging_full(batch.jobs, f"Work Queue: {result_text(result.result)}")
            return
        outcomes: list[PhotoOutcome] | None = None
        if result.result is Result.SUCCESS and result.return_status == 0:
            try:
                outcomes = read_results(batch.workspace / RESULTS_REMOTE, len(batch.jobs), self._staging.workspace)
            except (OSError, tarfile.TarError) as exc:
                if out_of_space(exc):
                    self._staging_full(batch.jobs, f"cannot unpack the results: {exc}")
                    return
                log.warning("unreadable results from %s: %s", result.worker_address, exc)
            else:
                if len(batch.jobs) > 1:
                    log.info(
                        "batch of %d back from %s: %s",
                        len(batch.jobs),
                        result.worker_address,
                        describe_outcomes(outcomes),
                    )
        missed = result.result is Result.INPUT_MISSING
        states = [
            JobState(
                job.charged_renders, job.environment_failures, not missed or original_present(job.source), job.alone
            )
            for job in batch.jobs
        ]
        actions = verdict(result, outcomes, states, self._limits)
        retries: list[_Job] = []
        set_aside = False
        for action in actions:
            if isinstance(action, SetAside):
                set_aside = True
            elif isinstance(action, BlockHost):
                self._block_host(result, action.message, batch.jobs[0])
            else:
                job = batch.jobs[action.index]
                try:
                    if isinstance(action, Verify):
                        assert outcomes is not None
                        outcome = outcomes[action.index]
                        assert isinstance(outcome, Rendered)
                        follow_up = self._accept(job, outcome, result)
                        if follow_up is None:
                            continue
                        set_aside = True
                        action = follow_up
                    self._carry_out(job, action, result, retries)
                except Exception as exc:  # noqa: BLE001 - one photo's trouble does not stop the others
                    if out_of_space(exc):
                        self._staging_full([job], f"cannot stage the artifacts: {exc}")
                    else:
                        self._settle_exception(job, exc)
        if set_aside:
            self._keep_next_attempt_off_host(result)
        self._requeue(retries)

    def _carry_out(self, job: _Job, action: Action, result: TaskResult, retries: list[_Job]) -> None:
        """One photo's action: settle it, or count the attempt and line it up again."""
        plog = photo_logger(log, job.entry.id, worker=result.worker_address or "-")
        if isinstance(action, Drop):
            plog.warning(GONE, job.source)
            self._settle(job, [])
        elif isinstance(action, Fail):
            plog.error("render failed: %s: %s", action.kind.value, action.message)
            self._settle(job, [self._failed(job.entry, action.kind, action.message)])
        elif isinstance(action, Retry):
            job.charged_renders += action.charged
            job.environment_failures += action.environment
            job.alone = action.alone
            if action.charged:
                self._metrics.tasks_failed.labels(action.kind.value).inc()
                plog.warning("render attempt %d failed (%s); retrying", job.charged_renders, action.reason)
            elif action.environment:
                self._metrics.tasks_failed.labels(ErrorKind.WORKER_ENVIRONMENT.value).inc()
                plog.warning("the worker could not render (%s); sending it elsewhere", action.reason)
            else:
                plog.info("%s; sent again, no attempt counted", action.reason)
            retries.append(job)

    def _accept(self, job: _Job, outcome: Rendered, result: TaskResult) -> Retry | Fail | None:
        """Verify and commit a rendered photo (then Processed, None); else the charge for invalid artifacts."""
        entry = job.entry
        workspace = outcome.workspace
        try:
            thumbnail, web, meta = self._staging.name_artifacts(workspace, entry.id, outcome.artifacts)
            assert entry.sha256 is not None
            verification = verify_render(thumbnail, web, meta, entry.sha256, max_pixels=self._settings.max_pixels)
            if not verification.ok or verification.meta is None:
                reason = f"invalid artifacts from {result.worker_address}: {verification.reason}"
                state = JobState(job.charged_renders, job.environment_failures, True, job.alone)
                return charge(0, state, ErrorKind.RENDER_FAILED, reason, self._limits)
            self._staging.commit(workspace, entry.id)
        finally:
            self._staging.discard(workspace)  # nothing left once committed
        photo_logger(log, entry.id, worker=result.worker_address or "-").info(
            "rendered and verified (its task ran %.2fs)", result.execute_seconds
        )
        self._settle(job, [self._processed(entry, verification.meta)])
        return None

    def _staging_full(self, jobs: Sequence[_Job], reason: str) -> None:
        """Staging has no room: hold the photos, charge nothing, blame no worker; see the module docstring."""
        self._metrics.staging_full_total.inc()
        self._metrics.staging_full.set(1)
        for job in jobs:
            photo_logger(log, job.entry.id).warning(
                "staging %s is full (%s); the render waits for room, no attempt counted", self._staging.root, reason
            )
        self._requeue(jobs)

    def _look_for_space(self) -> None:
        with self._lock:
            self._space_timer = None  # this timer is done: a still-full staging schedules the next look
        self._submit_waiting()

    def _hold_while_staging_full(self) -> bool:
        """True (and a look again later is scheduled) while photos wait and staging has no room for them."""
        with self._lock:
            if not (self._waiting or self._alone) or self._closed:
                return False
        if not self._staging.full():
            self._metrics.staging_full.set(0)
            return False
        self._metrics.staging_full.set(1)
        with self._lock:
            if self._space_timer is None or not self._space_timer.is_alive():
                self._space_timer = threading.Timer(STAGING_RETRY_SECONDS, self._look_for_space)
                self._space_timer.daemon = True
                self._space_timer.start()
        return True

    def _block_host(self, result: TaskResult, message: str, first: _Job) -> None:
        """This worker cannot render at all: block its host (its photos go elsewhere, by the verdict)."""
        host = result.hostname or self._hostname_by_address(result.worker_address)
        plog = photo_logger(log, first.entry.id, worker=result.worker_address or "-")
        if host is None:
            plog.error(
                "worker %s cannot render (%s) and reports no usable host name to block", result.worker_address, message
            )
        elif host not in self._blocked_hosts:
            self._blocked_hosts.add(host)
            self._metrics.workers_blocked.set(len(self._blocked_hosts))
            self._runner.block_host(host)
            plog.error("worker host %s (%s) cannot render: %s; blocked it", host, result.worker_address, message)

    def _keep_next_attempt_off_host(self, result: TaskResult) -> None:
        """Keep the next attempt off a host that returned invalid artifacts, if another host can take it.

        Work Queue cannot exclude a worker per task; a short block of the host
        does it, but only when some other host is connected, so that a
        one-machine installation never stalls.
        """
        host = result.hostname or self._hostname_by_address(result.worker_address)
        if host is None or host in self._blocked_hosts:
            return
        try:
            others = self._runner.worker_hosts() - {host}
        except (OSError, ValueError):
            return
        if not others:
            return
        seconds = self._settings.bad_worker_block_seconds
        self._runner.block_host(host, seconds)
        log.warning("set worker host %s aside for %ds after invalid artifacts", host, seconds)

    def _hostname_by_address(self, address: str | None) -> str | None:
        """Ask the manager (on this pool thread; the loop thread answers) which host a worker is on."""
        if address is None:
            return None
        try:
            name = self._runner.hostname_of(address)
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
                self._metrics.tasks_failed.labels(event.error.kind.value).inc()
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
