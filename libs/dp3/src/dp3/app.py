"""The one shape every DP3 service has: ``App(settings)``, then ``start``, ``run``, ``stop``, ``health``.

* Constructing an App does nothing but remember its settings: no folder is
  made, no file opened, no port bound, no thread started, nothing connected.
  So a test (or a tool) can build any service's App and look at it, e.g. at
  its handler tables, without a broker, a store or a Work Queue port.
* :meth:`ServiceApp.start` does the I/O of coming up (clear what a previous
  run left, open indexes, bind ports, start threads), :meth:`ServiceApp.run`
  blocks until the stop event is set, :meth:`ServiceApp.stop` undoes
  :meth:`ServiceApp.start` (it is called even when ``start`` failed half-way,
  so it stops only what was started). :func:`dp3.service.run_service` is the
  one ``main()`` that drives them, the same for every service.
* Each App declares, per queue it consumes, a ``{status: handler}`` table
  (:meth:`ServiceApp.handlers`). :func:`check_handlers` holds it against the
  queue's bindings in :mod:`dp3.topology`: a bound status without a handler
  (its events would be acknowledged unhandled) or a handler for a status the
  queue never receives (dead code that looks alive) stops the service at
  start, as Immich does with its job handlers; a unit test checks every App.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from dp3.broker import BrokerOptions, Consumer, Handler, HandlerResult, Message, Publisher
from dp3.errors import ConfigError
from dp3.events import Status
from dp3.topology import QueueSpec

log = logging.getLogger(__name__)

HandlerTable = Mapping[Status, Handler]
"""What a consumer does with each status its queue is bound to."""

PartsT = TypeVar("PartsT")


class HandlerTableMismatch(ConfigError):
    """A handler table and its queue's bindings disagree (a programming error, found at start)."""


class ServiceApp(Protocol):
    """What :func:`dp3.service.run_service` needs of a service."""

    def handlers(self) -> Mapping[QueueSpec, HandlerTable]:
        """Per consumed queue, its ``{status: handler}`` table (empty for a service that consumes nothing)."""
        ...

    def start(self) -> None: ...

    def run(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (or the service cannot go on)."""
        ...

    def stop(self) -> None: ...

    def health(self) -> tuple[bool, str]: ...


def topic_matches(binding: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is one dot-separated word, ``#`` zero or more."""
    return _match(binding.split("."), routing_key.split("."))


def _match(pattern: Sequence[str], words: Sequence[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[skip:]) for skip in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])


def bound_statuses(spec: QueueSpec) -> frozenset[Status]:
    """The statuses whose events reach ``spec``'s queue through its bindings."""
    return frozenset(
        status for status in Status if any(topic_matches(binding, status.routing_key) for binding in spec.bindings)
    )


def check_handlers(spec: QueueSpec, table: HandlerTable) -> None:
    """Raise :class:`HandlerTableMismatch` unless ``table`` handles exactly the statuses bound to ``spec``."""
    bound = bound_statuses(spec)
    unhandled = sorted(status.value for status in bound - table.keys())
    unbound = sorted(status.value for status in table.keys() - bound)
    problems = []
    if unhandled:
        problems.append(f"bound but without a handler: {', '.join(unhandled)}")
    if unbound:
        problems.append(f"handled but not bound: {', '.join(unbound)}")
    if problems:
        raise HandlerTableMismatch(f"queue {spec.name}: {'; '.join(problems)}")


def dispatch(spec: QueueSpec, table: HandlerTable) -> Handler:
    """One consumer handler that hands each message to its status's handler; checked first.

    A status outside the table reaches the queue only by a hand-made publish
    straight to it: it is logged and acknowledged, as every handler did alone.
    """
    check_handlers(spec, table)
    handlers = dict(table)

    def handle(message: Message) -> HandlerResult:
        handler = handlers.get(message.entry.status)
        if handler is None:
            log.warning(
                "ignoring a %s event on the %s queue",
                message.entry.status.value,
                spec.name,
                extra={"photo_id": message.entry.id},
            )
            return []
        return handler(message)

    return handle


def consumers(
    tables: Mapping[QueueSpec, HandlerTable],
    amqp_url: str,
    *,
    publisher: Publisher,
    prefetch: int,
    workers: int = 4,
    options: BrokerOptions | None = None,
) -> list[Consumer]:
    """One consumer per queue of ``tables``, each dispatching by status (tables checked first)."""
    return [
        Consumer(
            amqp_url,
            queue,
            dispatch(queue, table),
            publisher=publisher,
            prefetch=prefetch,
            workers=workers,
            options=options,
        )
        for queue, table in tables.items()
    ]


class Started(Generic[PartsT]):
    """What an App's ``start`` brought up (``PartsT``, a dataclass of the service's own), held for ``stop``.

    Before ``start`` there is nothing: :attr:`parts` raises, :attr:`ready` is
    False (health says "starting"). :meth:`take_for_stop` hands the parts over
    once, so a second ``stop`` (or one after a failed ``start``) does nothing;
    the parts stay readable afterwards (tests look at an index after a stop).
    """

    def __init__(self, service: str) -> None:
        self._service = service
        self._parts: PartsT | None = None
        self._stopped = False

    @property
    def ready(self) -> bool:
        return self._parts is not None

    @property
    def parts(self) -> PartsT:
        if self._parts is None:
            raise RuntimeError(f"the {self._service} is not started")
        return self._parts

    def set(self, parts: PartsT) -> PartsT:
        self._parts = parts
        return parts

    def take_for_stop(self) -> PartsT | None:
        if self._parts is None or self._stopped:
            return None
        self._stopped = True
        return self._parts
