"""RabbitMQ over pika: topology, confirmed publishes, acknowledged consumption.

Two classes, one connection each, because a pika connection belongs to one
thread:

* :class:`Publisher` publishes journal entries as persistent messages with
  publisher confirms. It is thread-safe (one lock around one connection) and
  reconnects by itself; :meth:`Publisher.publish` returns only once the broker
  has confirmed, or raises.
* :class:`Consumer` runs a consume loop on the thread that calls
  :meth:`Consumer.run`; handlers run on a small thread pool so slow work never
  starves the connection's heartbeats. A message is acknowledged only after
  its handler returned and every event the handler produced was confirmed
  (at-least-once: a crash anywhere before the ack redelivers the message).

What happens to a message whose handler raises (decided by
:func:`dp3.broker_policy.on_failure`, carried out here):

* :class:`~dp3.errors.Retryable` (a store is down): it goes to the queue's
  retry queue and comes back after a growing delay, without limit.
* anything else (a bug): the same, up to ``max_attempts``; then it is
  dead-lettered to ``dp3.dead`` with the reason in its headers.
* a body that is not a journal entry is dead-lettered at once.
* a message whose consumer keeps dying with it unacknowledged (a crash loop)
  is dead-lettered by RabbitMQ after ``delivery_limit`` deliveries: consuming
  queues are quorum queues for exactly this count.

Nothing above this module sees a pika exception: they are translated into
:mod:`dp3.errors` here.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from prometheus_client import CollectorRegistry, Counter

from dp3.broker_policy import Action, DeadLetter, Failure, on_failure
from dp3.errors import BrokerUnavailable, PublishNotConfirmed
from dp3.events import EXCHANGE, InvalidEvent, JournalEntry, Status
from dp3.metrics import per_registry
from dp3.topology import ALL_QUEUES, DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, QueueSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerMetrics:
    """The broker's counters in one registry; made by :func:`broker_metrics`, not at import.

    A test passes a fresh :class:`~prometheus_client.CollectorRegistry` and
    reads it, in this interpreter; a service uses the process's default
    registry (served on ``/metrics``), whose counters every publisher and
    consumer of the process share.
    """

    published: Counter
    settled: Counter
    reconnects: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> BrokerMetrics:
        return cls(
            published=Counter(
                "dp3_broker_published_total", "Events published and confirmed", ["routing_key"], registry=registry
            ),
            settled=Counter(
                "dp3_broker_messages_total",
                "Messages settled by a consumer, by outcome",
                ["queue", "outcome"],
                registry=registry,
            ),
            reconnects=Counter(
                "dp3_broker_reconnects_total", "Connections re-established after a loss", ["role"], registry=registry
            ),
        )


broker_metrics = per_registry(BrokerMetrics.register)
"""The broker's counters in a registry (default: the process's), registered there on first use."""


ATTEMPTS_HEADER = "x-dp3-attempts"
RETRIES_HEADER = "x-dp3-retries"
REASON_HEADER = "x-dp3-reason"
QUEUE_HEADER = "x-dp3-queue"

# Errors that mean "the connection or channel is gone; reconnect".
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
    OSError,
)


@dataclass(frozen=True)
class BrokerOptions:
    """Tuning shared by publishers and consumers; defaults suit production."""

    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)
    max_attempts: int = 5
    """How many times a handler may fail on one message with a bug before it is dead-lettered."""
    delivery_limit: int = 50
    reconnect_max_delay: float = 5.0
    publish_timeout: float = 120.0
    heartbeat: int = 30


def _parameters(url: str, options: BrokerOptions) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = options.heartbeat
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.socket_timeout = 5
    return params


def retry_queue_name(queue: str, delay: float) -> str:
    return f"{queue}.retry.{delay:g}s"


def declare_topology(channel: BlockingChannel, queues: Iterable[QueueSpec], options: BrokerOptions) -> None:
    """Declare the exchanges, the consuming queues and their retry queues; idempotent."""
    channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True)
    channel.queue_bind(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, routing_key="#")
    for spec in queues:
        channel.queue_declare(
            spec.name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": options.delivery_limit,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            },
        )
        for key in spec.bindings:
            channel.queue_bind(spec.name, EXCHANGE, routing_key=key)
        for key in spec.retired:
            channel.queue_unbind(spec.name, EXCHANGE, routing_key=key)  # idempotent: no such binding is fine
        for delay in options.retry_delays:
            # A retry queue holds a message for `delay`, then dead-letters it
            # back to its stage's queue (and to no other consumer).
            channel.queue_declare(
                retry_queue_name(spec.name, delay),
                durable=True,
                arguments={
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": spec.name,
                },
            )


class EventPublisher(Protocol):
    """What a stage needs to emit events: the narrow interface of :class:`Publisher`.

    :class:`dp3.testing.FakePublisher` implements it in memory for unit tests.
    """

    def publish(self, entry: JournalEntry) -> None:
        """Returns once the broker confirmed ``entry``, or raises."""
        ...


class Publisher:
    """Thread-safe, confirmed, self-reconnecting publisher of journal entries."""

    def __init__(
        self,
        url: str,
        *,
        queues: Sequence[QueueSpec] = ALL_QUEUES,
        options: BrokerOptions | None = None,
        metrics: BrokerMetrics | None = None,
    ) -> None:
        self._url = url
        self._queues = tuple(queues)
        self._options = options or BrokerOptions()
        self._metrics = metrics or broker_metrics()
        for status in Status:  # every series from 0: rate() cannot see a counter's first event
            self._metrics.published.labels(status.routing_key)
        self._lock = threading.RLock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._connected_once = False
        self._closed = threading.Event()
        self.republished = 0
        """Publishes sent again after a lost connection (each may reach consumers twice)."""
        # Started with the first connection, not here: constructing a publisher (inside an
        # App's constructor) does no I/O and starts no thread (dp3.app).
        self._heartbeat: threading.Thread | None = None

    def publish(self, entry: JournalEntry) -> None:
        """Publish one event; returns once RabbitMQ confirmed it, or raises."""
        self.publish_raw(EXCHANGE, entry.routing_key, entry.to_json(), message_id=entry.event_id)
        self._metrics.published.labels(entry.routing_key).inc()

    def publish_raw(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> None:
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type="application/json",
            message_id=message_id,
            headers=headers or {},
        )
        deadline = time.monotonic() + self._options.publish_timeout
        tries = 0
        while True:
            with self._lock:
                try:
                    channel = self._ensure_channel()
                    channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
                    return
                except pika.exceptions.UnroutableError:
                    raise PublishNotConfirmed(f"no queue is bound for {routing_key!r} on {exchange!r}") from None
                except pika.exceptions.NackError:
                    raise PublishNotConfirmed(f"RabbitMQ refused the message for {routing_key!r}") from None
                except _CONNECTION_ERRORS as exc:
                    self._drop_connection()
                    error: BaseException = exc
                except BrokerUnavailable as exc:
                    error = exc
            tries += 1
            if tries == 1:
                log.warning("publish of %s interrupted (%s); retrying until the broker is back", routing_key, error)
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(f"could not publish {routing_key!r}: {error}") from error
            self.republished += 1
            time.sleep(min(0.2 * tries, self._options.reconnect_max_delay))

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._drop_connection()

    def _ensure_channel(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._drop_connection()
        try:
            connection = pika.BlockingConnection(_parameters(self._url, self._options))
        except _CONNECTION_ERRORS as exc:
            raise BrokerUnavailable(f"cannot connect to RabbitMQ: {exc!r}") from None
        channel = connection.channel()
        channel.confirm_delivery()
        declare_topology(channel, self._queues, self._options)
        if self._connected_once:
            self._metrics.reconnects.labels("publisher").inc()
            log.warning("publisher reconnected to RabbitMQ")
        self._connected_once = True
        self._connection, self._channel = connection, channel
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._keep_alive, name="dp3-publisher-heartbeat", daemon=True)
            self._heartbeat.start()
        return channel

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):  # it is being thrown away
                connection.close()

    def _keep_alive(self) -> None:
        # A BlockingConnection answers heartbeats only while it is called; an
        # idle publisher would be dropped by the broker without this.
        while not self._closed.wait(5.0):
            if not self._lock.acquire(timeout=1.0):
                continue
            try:
                if self._connection is not None and self._connection.is_open:
                    self._connection.process_data_events(0)
            except _CONNECTION_ERRORS:
                self._drop_connection()
            finally:
                self._lock.release()


@dataclass
class Message:
    """A delivered journal entry, as a handler sees it."""

    entry: JournalEntry
    redelivered: bool
    handler_failures: int
    """Times a handler raised a bug on this message so far (header ``x-dp3-attempts``): at
    ``BrokerOptions.max_attempts`` it is dead-lettered (:mod:`dp3.broker_policy`)."""
    retries: int
    """Transient failures so far (:class:`~dp3.errors.Retryable`, header ``x-dp3-retries``): never a limit."""
    body: bytes = field(repr=False)


HandlerResult = Sequence[JournalEntry] | concurrent.futures.Future[Sequence[JournalEntry]]
Handler = Callable[[Message], HandlerResult]
"""A handler returns the events to publish before the ack, or a Future of them
(for work that completes elsewhere, e.g. a Work Queue task)."""


@dataclass
class _Delivery:
    generation: int
    tag: int
    body: bytes
    headers: dict[str, Any]
    redelivered: bool


class Consumer:
    """Consumes one queue with manual acks, bounded prefetch and reconnects."""

    def __init__(
        self,
        url: str,
        queue: QueueSpec,
        handler: Handler,
        *,
        publisher: Publisher,
        prefetch: int = 32,
        workers: int = 4,
        options: BrokerOptions | None = None,
        queues: Sequence[QueueSpec] = ALL_QUEUES,
        metrics: BrokerMetrics | None = None,
    ) -> None:
        self._url = url
        self._queue = queue
        self._metrics = metrics or broker_metrics()
        self._handler = handler
        self._publisher = publisher
        self._prefetch = prefetch
        self._options = options or BrokerOptions()
        self._queues = tuple(dict.fromkeys((*queues, queue)))
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix=f"dp3-{queue.name}")
        self._stop = threading.Event()
        self._generation = 0
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self.connected = threading.Event()
        """Set while consuming; a health check reads it."""

    def run(self) -> None:
        """Consume until :meth:`stop`; reconnects with backoff on any connection loss."""
        delay = 0.2
        while not self._stop.is_set():
            try:
                self._connect()
                delay = 0.2
                while not self._stop.is_set():
                    assert self._connection is not None
                    self._connection.process_data_events(time_limit=0.25)
            except _CONNECTION_ERRORS as exc:
                self.connected.clear()
                if self._stop.is_set():
                    break
                log.warning("consumer of %s lost RabbitMQ (%r); reconnecting in %.1fs", self._queue.name, exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self._options.reconnect_max_delay)
                self._metrics.reconnects.labels("consumer").inc()
        self.connected.clear()
        self._executor.shutdown(wait=True, cancel_futures=False)
        self._close_connection()

    def stop(self) -> None:
        """Ask :meth:`run` to return; callable from any thread or a signal handler."""
        self._stop.set()

    def _connect(self) -> None:
        self._close_connection()
        self._generation += 1
        connection = pika.BlockingConnection(_parameters(self._url, self._options))
        channel = connection.channel()
        declare_topology(channel, self._queues, self._options)
        channel.basic_qos(prefetch_count=self._prefetch)
        channel.basic_consume(self._queue.name, self._on_message)
        self._connection, self._channel = connection, channel
        self.connected.set()
        log.info("consuming %s (prefetch %d)", self._queue.name, self._prefetch)

    def _close_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):  # it is being thrown away
                connection.close()

    def _on_message(
        self,
        channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        delivery = _Delivery(
            generation=self._generation,
            tag=method.delivery_tag,
            body=body,
            headers=dict(properties.headers or {}),
            redelivered=bool(method.redelivered),
        )
        self._executor.submit(self._handle, delivery)

    # --- on a worker thread -------------------------------------------------

    def _handle(self, delivery: _Delivery) -> None:
        try:
            entry = JournalEntry.from_json(delivery.body)
        except InvalidEvent as exc:
            self._carry_out(delivery, on_failure(Failure.invalid_body(str(exc)), self._options), None, exc)
            return
        message = Message(
            entry=entry,
            redelivered=delivery.redelivered,
            handler_failures=header_count(delivery.headers, ATTEMPTS_HEADER),
            retries=header_count(delivery.headers, RETRIES_HEADER),
            body=delivery.body,
        )
        try:
            result = self._handler(message)
        except Exception as exc:  # noqa: BLE001 - every failure is settled, none is lost
            self._settle_failure(delivery, message, exc)
            return
        if isinstance(result, concurrent.futures.Future):
            result.add_done_callback(lambda done: self._executor.submit(self._settle_future, delivery, message, done))
        else:
            self._settle_success(delivery, result)

    def _settle_future(
        self, delivery: _Delivery, message: Message, done: concurrent.futures.Future[Sequence[JournalEntry]]
    ) -> None:
        try:
            events = done.result()
        except Exception as exc:  # noqa: BLE001 - settled below
            self._settle_failure(delivery, message, exc)
            return
        self._settle_success(delivery, events)

    def _settle_success(self, delivery: _Delivery, events: Sequence[JournalEntry]) -> None:
        try:
            for event in events:
                self._publisher.publish(event)
        except Exception as exc:  # noqa: BLE001 - unconfirmed: leave unacked, it will be redelivered
            log.error(
                "could not publish the result of a message from %s (%s); it will be redelivered", self._queue.name, exc
            )
            self._reject_later(delivery)
            return
        self._ack_later(delivery, "acked")

    def _settle_failure(self, delivery: _Delivery, message: Message, exc: BaseException) -> None:
        action = on_failure(
            Failure.raised(exc), self._options, handler_failures=message.handler_failures, retries=message.retries
        )
        self._carry_out(delivery, action, message.entry.id, exc)

    def _carry_out(self, delivery: _Delivery, action: Action, photo_id: str | None, exc: BaseException) -> None:
        """Do what :func:`dp3.broker_policy.on_failure` decided for a failed message."""
        if isinstance(action, DeadLetter):
            if action.handler_failures:
                log.error(
                    "dead-lettered after %d attempts: %s",
                    action.handler_failures,
                    action.reason,
                    extra={"photo_id": photo_id},
                    exc_info=exc,
                )
            self._dead_letter(delivery, action.reason, handler_failures=action.handler_failures)
            return
        if action.charged:
            log.error(
                "handler failed (attempt %d of %d): %s",
                action.count,
                self._options.max_attempts,
                action.reason,
                extra={"photo_id": photo_id},
                exc_info=exc,
            )
            counter = ATTEMPTS_HEADER
        else:
            log.warning("retrying in %gs: %s", action.delay, action.reason, extra={"photo_id": photo_id})
            counter = RETRIES_HEADER
        self._send_to_retry(delivery, action.delay, {counter: action.count, REASON_HEADER: action.reason[:500]})

    def _send_to_retry(self, delivery: _Delivery, delay: float, headers: dict[str, Any]) -> None:
        try:
            self._publisher.publish_raw(
                "", retry_queue_name(self._queue.name, delay), delivery.body, headers={**delivery.headers, **headers}
            )
        except Exception as exc:  # noqa: BLE001 - the original stays unacked and comes back
            log.error("could not schedule a retry on %s (%s); leaving the message unacked", self._queue.name, exc)
            self._reject_later(delivery)
            return
        self._ack_later(delivery, "retried")

    def _dead_letter(self, delivery: _Delivery, reason: str, handler_failures: int = 0) -> None:
        headers = {**delivery.headers, REASON_HEADER: reason[:1000], QUEUE_HEADER: self._queue.name}
        if handler_failures:
            headers[ATTEMPTS_HEADER] = handler_failures
        log.error("dead-lettering a message from %s: %s", self._queue.name, reason)
        try:
            self._publisher.publish_raw(DEAD_LETTER_EXCHANGE, self._queue.name, delivery.body, headers=headers)
        except Exception as exc:  # noqa: BLE001 - leave it unacked rather than lose it
            log.error("could not dead-letter a message from %s (%s); leaving it unacked", self._queue.name, exc)
            self._reject_later(delivery)
            return
        self._ack_later(delivery, "dead_lettered")

    def _ack_later(self, delivery: _Delivery, outcome: str) -> None:
        self._on_connection_thread(partial(self._ack, delivery, outcome))

    def _reject_later(self, delivery: _Delivery) -> None:
        self._on_connection_thread(partial(self._requeue, delivery))

    def _on_connection_thread(self, callback: Callable[[], None]) -> None:
        connection = self._connection
        if connection is None:
            return  # gone: the broker redelivers the message to the next connection
        try:
            connection.add_callback_threadsafe(callback)
        except _CONNECTION_ERRORS:
            pass
        except AttributeError:
            pass  # closed between the check and the call (pika clears its internals)

    # --- on the connection thread -------------------------------------------

    def _ack(self, delivery: _Delivery, outcome: str) -> None:
        if delivery.generation != self._generation or self._channel is None:
            return  # its channel is gone; the broker has redelivered it
        self._channel.basic_ack(delivery.tag)
        self._metrics.settled.labels(self._queue.name, outcome).inc()

    def _requeue(self, delivery: _Delivery) -> None:
        if delivery.generation != self._generation or self._channel is None:
            return
        self._channel.basic_nack(delivery.tag, requeue=True)
        self._metrics.settled.labels(self._queue.name, "requeued").inc()


def header_count(headers: dict[str, Any], name: str) -> int:
    """A count DP3 wrote in a message header; anything else (a hand-made or foreign message) counts as 0.

    Parsed on the worker thread before any settling code runs: an exception here
    would leave the message unacknowledged, unlogged, until the connection drops.
    """
    value = headers.get(name, 0)
    if isinstance(value, bool):
        return 0
    try:
        count = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return max(0, count)
