"""Wiring: index, publisher, scanner loop, inotify watch and the archived-events consumer.

Kept apart from ``__main__`` so tests run the real thing in-process, with
their own settings and stop event, and without signal handlers.
"""

from __future__ import annotations

import logging
import threading
import time

from dp3.broker import BrokerOptions, Consumer, Publisher
from dp3.topology import SCANNER
from dp3_scanner.archived import archived_handler
from dp3_scanner.index import Index
from dp3_scanner.scanner import Scanner
from dp3_scanner.settings import ScannerSettings
from dp3_scanner.watch import InboxWatcher

log = logging.getLogger(__name__)


class ScannerApp:
    """The whole scanner service; :meth:`run` blocks until ``stop`` is set."""

    def __init__(self, settings: ScannerSettings, *, options: BrokerOptions | None = None) -> None:
        self.settings = settings
        settings.inbox_dir.mkdir(parents=True, exist_ok=True)  # the root only; nothing is written inside
        self.index = Index(settings.index_path)
        self.publisher = Publisher(settings.amqp_url, options=options)
        self.scanner = Scanner(settings, self.index, self.publisher.publish)
        self.consumer = Consumer(
            settings.amqp_url,
            SCANNER,
            archived_handler(self.index, self.scanner.forget_later),
            publisher=self.publisher,
            prefetch=16,
            workers=1,  # keeps an Archived before its Collected
            options=options,
        )
        self.watcher = InboxWatcher(self.scanner.inbox, self.scanner.hint)

    def health(self) -> tuple[bool, str]:
        """Healthy while the loop turns and the consumer is connected."""

        stalled = time.monotonic() - self.scanner.last_step
        if stalled > max(3 * self.settings.rescan_seconds, 60.0):
            return False, f"scanner loop stalled for {stalled:.0f}s"
        if not self.consumer.connected.is_set():
            return False, "not consuming scanner.archived"
        return True, f"ok: {self.scanner.rescans} rescans, {len(self.scanner.pending)} uploads in progress"

    def run(self, stop: threading.Event) -> None:
        consumer_thread = threading.Thread(target=self.consumer.run, name="dp3-scanner-archived", daemon=True)
        consumer_thread.start()
        if self.settings.watch:
            self.watcher.start()
        log.info(
            "watching %s (stable %.1fs, rescan %.0fs)",
            self.scanner.inbox,
            self.settings.stable_seconds,
            self.settings.rescan_seconds,
        )
        try:
            self.scanner.run(stop)
        finally:
            self.watcher.stop()
            self.consumer.stop()
            consumer_thread.join(10)
            self.publisher.close()
            self.index.close()
