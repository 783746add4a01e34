"""The archiver assembled: the stores, the two consumers (archive, collect) and the optional fixity job.

The shape of every DP3 service (:mod:`dp3.app`): constructing
:class:`ArchiverApp` only keeps its settings; :meth:`ArchiverApp.start` looks
at the stores (down, not initialised, not distinct places: each logged, none
fatal, photos wait), builds the archiver and the collector and starts their
consumers and the stores' watch; :meth:`ArchiverApp.run` waits for the stop
event; :meth:`ArchiverApp.stop` stops the consumers and waits for them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from dp3.app import HandlerTable, Started, consumers
from dp3.broker import BrokerOptions, Consumer, HandlerResult, Message, Publisher
from dp3.events import Status
from dp3.topology import ARCHIVER, COLLECTOR, QueueSpec
from dp3_archiver.archive import Archiver
from dp3_archiver.collector import Collector
from dp3_archiver.fixity import WRITE_SETTLE_SECONDS, audit
from dp3_archiver.metrics import archiver_metrics
from dp3_archiver.settings import ArchiverSettings
from dp3_archiver.stores import Store, StoreUnavailable, check_distinctness

log = logging.getLogger(__name__)

STORE_WATCH_SECONDS = 15.0


@dataclass
class _Parts:
    """What :meth:`ArchiverApp.start` brought up."""

    stores: list[Store]
    publisher: Publisher
    archiver: Archiver
    collector: Collector
    consumers: list[Consumer] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    """Ends the stores' watch and the fixity job."""


class ArchiverApp:
    """The whole archiver (:class:`dp3.app.ServiceApp`)."""

    def __init__(self, settings: ArchiverSettings) -> None:
        self.settings = settings
        # In memory only, and now: /metrics shows every series from its first scrape, before start.
        archiver_metrics()
        self._started: Started[_Parts] = Started("archiver")

    def handlers(self) -> Mapping[QueueSpec, HandlerTable]:
        return {
            ARCHIVER: {
                Status.PROCESSED: self._archive,
                Status.FAILED: self._archive,  # its original, when the failure is permanent
                Status.DUPLICATE: self._archive,  # the re-upload's own journal, beside the first copy
            },
            COLLECTOR: {Status.ARCHIVED: self._collect},
        }

    def _archive(self, message: Message) -> HandlerResult:
        return self._started.parts.archiver.handle(message)

    def _collect(self, message: Message) -> HandlerResult:
        return self._started.parts.collector.handle(message)

    def health(self) -> tuple[bool, str]:
        if not self._started.ready:
            return False, "starting"
        started = self._started.parts
        down = [store.label for store in started.stores if not store.is_marked()]
        aliased = [store.label for store in started.stores if store.aliased]
        if not started.consumers or not all(consumer.connected.is_set() for consumer in started.consumers):
            return False, "not connected to RabbitMQ"
        notes = (f"; stores down: {', '.join(down)}" if down else "") + (
            f"; stores not distinct places (nothing is archived or collected): {', '.join(aliased)}" if aliased else ""
        )
        return True, "ok" + notes

    def start(self) -> None:
        settings = self.settings
        stores = [Store(root, reserve_bytes=settings.store_reserve_bytes) for root in settings.stores]
        for store in stores:
            if not store.is_marked():
                log.warning(
                    "store %s is down or not initialised (run `dp3 stores init`); photos wait for it", store.label
                )
        check_distinctness(stores)  # logs one line per pair that is one place; every photo waits while any is
        options = BrokerOptions(retry_delays=settings.retry_delays) if settings.retry_delays else BrokerOptions()
        publisher = Publisher(settings.amqp_url, options=options)
        archiver = Archiver(stores, inbox=settings.inbox_dir, staging=settings.staging_dir, zone=settings.zone)
        collector = Collector(
            stores, inbox=settings.inbox_dir, staging=settings.staging_dir, zone=settings.zone, publisher=publisher
        )
        started = self._started.set(_Parts(stores, publisher, archiver, collector))
        workers = settings.archive_workers
        started.consumers.extend(
            consumers(
                self.handlers(),
                settings.amqp_url,
                publisher=publisher,
                prefetch=workers * 2,
                workers=workers,
                options=options,
            )
        )
        started.threads.extend(
            threading.Thread(target=consumer.run, name=f"consume-{i}") for i, consumer in enumerate(started.consumers)
        )
        for thread in started.threads:
            thread.start()
        threading.Thread(target=_watch_free_space, args=(stores, started.stop), name="store-watch", daemon=True).start()
        if settings.fixity_seconds > 0:
            threading.Thread(
                target=_periodic_audit, args=(stores, settings.fixity_seconds, started.stop), name="fixity", daemon=True
            ).start()

    def run(self, stop: threading.Event) -> None:
        stop.wait()

    def stop(self) -> None:
        started = self._started.take_for_stop()
        if started is None:
            return
        started.stop.set()
        for consumer in started.consumers:
            consumer.stop()
        for thread in started.threads:
            if thread.is_alive():
                thread.join()
        started.publisher.close()


def _watch_free_space(stores: list[Store], stop: threading.Event) -> None:
    """Keep dp3_archiver_store_free_bytes and the stores' distinctness fresh while idle (photos refresh them too)."""
    while True:
        check_distinctness(stores)
        for store in stores:
            if store.is_marked():
                with contextlib.suppress(StoreUnavailable):
                    store.free_bytes()
        if stop.wait(STORE_WATCH_SECONDS):
            return


def _periodic_audit(stores: list[Store], every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            audit(stores, repair=True, settle_seconds=WRITE_SETTLE_SECONDS)
        except Exception:  # the audit must not die with one bad run
            log.exception("fixity audit failed")
