"""The intake's receipt index on the real MongoDB-wire server: one round trip per event, never moved back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection

from dp3.broker import Message
from dp3.events import Status
from dp3.testing import delivered
from dp3_intake.receipts import ReceiptIndex
from tests.unit.intake.test_receipt_rules import SHA, entry

pytestmark = pytest.mark.integration


@pytest.fixture
def collection(mongo_url: str) -> Iterator[Collection[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    client.drop_database("receipt_index")
    try:
        yield client["receipt_index"]["intake_receipts"]
    finally:
        client.drop_database("receipt_index")
        client.close()


def message(status: Status, **changes: object) -> Message:
    return delivered(entry(status, **changes))


@pytest.mark.parametrize(
    ("order", "kept"),
    [
        ((Status.DETECTED, Status.ARCHIVED, Status.COLLECTED), Status.COLLECTED),
        ((Status.COLLECTED, Status.DETECTED, Status.ARCHIVED), Status.COLLECTED),  # late redeliveries
        ((Status.ARCHIVED, Status.DETECTED), Status.ARCHIVED),
        ((Status.DETECTED, Status.DETECTED), Status.DETECTED),
        ((Status.FAILED, Status.DETECTED, Status.FAILED), Status.FAILED),
    ],
)
def test_the_index_keeps_the_furthest_status_in_any_order(
    collection: Collection[dict[str, Any]], order: tuple[Status, ...], kept: Status
) -> None:
    index = ReceiptIndex(collection)
    for status in order:
        archives = ["/a", "/b"] if status in (Status.ARCHIVED, Status.COLLECTED) else []
        assert index.handle(message(status, archives=archives)) == []
    record = index.find("ANN-LEE", SHA)
    assert record is not None and record["status"] == kept.value
    assert collection.count_documents({}) == 1


def test_a_record_written_by_the_earlier_index_is_superseded_as_before(collection: Collection[dict[str, Any]]) -> None:
    """Records an earlier release wrote (same fields, a Processed among them) are replaced by the same rule."""
    collection.insert_one({"_id": f"ANN-LEE/{SHA}", "owner": "ANN-LEE", "sha256": SHA, "status": "Processed"})
    index = ReceiptIndex(collection)
    index.handle(message(Status.DETECTED))
    assert (index.find("ANN-LEE", SHA) or {})["status"] == "Processed"
    index.handle(message(Status.ARCHIVED, archives=["/a"]))
    assert (index.find("ANN-LEE", SHA) or {})["status"] == "Archived"
