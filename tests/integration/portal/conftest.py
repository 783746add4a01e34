"""An embedded MongoDB-wire server (in memory) for the portal's tests; a fresh database per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from dp3_portal.embedded import EmbeddedMongo


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedMongo(None, run_dir=tmp_path_factory.mktemp("nx-27017"))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def db_name() -> str:
    return f"dp3test_{secrets.token_hex(4)}"


@pytest.fixture
def db(mongo_url: str, db_name: str) -> Iterator[Database[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    try:
        yield client[db_name]
    finally:
        client.drop_database(db_name)
        client.close()


@pytest.fixture
def dp3_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home
