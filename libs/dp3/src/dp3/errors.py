"""DP3's errors, sorted by what the caller does about them.

::

    DP3Error
    ├── ConfigError           bad DP3_* value: the service stops at start, one line
    ├── BrokerError           RabbitMQ trouble, raised only by dp3.broker
    │   ├── BrokerUnavailable     no connection (yet): wait and try again
    │   └── PublishNotConfirmed   the broker did not confirm a publish: nothing was
    │                             acknowledged, so the work will be redone
    ├── Retryable             transient trouble in a stage (a store is down, a
    │                         dependency is not up yet): the message is retried
    │                         later with backoff, without limit
    └── Permanent             bad input: it will never work; the stage records a
                              ``Failed`` event with ``kind`` instead of retrying

Any other exception out of a message handler is a bug: the message is retried a
bounded number of times, then dead-lettered with the reason.
"""

from __future__ import annotations

from dp3.events import ErrorKind


class DP3Error(Exception):
    """Base of every error DP3 raises on purpose."""


class ConfigError(DP3Error):
    """A setting is missing or wrong; the message is one line naming it."""


class BrokerError(DP3Error):
    """RabbitMQ could not do what was asked."""


class BrokerUnavailable(BrokerError):
    """No connection to RabbitMQ; reconnecting may help."""


class PublishNotConfirmed(BrokerError):
    """A publish was nacked, returned as unroutable, or lost with its connection."""


class Retryable(DP3Error):
    """Transient failure: retry the message later; do not count it as a defect."""

    def __init__(self, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.kind = kind


class Permanent(DP3Error):
    """The input itself is bad; ``kind`` is the event's error kind."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
