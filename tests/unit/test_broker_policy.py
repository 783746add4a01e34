"""The consumer's retry / dead-letter policy, rule by rule (``dp3.broker_policy``): pure, in milliseconds."""

from __future__ import annotations

import pytest

from dp3 import broker_policy as policy
from dp3.broker import BrokerOptions
from dp3.errors import Retryable
from dp3.events import InvalidEvent

LIMITS = BrokerOptions(retry_delays=(1.0, 5.0, 30.0), max_attempts=3)
BUG = policy.Failure.raised(KeyError("width"))
STORE_DOWN = policy.Failure.raised(Retryable("store A is down"))


class CatalogDown(Retryable):
    pass


CASES: list[tuple[str, policy.Failure, int, int, policy.Action]] = [
    # 1. A body that is not a journal entry: dead-lettered at once, uncounted, whatever the counts.
    (
        "invalid body",
        policy.Failure.invalid_body("no 'status'"),
        0,
        0,
        policy.DeadLetter("unparseable event: no 'status'"),
    ),
    (
        "invalid body, counts ignored",
        policy.Failure.invalid_body("not JSON"),
        2,
        7,
        policy.DeadLetter("unparseable event: not JSON"),
    ),
    # 2. Retryable: the next delay, counted in retries, never dead-lettered; the last delay repeats.
    ("retryable, first", STORE_DOWN, 0, 0, policy.Retry(1.0, charged=False, count=1, reason="store A is down")),
    ("retryable, second", STORE_DOWN, 0, 1, policy.Retry(5.0, charged=False, count=2, reason="store A is down")),
    ("retryable, delays run out", STORE_DOWN, 0, 3, policy.Retry(30.0, False, 4, "store A is down")),
    ("retryable, far past any limit", STORE_DOWN, 2, 500, policy.Retry(30.0, False, 501, "store A is down")),
    # ... a subclass of Retryable counts as one; attempts already counted do not matter.
    (
        "retryable subclass",
        policy.Failure.raised(CatalogDown("no catalog")),
        2,
        0,
        policy.Retry(1.0, False, 1, "no catalog"),
    ),
    # 3./4. Anything else: one attempt counted; again with the attempt's delay until max_attempts.
    ("bug, first", BUG, 0, 0, policy.Retry(1.0, charged=True, count=1, reason="KeyError: 'width'")),
    ("bug, second", BUG, 1, 0, policy.Retry(5.0, charged=True, count=2, reason="KeyError: 'width'")),
    ("bug, retries do not count", BUG, 1, 9, policy.Retry(5.0, True, 2, "KeyError: 'width'")),
    ("bug, last attempt", BUG, 2, 0, policy.DeadLetter("KeyError: 'width'", handler_failures=3)),
    ("bug, past the limit", BUG, 7, 0, policy.DeadLetter("KeyError: 'width'", handler_failures=8)),
]


@pytest.mark.parametrize(
    ("failure", "handler_failures", "retries", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_on_failure(failure: policy.Failure, handler_failures: int, retries: int, expected: policy.Action) -> None:
    assert policy.on_failure(failure, LIMITS, handler_failures=handler_failures, retries=retries) == expected


def test_the_last_delay_repeats_for_bugs_when_attempts_outnumber_delays() -> None:
    limits = BrokerOptions(retry_delays=(2.0,), max_attempts=4)
    assert [policy.on_failure(BUG, limits, handler_failures=n) for n in range(4)] == [
        policy.Retry(2.0, True, 1, "KeyError: 'width'"),
        policy.Retry(2.0, True, 2, "KeyError: 'width'"),
        policy.Retry(2.0, True, 3, "KeyError: 'width'"),
        policy.DeadLetter("KeyError: 'width'", 4),
    ]


def test_one_attempt_allowed_dead_letters_the_first_bug() -> None:
    limits = BrokerOptions(max_attempts=1)
    assert policy.on_failure(BUG, limits) == policy.DeadLetter("KeyError: 'width'", 1)


def test_failure_of_an_exception_names_its_kind() -> None:
    assert policy.Failure.raised(ValueError("bad")) == policy.Failure(policy.Fault.BUG, "ValueError", "bad")
    assert policy.Failure.raised(Retryable("later")).fault is policy.Fault.RETRYABLE
    invalid = policy.Failure.invalid_body(str(InvalidEvent("no id")))
    assert invalid.fault is policy.Fault.INVALID_BODY and invalid.message == "no id"


def test_the_defaults_give_five_attempts() -> None:
    actions = [policy.on_failure(BUG, BrokerOptions(), handler_failures=n) for n in range(5)]
    assert [type(a).__name__ for a in actions] == ["Retry"] * 4 + ["DeadLetter"]
    assert [a.delay for a in actions if isinstance(a, policy.Retry)] == [1.0, 5.0, 30.0, 120.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), ("4", 4), (b"5", 5), ("x", 0), (None, 0), (-2, 0), (True, 0), (1.9, 1), (float("nan"), 0), ([1], 0)],
)
def test_a_header_count_that_is_not_a_count_is_zero(value: object, expected: int) -> None:
    from dp3.broker import ATTEMPTS_HEADER, header_count

    assert header_count({ATTEMPTS_HEADER: value}, ATTEMPTS_HEADER) == expected
    assert header_count({}, ATTEMPTS_HEADER) == 0
