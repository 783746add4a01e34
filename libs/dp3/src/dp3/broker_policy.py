"""What the consumer does with a message it could not handle. Pure: plain values in, one action out.

``on_failure(failure, limits, handler_failures, retries) -> Retry | DeadLetter``; the
consumer (:class:`dp3.broker.Consumer`) only carries the action out (copies the
message to a retry queue or to ``dp3.dead``, then acks the original). The
rules, in order:

1. A body that is not a journal entry: dead-lettered at once, with the reason
   (no attempt is counted; running it again cannot help).
2. The handler raised :class:`~dp3.errors.Retryable` (a store is down):
   retried after ``retry_delays[retries]`` (the last delay once they run out),
   counted in ``x-dp3-retries``, without limit.
3. The handler raised anything else (a bug): one handler failure is counted
   in ``x-dp3-attempts``; at ``max_attempts`` it is dead-lettered with the
   reason ``<ExceptionType>: <message>`` and the count ...
4. ... otherwise retried after ``retry_delays[handler_failures]`` (the last
   delay once they run out).

Not decided here: a message whose copy (to the retry queue or to ``dp3.dead``)
RabbitMQ does not confirm is left unacked and comes back; a consumer that keeps
dying with a message is dead-lettered by RabbitMQ after ``delivery_limit``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from dp3.errors import Retryable


class Fault(enum.Enum):
    INVALID_BODY = "invalid_body"
    RETRYABLE = "retryable"
    BUG = "bug"


@dataclass(frozen=True)
class Failure:
    """Why a message could not be handled, as plain values."""

    fault: Fault
    error_type: str
    message: str

    @classmethod
    def raised(cls, exc: BaseException) -> Failure:
        """The failure of a handler that raised ``exc``."""
        fault = Fault.RETRYABLE if isinstance(exc, Retryable) else Fault.BUG
        return cls(fault, type(exc).__name__, str(exc))

    @classmethod
    def invalid_body(cls, problem: str) -> Failure:
        return cls(Fault.INVALID_BODY, "InvalidEvent", problem)


class RetryLimits(Protocol):
    """The settings the policy reads (:class:`dp3.broker.BrokerOptions` has them)."""

    @property
    def retry_delays(self) -> tuple[float, ...]: ...

    @property
    def max_attempts(self) -> int: ...


@dataclass(frozen=True)
class Retry:
    """Copy the message to its retry queue for ``delay`` seconds, then ack the original.

    ``charged``: the failure counts against ``max_attempts`` (``count`` goes in
    ``x-dp3-attempts``); otherwise it is transient (``count`` goes in ``x-dp3-retries``).
    """

    delay: float
    charged: bool
    count: int
    reason: str


@dataclass(frozen=True)
class DeadLetter:
    """Copy the message to ``dp3.dead`` with ``reason`` (and ``handler_failures`` when counted), then ack it."""

    reason: str
    handler_failures: int = 0


Action = Retry | DeadLetter


def on_failure(failure: Failure, limits: RetryLimits, *, handler_failures: int = 0, retries: int = 0) -> Action:
    """The action for a message that failed with ``failure`` after ``handler_failures`` and ``retries`` so far."""
    if failure.fault is Fault.INVALID_BODY:
        return DeadLetter(f"unparseable event: {failure.message}")
    if failure.fault is Fault.RETRYABLE:
        retries += 1
        return Retry(_delay(limits.retry_delays, retries), charged=False, count=retries, reason=failure.message)
    handler_failures += 1
    reason = f"{failure.error_type}: {failure.message}"
    if handler_failures >= limits.max_attempts:
        return DeadLetter(reason, handler_failures)
    return Retry(_delay(limits.retry_delays, handler_failures), charged=True, count=handler_failures, reason=reason)


def _delay(delays: tuple[float, ...], count: int) -> float:
    """The delay before the ``count``-th try again: the last one repeats."""
    return delays[min(count, len(delays)) - 1]
