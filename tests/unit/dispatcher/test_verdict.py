"""The dispatcher's verdict on a returned task, rule by rule (``dp3_dispatcher.verdict``): pure, in milliseconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dp3 import formats
from dp3.events import ErrorKind
from dp3_dispatcher import verdict as rules
from dp3_dispatcher.batch_results import Missing, PhotoOutcome, Rendered, RenderFailed
from dp3_dispatcher.workqueue import Result, TaskResult

LIMITS = rules.Limits(render_attempts=3, environment_failures_max=5)
FRESH = rules.JobState()
ALONE = rules.JobState(alone=True)
LAST_TRY = rules.JobState(charged_renders=2, alone=True)


def task(result: Result = Result.SUCCESS, status: int = 0, output: str = "") -> TaskResult:
    return TaskResult(
        task_id=1,
        tag=None,
        result=result,
        return_status=status,
        output=output,
        worker_address="127.0.0.1:4242",
        hostname="node1",
        try_count=1,
        submitted_at=0.0,
        done_at=1.0,
        execute_seconds=1.0,
    )


def failed(status: int) -> RenderFailed:
    return RenderFailed(status, json.dumps({"kind": formats.KIND_BY_EXIT[status], "message": "why"}))


RENDERED = Rendered(Path("/nonexistent"))


def kinds(actions: list[rules.Action]) -> list[str]:
    """A compact picture of the actions, for the table."""
    out = []
    for action in actions:
        if isinstance(action, rules.Retry):
            flags = ("charged" if action.charged else "free") + (" alone" if action.alone else "")
            flags += " env" if action.environment else ""
            out.append(f"retry {action.index} {action.kind.value} {flags}")
        elif isinstance(action, rules.Fail):
            out.append(f"fail {action.index} {action.kind.value}")
        elif isinstance(action, rules.Drop):
            out.append(f"drop {action.index}")
        elif isinstance(action, rules.Verify):
            out.append(f"verify {action.index}")
        elif isinstance(action, rules.BlockHost):
            out.append("block host")
        elif isinstance(action, rules.SetAside):
            out.append("set aside")
    return out


CASES: list[tuple[str, TaskResult, list[PhotoOutcome] | None, list[rules.JobState], list[str]]] = [
    # 1. INPUT_MISS with an original gone: drop it, the others again uncharged, as they were.
    (
        "input miss, one gone",
        task(Result.INPUT_MISSING),
        None,
        [FRESH, rules.JobState(original_present=False), ALONE],
        ["retry 0 render_failed free", "drop 1", "retry 2 render_failed free alone"],
    ),
    # INPUT_MISS with every original there: the task died; a batch splits up.
    (
        "input miss, none gone",
        task(Result.INPUT_MISSING),
        None,
        [FRESH, FRESH],
        ["retry 0 render_failed free alone", "retry 1 render_failed free alone"],
    ),
    # 2. The worker cannot render at all: block it; photos again uncharged; the last allowed one fails.
    (
        "no python on worker",
        task(status=127, output="sh: python3: not found"),
        None,
        [FRESH, rules.JobState(environment_failures=4)],
        ["block host", "retry 0 worker_environment free env", "fail 1 worker_environment"],
    ),
    (
        "no pillow on worker",
        task(status=20, output=json.dumps({"kind": "worker_environment", "message": "no Pillow"})),
        None,
        [FRESH],
        ["block host", "retry 0 worker_environment free env"],
    ),
    # 3. A batch that died without outcomes: each photo alone, nobody charged.
    (
        "batch killed by a signal",
        task(status=137),
        None,
        [FRESH, FRESH, FRESH],
        [f"retry {i} render_crashed free alone" for i in range(3)],
    ),
    (
        "batch past its time",
        task(Result.TASK_MAX_RUN_TIME),
        None,
        [FRESH, FRESH],
        [f"retry {i} render_timeout free alone" for i in range(2)],
    ),
    (
        "batch lost by Work Queue",
        task(Result.MAX_RETRIES),
        None,
        [FRESH, FRESH],
        [f"retry {i} render_failed free alone" for i in range(2)],
    ),
    (
        "batch over its resources",
        task(Result.RESOURCE_EXHAUSTION),
        None,
        [FRESH, FRESH],
        [f"retry {i} render_crashed free alone" for i in range(2)],
    ),
    (
        "batch exited 1",
        task(status=1, output="Traceback"),
        None,
        [FRESH, FRESH],
        [
            "retry 0 render_failed free alone",
            "retry 1 render_failed free alone",
        ],
    ),
    # ... a photo already alone whose task dies is the culprit: charged, with the kind of the death.
    ("alone, killed", task(status=-11), None, [ALONE], ["retry 0 render_crashed charged alone"]),
    ("alone, past time", task(Result.TASK_MAX_RUN_TIME), None, [ALONE], ["retry 0 render_timeout charged alone"]),
    ("alone, last try killed", task(status=-9), None, [LAST_TRY], ["fail 0 render_crashed"]),
    ("alone, last try past time", task(Result.TASK_TIMEOUT), None, [LAST_TRY], ["fail 0 render_timeout"]),
    # A single photo is the culprit even if it was never in a batch.
    ("single, killed", task(status=139), None, [FRESH], ["retry 0 render_crashed charged"]),
    # A results tar that cannot be read: set the host aside; split, or rules.charge a photo alone.
    (
        "batch, unreadable tar",
        task(),
        None,
        [FRESH, FRESH],
        [
            "set aside",
            "retry 0 render_failed free alone",
            "retry 1 render_failed free alone",
        ],
    ),
    ("alone, unreadable tar", task(), None, [ALONE], ["set aside", "retry 0 render_failed charged alone"]),
    # 4. Per photo: each photo's own outcome, the innocent untouched.
    (
        "per photo outcomes",
        task(),
        [
            RENDERED,
            failed(formats.EXIT_CORRUPT_IMAGE),
            failed(formats.EXIT_TOO_LARGE),
            failed(formats.EXIT_RENDER_CRASHED),
            failed(formats.EXIT_RENDER_TIMEOUT),
            failed(formats.EXIT_RENDER_FAILED),
            failed(formats.EXIT_EMPTY_FILE),
            failed(formats.EXIT_UNSUPPORTED_FORMAT),
        ],
        [FRESH] * 8,
        [
            "verify 0",
            "fail 1 corrupt_image",
            "fail 2 too_large",
            "retry 3 render_crashed charged",
            "retry 4 render_timeout charged",
            "retry 5 render_failed charged",
            "fail 6 empty_file",
            "fail 7 unsupported_format",
        ],
    ),
    (
        "per photo, last attempts",
        task(),
        [failed(formats.EXIT_RENDER_CRASHED), failed(formats.EXIT_RENDER_TIMEOUT), RENDERED],
        [rules.JobState(charged_renders=2), rules.JobState(charged_renders=2), rules.JobState(charged_renders=2)],
        ["fail 0 render_crashed", "fail 1 render_timeout", "verify 2"],
    ),
    (
        "missing decoder: charged, host not blocked",
        task(),
        [failed(formats.EXIT_MISSING_DECODER), RENDERED],
        [FRESH, FRESH],
        ["retry 0 worker_environment charged", "verify 1"],
    ),
    (
        "one photo says the worker is broken",
        task(),
        [failed(formats.EXIT_WORKER_ENVIRONMENT), RENDERED],
        [FRESH, FRESH],
        ["block host", "retry 0 worker_environment free env", "verify 1"],
    ),
    (
        "a photo the tar does not account for",
        task(),
        [Missing("the batch results lack meta.json"), RENDERED],
        [FRESH, FRESH],
        ["set aside", "retry 0 render_failed charged", "verify 1"],
    ),
]


@pytest.mark.parametrize(
    ("result", "outcomes", "jobs", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_verdict(
    result: TaskResult, outcomes: list[PhotoOutcome] | None, jobs: list[rules.JobState], expected: list[str]
) -> None:
    assert kinds(rules.verdict(result, outcomes, jobs, LIMITS)) == expected


def test_the_innocent_of_a_dead_batch_are_never_charged() -> None:
    # However often a batch dies, its photos only ever go again alone, uncharged.
    for death in (task(status=137), task(Result.TASK_MAX_RUN_TIME), task(Result.SIGNAL), task(status=1)):
        actions = rules.verdict(death, None, [rules.JobState(charged_renders=2)] * 16, LIMITS)
        assert all(isinstance(a, rules.Retry) and not a.charged and a.alone for a in actions)


def test_final_messages_name_the_kind_and_attempts() -> None:
    final = rules.charge(0, LAST_TRY, ErrorKind.RENDER_TIMEOUT, "took longer than 5 s (DP3_TASK_MAX_SECONDS)", LIMITS)
    assert isinstance(final, rules.Fail)
    assert "DP3_TASK_MAX_SECONDS" in final.message and "3 attempts" in final.message
    final = rules.charge(0, LAST_TRY, ErrorKind.RENDER_FAILED, "bad web.jpg", LIMITS)
    assert isinstance(final, rules.Fail) and final.message.startswith("no valid artifacts after 3 attempts")


def test_a_dead_single_task_reporting_a_permanent_kind_fails_at_once() -> None:
    line = json.dumps({"kind": "too_large", "message": "needs 2 GB (DP3_TASK_MEMORY_MB)"})
    actions = rules.verdict(task(status=formats.EXIT_TOO_LARGE, output=line), None, [FRESH], LIMITS)
    assert kinds(actions) == ["fail 0 too_large"]
