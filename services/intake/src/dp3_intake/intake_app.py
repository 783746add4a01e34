"""The intake process in the shape of every service (:mod:`dp3.app`): built without I/O, then start, run, stop.

``app.py`` is the web application (tus router, previews, receipts); this is
the process around it: the device registry's and the receipt index's
database, the consumer that keeps the receipt index, and uvicorn.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import uvicorn
from pymongo import MongoClient

from dp3 import devices
from dp3.app import HandlerTable, bound_statuses, dispatch
from dp3.broker import Consumer, HandlerResult, Message, Publisher
from dp3.errors import ConfigError
from dp3.topology import QueueSpec
from dp3_intake.app import Intake, create_app
from dp3_intake.mongo import mongo_url
from dp3_intake.receipts import COLLECTION, QUEUE, ReceiptIndex
from dp3_intake.settings import IntakeSettings
from dp3_intake.storage import hold_uploads_folder

log = logging.getLogger(__name__)

STARTUP_FAILURE = 3
"""The exit status when uvicorn could not start serving (it said why, e.g. the port is taken)."""


@dataclass
class _Parts:
    client: MongoClient[dict[str, object]]
    publisher: Publisher
    index: ReceiptIndex
    consumer: Consumer
    server: uvicorn.Server
    uploads_lock: int
    """The uploads folder's lock (:func:`dp3_intake.storage.hold_uploads_folder`), held while this process runs."""


class IntakeApp:
    """Constructing it does nothing; :meth:`start` connects, :meth:`run` serves until the stop event."""

    def __init__(self, settings: IntakeSettings) -> None:
        self.settings = settings
        self._parts: _Parts | None = None

    def handlers(self) -> Mapping[QueueSpec, HandlerTable]:
        # The intake's own queue (not in dp3.topology.ALL_QUEUES): every status it is bound to
        # updates the receipt index.
        return {QUEUE: dict.fromkeys(bound_statuses(QUEUE), self._index_receipt)}

    def _index_receipt(self, message: Message) -> HandlerResult:
        if self._parts is None:
            raise RuntimeError("the intake is not started")
        return self._parts.index.handle(message)

    def health(self) -> tuple[bool, str]:
        if self._parts is None or not self._parts.server.started:
            return False, "starting"
        return True, f"ok: serving on port {self.settings.intake_port}"

    def start(self) -> None:
        settings = self.settings
        try:
            url = mongo_url(settings)
            uploads_lock = hold_uploads_folder(settings.uploads_dir)  # FolderInUse is a ConfigError
        except ConfigError as exc:
            raise SystemExit(f"dp3-intake: bad configuration: {exc}") from None
        client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=5000)
        database = client[settings.mongo_database]
        publisher = Publisher(settings.amqp_url)
        index = ReceiptIndex(database[COLLECTION])
        # queues=(QUEUE,): the consumer declares the intake's own queue, which ALL_QUEUES leaves out.
        handle = dispatch(QUEUE, self.handlers()[QUEUE])
        consumer = Consumer(settings.amqp_url, QUEUE, handle, publisher=publisher, workers=1, queues=(QUEUE,))
        intake = Intake(settings, database[devices.COLLECTION], index, publisher)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(intake),
                host=settings.intake_host,
                port=settings.intake_port,
                log_config=None,
                access_log=False,
            )
        )
        self._parts = _Parts(client, publisher, index, consumer, server, uploads_lock)
        threading.Thread(target=consumer.run, name="dp3-intake-receipts", daemon=True).start()
        log.info("intake on %s:%d, inbox %s", settings.intake_host, settings.intake_port, settings.inbox_dir)

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set (uvicorn also stops on SIGTERM/SIGINT by itself)."""
        if self._parts is None:
            raise RuntimeError("the intake is not started")
        server = self._parts.server

        def exit_on_stop() -> None:
            stop.wait()
            server.should_exit = True

        threading.Thread(target=exit_on_stop, name="dp3-intake-stop", daemon=True).start()
        server.run()
        if not server.started and not stop.is_set():
            raise SystemExit(STARTUP_FAILURE)

    def stop(self) -> None:
        parts, self._parts = self._parts, None
        if parts is None:
            return
        parts.consumer.stop()
        parts.publisher.close()
        parts.client.close()
        os.close(parts.uploads_lock)
