"""Entry point of the archiver: wire the stores, the two consumers and the optional fixity job, then run."""

from __future__ import annotations

import contextlib
import logging
import threading

from dp3.broker import BrokerOptions, Consumer, Publisher
from dp3.service import start_service
from dp3.topology import ARCHIVER, COLLECTOR
from dp3_archiver.archive import Archiver
from dp3_archiver.collector import Collector
from dp3_archiver.fixity import WRITE_SETTLE_SECONDS, audit
from dp3_archiver.settings import ArchiverSettings
from dp3_archiver.stores import Store, StoreUnavailable, check_distinctness

log = logging.getLogger("dp3_archiver")

STORE_WATCH_SECONDS = 15.0


def main() -> None:
    consumers: list[Consumer] = []
    stores: list[Store] = []

    def health() -> tuple[bool, str]:
        down = [store.label for store in stores if not store.is_marked()]
        aliased = [store.label for store in stores if store.aliased]
        if not consumers or not all(consumer.connected.is_set() for consumer in consumers):
            return False, "not connected to RabbitMQ"
        notes = (f"; stores down: {', '.join(down)}" if down else "") + (
            f"; stores not distinct places (nothing is archived or collected): {', '.join(aliased)}" if aliased else ""
        )
        return True, "ok" + notes

    context = start_service("archiver", ArchiverSettings, health)
    settings = context.settings
    stores.extend(Store(root, reserve_bytes=settings.store_reserve_bytes) for root in settings.stores)
    for store in stores:
        if not store.is_marked():
            log.warning("store %s is down or not initialised (run `dp3 stores init`); photos wait for it", store.label)
    check_distinctness(stores)  # logs one line per pair that is one place; every photo waits while any is
    options = BrokerOptions(retry_delays=settings.retry_delays) if settings.retry_delays else BrokerOptions()
    publisher = Publisher(settings.amqp_url, options=options)
    archiver = Archiver(stores, inbox=settings.inbox_dir, staging=settings.staging_dir, zone=settings.zone)
    collector = Collector(
        stores, inbox=settings.inbox_dir, staging=settings.staging_dir, zone=settings.zone, publisher=publisher
    )
    workers = settings.archive_workers
    for queue, handler in ((ARCHIVER, archiver.handle), (COLLECTOR, collector.handle)):
        consumers.append(
            Consumer(
                settings.amqp_url,
                queue,
                handler,
                publisher=publisher,
                workers=workers,
                prefetch=workers * 2,
                options=options,
            )
        )
    threads = [threading.Thread(target=consumer.run, name=f"consume-{i}") for i, consumer in enumerate(consumers)]
    for thread in threads:
        thread.start()
    threading.Thread(target=_watch_free_space, args=(stores, context.stop), name="store-watch", daemon=True).start()
    if settings.fixity_seconds > 0:
        threading.Thread(
            target=_periodic_audit, args=(stores, settings.fixity_seconds, context.stop), name="fixity", daemon=True
        ).start()
    context.stop.wait()
    log.info("stopping")
    for consumer in consumers:
        consumer.stop()
    for thread in threads:
        thread.join()
    publisher.close()


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


if __name__ == "__main__":
    main()
