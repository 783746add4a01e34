"""dp3.devices' registry functions against a real MongoDB-wire server (the portal and the intake share them)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection

from dp3 import devices

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def registry(mongo_url: str) -> Iterator[Collection[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    name = f"dp3test_{secrets.token_hex(4)}"
    try:
        yield client[name][devices.COLLECTION]
    finally:
        client.drop_database(name)
        client.close()


def test_a_token_is_stored_only_hashed_and_finds_its_device(registry: Collection[dict[str, Any]]) -> None:
    record, token = devices.create(registry, owner="ANN-LEE", label="Ann's laptop", now=NOW)
    stored = registry.find_one({"_id": record.id})
    assert stored is not None and token not in str(stored)
    assert stored["token_sha256"] == devices.token_sha256(token)
    found = devices.find_by_token(registry, token)
    assert found is not None and (found.id, found.owner, found.label) == (record.id, "ANN-LEE", "Ann's laptop")
    assert devices.find_by_token(registry, devices.new_token(record.id)) is None  # right id, wrong secret
    assert devices.lookup(registry, devices.new_token()) == (None, "unknown")


def test_a_revoked_token_no_longer_works_and_revoking_twice_keeps_the_first_time(
    registry: Collection[dict[str, Any]],
) -> None:
    record, token = devices.create(registry, owner="ANN-LEE", label="laptop", now=NOW)
    assert devices.revoke(registry, record.id, now=NOW)
    assert not devices.revoke(registry, record.id, now=NOW + dt.timedelta(hours=1))
    assert devices.find_by_token(registry, token) is None
    assert devices.lookup(registry, token) == (None, "revoked")
    (listed,) = devices.list_devices(registry)
    assert listed.revoked_at is not None and listed.revoked_at.replace(tzinfo=dt.UTC) == NOW


def test_last_seen_is_written_at_most_once_a_minute(registry: Collection[dict[str, Any]]) -> None:
    record, token = devices.create(registry, owner="ANN-LEE", label="laptop", now=NOW)
    assert devices.touch_last_seen(registry, record, now=NOW)
    seen = devices.find_by_token(registry, token)
    assert seen is not None
    assert not devices.touch_last_seen(registry, seen, now=NOW + dt.timedelta(seconds=30))
    assert devices.touch_last_seen(registry, seen, now=NOW + dt.timedelta(seconds=61))
    later = devices.find_by_token(registry, token)
    assert later is not None and later.last_seen_at is not None
    assert later.last_seen_at.replace(tzinfo=dt.UTC) == NOW + dt.timedelta(seconds=61)


def test_devices_are_listed_oldest_first(registry: Collection[dict[str, Any]]) -> None:
    devices.create(registry, owner="BOB-RAY", label="second", now=NOW + dt.timedelta(minutes=1))
    devices.create(registry, owner="ANN-LEE", label="first", now=NOW)
    assert [record.label for record in devices.list_devices(registry)] == ["first", "second"]
    with pytest.raises(ValueError, match="one folder name"):
        devices.create(registry, owner="../etc", label="x")
