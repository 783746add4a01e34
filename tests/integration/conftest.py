from __future__ import annotations

from collections.abc import Iterator

import pytest

from dp3_portal.embedded import EmbeddedMongo
from tests.rabbit import create_vhost, delete_vhost


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A fresh, empty RabbitMQ vhost for one test."""
    vhost, url = create_vhost()
    try:
        yield url
    finally:
        delete_vhost(vhost)


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One embedded MongoDB-wire server for the session; each test takes its own database."""
    server = EmbeddedMongo(None, run_dir=tmp_path_factory.mktemp("nx-27017"))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
