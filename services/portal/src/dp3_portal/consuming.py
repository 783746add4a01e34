"""The recorder's consume loop on a background thread: ``portal.journal`` -> :class:`Recorder`.

Like every service's consumer, it hands each event to its status's handler
through a declared ``{status: handler}`` table (:func:`journal_table`),
checked against the queue's bindings (:func:`dp3.app.dispatch`). In the
portal's table every status has the one handler: each event is journalled
and folded into its photo, whatever it says.
"""

from __future__ import annotations

import threading
from typing import Any

from pymongo import MongoClient

from dp3.app import HandlerTable, dispatch
from dp3.broker import BrokerOptions, Consumer, Handler, Publisher
from dp3.events import Status
from dp3.topology import PORTAL
from dp3_portal.recorder import BatchingHandler, Recorder
from dp3_portal.store_schema import ensure_indexes


def journal_table(record: Handler) -> HandlerTable:
    """``portal.journal``'s table: every status to ``record`` (the queue is bound to ``photo.#``)."""
    return dict.fromkeys(Status, record)


class RecorderThread:
    """Owns a synchronous MongoDB client, a consumer and its thread."""

    def __init__(
        self,
        amqp_url: str,
        mongo_url: str,
        database: str,
        *,
        publisher: Publisher,
        prefetch: int,
        batch: int,
        options: BrokerOptions | None = None,
    ) -> None:
        self.client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
        ensure_indexes(self.client[database])
        self.handler = BatchingHandler(Recorder(self.client[database]), batch=batch)
        self.consumer = Consumer(
            amqp_url,
            PORTAL,
            dispatch(PORTAL, journal_table(self.handler)),
            publisher=publisher,
            prefetch=prefetch,
            workers=2,
            options=options,
        )
        self.thread = threading.Thread(target=self.consumer.run, name="dp3-portal-consumer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.consumer.stop()
        self.thread.join(15)
        self.handler.stop()
        self.client.close()
