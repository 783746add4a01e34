"""The scanner assembled: index, publisher, scanner loop, inotify watch and the ``scanner.archived`` consumer.

The shape of every DP3 service (:mod:`dp3.app`): constructing
:class:`ScannerApp` only keeps its settings; :meth:`ScannerApp.start` makes
the inbox root, opens the index and starts the watch and the consumer;
:meth:`ScannerApp.run` turns the scanner loop until the stop event. Kept apart
from ``__main__`` so tests run the real thing in-process, with their own
settings and stop event, and without signal handlers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from dp3.app import HandlerTable, Started, consumers
from dp3.broker import BrokerOptions, Consumer, HandlerResult, Message, Publisher
from dp3.events import Status
from dp3.topology import SCANNER, QueueSpec
from dp3_scanner.archived import ArchiveLearner
from dp3_scanner.index import Index
from dp3_scanner.metrics import scanner_metrics
from dp3_scanner.scanner import Scanner
from dp3_scanner.settings import ScannerSettings
from dp3_scanner.watch import InboxWatcher

log = logging.getLogger(__name__)


@dataclass
class _Parts:
    """What :meth:`ScannerApp.start` opened, in the order :meth:`ScannerApp.stop` closes it backwards."""

    index: Index
    publisher: Publisher
    scanner: Scanner
    learner: ArchiveLearner
    consumer: Consumer
    consumer_thread: threading.Thread
    watcher: InboxWatcher


class ScannerApp:
    """The whole scanner service (:class:`dp3.app.ServiceApp`)."""

    def __init__(self, settings: ScannerSettings, *, options: BrokerOptions | None = None) -> None:
        self.settings = settings
        self._options = options
        # In memory only, and now: /metrics shows every series from its first scrape, before start.
        self.metrics = scanner_metrics()
        self._started: Started[_Parts] = Started("scanner")

    def handlers(self) -> Mapping[QueueSpec, HandlerTable]:
        return {SCANNER: {Status.ARCHIVED: self._on_archived, Status.COLLECTED: self._on_collected}}

    def _on_archived(self, message: Message) -> HandlerResult:
        return self._started.parts.learner.archived(message)

    def _on_collected(self, message: Message) -> HandlerResult:
        return self._started.parts.learner.collected(message)

    @property
    def index(self) -> Index:
        return self._started.parts.index

    @property
    def scanner(self) -> Scanner:
        return self._started.parts.scanner

    @property
    def consumer(self) -> Consumer:
        return self._started.parts.consumer

    def health(self) -> tuple[bool, str]:
        """Healthy while the loop turns and the consumer is connected."""
        if not self._started.ready:
            return False, "starting"
        parts = self._started.parts
        scanner = parts.scanner
        stalled = time.monotonic() - scanner.last_step
        if stalled > max(3 * self.settings.rescan_seconds, 60.0):
            return False, f"scanner loop stalled for {stalled:.0f}s"
        if not parts.consumer.connected.is_set():
            return False, "not consuming scanner.archived"
        return True, f"ok: {scanner.rescans} rescans, {len(scanner.pending)} uploads in progress"

    def start(self) -> None:
        settings = self.settings
        settings.inbox_dir.mkdir(parents=True, exist_ok=True)  # the root only; nothing is written inside
        index = Index(settings.index_path)
        publisher = Publisher(settings.amqp_url, options=self._options)
        scanner = Scanner(settings, index, publisher.publish, metrics=self.metrics)
        # One worker thread keeps an Archived before its Collected.
        (consumer,) = consumers(
            self.handlers(), settings.amqp_url, publisher=publisher, prefetch=16, workers=1, options=self._options
        )
        thread = threading.Thread(target=consumer.run, name="dp3-scanner-archived", daemon=True)
        watcher = InboxWatcher(scanner.inbox, scanner.hint)
        self._started.set(
            _Parts(index, publisher, scanner, ArchiveLearner(index, scanner.forget_later), consumer, thread, watcher)
        )
        thread.start()
        if settings.watch:
            watcher.start()
        log.info(
            "watching %s (stable %.1fs, rescan %.0fs)",
            scanner.inbox,
            settings.stable_seconds,
            settings.rescan_seconds,
        )

    def run(self, stop: threading.Event) -> None:
        """The scanner loop, on this thread, until ``stop`` is set."""
        self._started.parts.scanner.run(stop)

    def stop(self) -> None:
        started = self._started.take_for_stop()
        if started is None:
            return
        started.watcher.stop()
        started.consumer.stop()
        if started.consumer_thread.is_alive():
            started.consumer_thread.join(10)
        started.publisher.close()
        started.index.close()
