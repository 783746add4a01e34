"""What a returned render task means for each of its photos. Pure: plain values in, a list of actions out.

``verdict(task result, per-photo outcomes, job states, limits) -> [actions]``;
the dispatcher only carries the actions out (verifies and commits, publishes,
requeues, blocks a host). The rules, in order:

1. Work Queue could not send an input and some originals have left the inbox
   (INPUT_MISS): those photos are dropped (nothing to render, nothing to
   report); the others go again, uncharged, as they were.
2. The task as a whole says the worker cannot render (exit 20/21, or the
   shell's 126/127): the host is blocked and each photo goes again,
   uncharged, until ``environment_failures_max`` such failures.
3. The task died without per-photo outcomes (Work Queue could not run it,
   the process was killed or exited non-zero, its results tar is
   unreadable): with more than one photo, nobody is to blame yet, so each
   photo is **run again alone**, uncharged. A photo that was already alone
   is the culprit: it is charged one attempt, with the kind of the death
   (``render_timeout``, ``render_crashed``, ``render_failed``).
4. Per photo, from the batch's results: rendered -> verify (the I/O side;
   artifacts that do not verify are charged with :func:`charge`); a
   permanent kind -> Failed; a missing decoder -> charged as
   ``worker_environment`` without blocking the host; a worker-environment
   verdict for one photo -> block the host, go again; a crash or timeout of
   that photo's own render (the render task isolates each photo) -> charged
   with that kind; anything else -> charged as ``render_failed``; a photo the
   tar does not account for -> charged, and the host set aside.

A charged photo goes again until ``render_attempts`` attempts, then fails with
the kind of its last attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dp3 import formats
from dp3.events import ErrorKind
from dp3_dispatcher.batch_results import Missing, PhotoOutcome, RenderFailed
from dp3_dispatcher.verify import classify_exit, permanent
from dp3_dispatcher.workqueue import Result, TaskResult, result_text

_SHELL_KILLED = 128  # a shell reports a command killed by signal N as 128 + N


@dataclass(frozen=True)
class JobState:
    """What the verdict needs to know about one photo of the task."""

    charged_renders: int = 0
    """Render attempts charged to this photo so far (its fault, or not yet known not to be); re-sends
    the photo is not to blame for (a worker without libraries, a dead batch, a full staging) do not
    count. At ``Limits.render_attempts`` it fails."""
    environment_failures: int = 0
    """Times a worker could not render it at all (exit 20/21): re-sent uncharged, up to a limit."""
    original_present: bool = True
    alone: bool = False


@dataclass(frozen=True)
class Limits:
    render_attempts: int
    environment_failures_max: int


@dataclass(frozen=True)
class Verify:
    """The photo was rendered: verify its artifacts and commit them (then Processed), or :func:`charge` it."""

    index: int


@dataclass(frozen=True)
class Fail:
    index: int
    kind: ErrorKind
    message: str


@dataclass(frozen=True)
class Drop:
    """The original left the inbox: nothing to render, nothing to report."""

    index: int


@dataclass(frozen=True)
class Retry:
    """Send the photo again; ``charged`` counts an attempt, ``alone`` keeps it in a task of its own."""

    index: int
    reason: str
    kind: ErrorKind
    charged: bool
    alone: bool
    environment: bool = False


@dataclass(frozen=True)
class BlockHost:
    """The worker's host cannot render at all: block it for good."""

    message: str


@dataclass(frozen=True)
class SetAside:
    """The worker returned something invalid: keep the next attempt off its host for a while."""


Action = Verify | Fail | Drop | Retry | BlockHost | SetAside


def charge(index: int, job: JobState, kind: ErrorKind, reason: str, limits: Limits) -> Retry | Fail:
    """One attempt counted against the photo: again while attempts remain, else Failed with ``kind``."""
    attempts = job.charged_renders + 1
    if attempts < limits.render_attempts:
        return Retry(index, reason, kind, charged=True, alone=job.alone)
    if kind is ErrorKind.RENDER_FAILED:
        message = f"no valid artifacts after {attempts} attempts; last: {reason}"
    else:
        message = f"{reason} (in each of {attempts} attempts)"
    return Fail(index, kind, message)


