"""DP3's errors, sorted by what the caller does about them.

::

    DP3Error
    ├── ConfigError           bad DP3_* value: the service stops at start, one line
    │   └── dp3.app.HandlerTableMismatch   a handler table disagrees with its
    │                             queue's bindings (a programming error, at start)
    ├── BrokerError           RabbitMQ trouble, raised only by dp3.broker
    │   ├── BrokerUnavailable     no connection (yet): wait and try again
    │   └── PublishNotConfirmed   the broker did not confirm a publish: nothing was
    │                             acknowledged, so the work will be redone
    ├── Retryable             transient trouble in a stage (a store is down, a
    │   │                     dependency is not up yet): the message is retried
    │   │                     later with backoff, without limit
    │   └── dp3_archiver: StoreUnavailable, CopiesNotVerified
    ├── dp3_archiver.stores.NameRefused      a store refuses a photo's name: Failed bad_name
    ├── dp3_archiver.stores.SourceMismatch   no source of a copy has the expected bytes
    └── dp3_archiver.archive.ForeignArtifacts  staging holds a render of other bytes

Bad input is not an exception that leaves a stage: the stage records a
``Failed`` event with the error kind (``dp3.events.ErrorKind``) and acks.
Any other exception out of a message handler is a bug: the message is retried a
bounded number of times, then dead-lettered with the reason.

Outside the tree, each for a reason its docstring gives: ``ValueError``
subclasses that callers catch as bad values (``dp3.events.InvalidEvent``,
``dp3.files.OutsideRoot``, ``dp3.devices.MalformedToken``,
``dp3_dispatcher.artifact_meta.InvalidMeta``, ``dp3_portal.catalog.BadQuery``,
``dp3_field.pairing.PairingError``); the Work Queue binding's own
(``WorkQueueError``, ``RunnerStopped``: the binding knows nothing of DP3);
``render_task.RenderError``, which runs on workers with the standard library
and Pillow only; answers to one HTTP request that never leave their service
(``dp3_intake``: ``IntakeError``, ``ChecksumMismatch``, ``ResumeExisting``;
``dp3_portal``: ``TooManyAttempts``, ``NotAuthenticated``); the field agent's
own tree, told to a photographer (``dp3_field.intake.IntakeError``); and
private control flow (``dp3_dispatcher.verify._Rejected``,
``dp3_scanner.capture_time._Unclear``). ``tests/unit/test_errors.py`` holds
every exception class to this list.
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
