"""An embedded MongoDB-wire server (in memory) for the portal's tests; a fresh database per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database


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


PASSWORD = "correct horse battery"


@pytest.fixture
def site(tmp_path: Path, corpus: Path):
    from tests.integration.portal.site import build_site

    return build_site(tmp_path / "site", corpus)


@pytest.fixture
def portal_settings(site, mongo_url: str, db_name: str, dp3_home: Path):
    from dp3.settings import load_settings
    from dp3_portal.settings import PortalSettings

    return load_settings(
        PortalSettings,
        home=dp3_home,
        stores=site.stores,
        staging=site.staging,
        mongo_url=mongo_url,
        mongo_database=db_name,
        admin_password=PASSWORD,
        login_free_attempts=2,
        login_delay_seconds=0.4,
        dispatcher_metrics_url="http://127.0.0.1:9/metrics",
        amqp_url="amqp://guest:guest@127.0.0.1:5672/dp3-portal-test-unused",
    )


@pytest.fixture
def recorded(site, db):
    """The site's events recorded into the test database."""
    from dp3_portal.recorder import Recorder
    from dp3_portal.store_schema import ensure_indexes

    ensure_indexes(db)
    Recorder(db).record(site.events)
    return site


@pytest.fixture
def client(portal_settings, recorded):
    from fastapi.testclient import TestClient

    from dp3_portal.app import create_app

    with TestClient(create_app(portal_settings, record=False), follow_redirects=False) as test_client:
        yield test_client


def login(client, user: str = "admin", password: str = PASSWORD):
    """Log in through the form, as a browser would; returns the response."""
    form = client.get("/login")
    token = form.cookies.get("dp3_csrf") or client.cookies.get("dp3_csrf")
    return client.post("/login", data={"username": user, "password": password, "csrf_token": token, "next": "/"})