def verdict(
    result: TaskResult, outcomes: Sequence[PhotoOutcome] | None, jobs: Sequence[JobState], limits: Limits
) -> list[Action]:
    """The actions for a returned task; ``outcomes`` is None when its results could not be read."""
    if result.result is Result.INPUT_MISSING and not all(job.original_present for job in jobs):
        return [
            Retry(
                index, "sent again: another photo of its task left the inbox", ErrorKind.RENDER_FAILED, False, job.alone
            )
            if job.original_present
            else Drop(index)
            for index, job in enumerate(jobs)
        ]
    death = _task_death(result)
    if death is not None:
        kind, reason = death
        if kind is ErrorKind.WORKER_ENVIRONMENT:
            return [BlockHost(reason), *_environment_retries(enumerate(jobs), reason, limits)]
        return _died(jobs, kind, reason, limits)
    if outcomes is None:
        reason = f"unreadable results from {result.worker_address}"
        return [SetAside(), *_died(jobs, ErrorKind.RENDER_FAILED, reason, limits)]
    actions: list[Action] = []
    for index, (job, outcome) in enumerate(zip(jobs, outcomes, strict=True)):
        actions.extend(_photo(index, job, outcome, result, limits))
    if any(isinstance(outcome, Missing) for outcome in outcomes) and SetAside() not in actions:
        actions.insert(0, SetAside())
    return actions


def _task_death(result: TaskResult) -> tuple[ErrorKind, str] | None:
    """Why the task as a whole gave no per-photo outcomes, as (kind, reason); None if it ran and reported."""
    if result.result is Result.SUCCESS or (result.result is Result.OUTPUT_MISSING and result.return_status != 0):
        if result.return_status == 0:
            return None
        kind, message = classify_exit(result.return_status, result.output)
        if kind is ErrorKind.RENDER_FAILED and _killed_by_signal(result.return_status):
            return ErrorKind.RENDER_CRASHED, f"the render process was killed: {message}"
        return kind, f"{kind.value}: {message}"
    what = f"Work Queue: {result_text(result.result)} (after {result.try_count} tries)"
    if result.result in (Result.TASK_MAX_RUN_TIME, Result.TASK_TIMEOUT):
        return ErrorKind.RENDER_TIMEOUT, f"{what}: the task ran past its time limit (DP3_TASK_MAX_SECONDS per photo)"
    if result.result is Result.SIGNAL:
        return ErrorKind.RENDER_CRASHED, f"{what}: the render process died of a signal"
    if result.result is Result.RESOURCE_EXHAUSTION:
        return ErrorKind.RENDER_CRASHED, f"{what}: the task used more than it declared (DP3_TASK_MEMORY_MB, disk)"
    return ErrorKind.RENDER_FAILED, what


def _killed_by_signal(status: int) -> bool:
    return status < 0 or _SHELL_KILLED < status < _SHELL_KILLED + 65


def _died(jobs: Sequence[JobState], kind: ErrorKind, reason: str, limits: Limits) -> list[Action]:
    """A task that left no per-photo outcomes: a batch splits up uncharged; a photo alone is charged."""
    if len(jobs) > 1:
        note = f"its task of {len(jobs)} died ({reason}); run again alone to find the photo at fault"
        return [Retry(index, note, kind, charged=False, alone=True) for index in range(len(jobs))]
    if permanent(kind):
        return [Fail(0, kind, reason)]
    return [charge(0, jobs[0], kind, f"rendered alone, {reason}", limits)]


def _environment_retries(jobs: Iterable[tuple[int, JobState]], message: str, limits: Limits) -> list[Action]:
    """The worker's fault, not the photos': each goes again uncharged, up to ``environment_failures_max`` times."""
    actions: list[Action] = []
    for index, job in jobs:
        if job.environment_failures + 1 >= limits.environment_failures_max:
            actions.append(Fail(index, ErrorKind.WORKER_ENVIRONMENT, message))
        else:
            actions.append(Retry(index, message, ErrorKind.WORKER_ENVIRONMENT, False, job.alone, environment=True))
    return actions


def _photo(index: int, job: JobState, outcome: PhotoOutcome, result: TaskResult, limits: Limits) -> list[Action]:
    if isinstance(outcome, Missing):
        return [
            charge(index, job, ErrorKind.RENDER_FAILED, f"{outcome.reason} (worker {result.worker_address})", limits)
        ]
    if not isinstance(outcome, RenderFailed):
        return [Verify(index)]
    kind, message = classify_exit(outcome.status, outcome.output)
    if outcome.status == formats.EXIT_MISSING_DECODER:
        return [charge(index, job, ErrorKind.WORKER_ENVIRONMENT, message, limits)]
    if kind is ErrorKind.WORKER_ENVIRONMENT:
        return [BlockHost(message), *_environment_retries([(index, job)], message, limits)]
    if permanent(kind):
        return [Fail(index, kind, message)]
    return [charge(index, job, kind, f"{kind.value}: {message}", limits)]
