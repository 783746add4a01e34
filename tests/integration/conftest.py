from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.rabbit import create_vhost, delete_vhost


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A fresh, empty RabbitMQ vhost for one test."""
    vhost, url = create_vhost()
    try:
        yield url
    finally:
        delete_vhost(vhost)
