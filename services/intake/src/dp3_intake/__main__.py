"""``dp3-intake``: wire the intake together and serve it (settings, Mongo, journal, HTTP)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import uvicorn
from pymongo import MongoClient

from dp3 import devices
from dp3.broker import Consumer, Publisher
from dp3.errors import ConfigError
from dp3.log import configure_logging
from dp3.mongo import ping
from dp3.service import load_or_exit
from dp3_intake.app import SERVICE, Intake, create_app
from dp3_intake.receipts import COLLECTION, QUEUE, ReceiptIndex
from dp3_intake.settings import IntakeSettings

log = logging.getLogger(__name__)

EMBEDDED_WAIT_SECONDS = 30.0


def mongo_url(settings: IntakeSettings, wait: float = EMBEDDED_WAIT_SECONDS) -> str:
    """``DP3_MONGO_URL``, else the embedded server the portal runs (its URL in ``$DP3_HOME/mongo/url``).

    The devices registry belongs to the portal, so the intake never starts a
    server of its own: it would be an empty registry.
    """
    if settings.mongo_url:
        return settings.mongo_url
    url_file = Path(settings.home) / "mongo" / "url"
    deadline = time.monotonic() + wait
    while True:
        try:
            url = url_file.read_text().strip()
        except OSError:
            url = ""
        if url and ping(url):
            return url
        if time.monotonic() > deadline:
            raise ConfigError(
                f"DP3_MONGO_URL: unset, and no portal's embedded server answers ({url_file}); start the portal"
            )
        time.sleep(0.5)


def main() -> None:
    settings = load_or_exit(SERVICE, IntakeSettings)
    configure_logging(SERVICE, settings.log_level)
    try:
        url = mongo_url(settings)
    except ConfigError as exc:
        print(f"dp3-intake: bad configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=5000)
    database = client[settings.mongo_database]
    publisher = Publisher(settings.amqp_url)
    index = ReceiptIndex(database[COLLECTION])
    consumer = Consumer(settings.amqp_url, QUEUE, index.handle, publisher=publisher, queues=(QUEUE,), workers=1)
    threading.Thread(target=consumer.run, name="dp3-intake-receipts", daemon=True).start()
    intake = Intake(settings, database[devices.COLLECTION], index, publisher)
    app = create_app(intake)
    log.info("intake on %s:%d, inbox %s", settings.intake_host, settings.intake_port, settings.inbox_dir)
    try:
        uvicorn.run(app, host=settings.intake_host, port=settings.intake_port, log_level="warning")
    finally:
        consumer.stop()
        publisher.close()
        client.close()


if __name__ == "__main__":
    main()
