"""The receipt's pure parts: which event replaces which in the index, and the state shown."""

from __future__ import annotations

import hashlib
import zoneinfo
from pathlib import Path
from typing import Any

from dp3 import layout
from dp3.copies import store_folder
from dp3.events import JournalEntry, Status
from dp3_intake.receipts import QUEUE, index_document, replaceable, state_of, verified_stores

SHA = "ab" * 32


def entry(status: Status, **changes: object) -> JournalEntry:
    fields: dict[str, object] = {
        "id": "ANN-LEE_1_x.jpg",
        "status": status,
        "datetime": 1,
        "owner": "ANN-LEE",
        "path": "/i/ANN-LEE/x.jpg",
        "sha256": SHA,
    }
    return JournalEntry.model_validate({**fields, **changes})


def test_a_late_redelivery_never_moves_a_photo_back() -> None:
    """The upsert's filter: an event replaces its own status and every earlier one, never a later one."""
    assert "Archived" in replaceable(Status.ARCHIVED)  # a redelivery rewrites the same state
    assert "Archived" in replaceable(Status.COLLECTED)
    assert "Archived" not in replaceable(Status.DETECTED)
    assert "Collected" not in replaceable(Status.ARCHIVED)


def test_only_pipeline_events_with_owner_and_sha256_are_indexed() -> None:
    assert index_document(entry(Status.ARCHIVED))["_id"] == f"ANN-LEE/{SHA}"  # type: ignore[index]
    assert index_document(entry(Status.ARCHIVED, owner=None)) is None
    assert index_document(entry(Status.ARCHIVED, sha256=None)) is None
    assert index_document(entry(Status.PREVIEWED, id=f"preview:{SHA}")) is None


def test_a_preview_or_an_upload_is_never_archived() -> None:
    assert state_of(None, False, uploading=False, previewed=True) == "preview"
    assert state_of(None, False, uploading=True, previewed=True) == "uploading"
    assert state_of(None, False, uploading=False, previewed=False) == "unknown"
    assert state_of("Archived", False, uploading=False, previewed=True) == "processing"  # a store not verified
    assert state_of("Archived", True, uploading=False, previewed=True) == "archived"
    assert state_of("Collected", True, uploading=False, previewed=False) == "collected"
    assert state_of("Failed", False, uploading=False, previewed=False) == "failed"


def test_two_stores_whose_copies_are_one_file_count_once(tmp_path: Path) -> None:
    """A hard link across stores is one copy under two names: the receipt does not say archived (invariant 9)."""
    zone = zoneinfo.ZoneInfo("UTC")
    data = b"not really a jpeg, but bytes with a sha256"
    name = "ANN-LEE_1_a.jpg"
    document: dict[str, Any] = {"id": name, "sha256": hashlib.sha256(data).hexdigest(), "datetime": 1, "archives": []}
    stores = [tmp_path / "a", tmp_path / "b"]
    folders = []
    for root in stores:
        root.mkdir()
        (root / layout.STORE_MARKER).write_text("{}")
        folder = store_folder(root, [], 1, zone)
        folder.mkdir(parents=True)
        folders.append(folder)
    (folders[0] / name).write_bytes(data)
    (folders[1] / name).hardlink_to(folders[0] / name)
    assert verified_stores(document, stores, zone) == [str(stores[0])]
    (folders[1] / name).unlink()
    (folders[1] / name).write_bytes(data)  # a real second copy
    assert verified_stores(document, stores, zone) == [str(root) for root in stores]


def test_an_event_replaces_its_own_status_and_every_earlier_one() -> None:
    assert replaceable(Status.DETECTED) == ["Detected"]
    assert set(replaceable(Status.FAILED)) == {"Detected", "Processed", "Failed", "Duplicate"}
    assert set(replaceable(Status.COLLECTED)) == {
        "Detected",
        "Processed",
        "Failed",
        "Duplicate",
        "Archived",
        "Collected",
    }


def test_the_receipt_queue_wants_no_processed_event_and_unbinds_the_old_binding() -> None:
    assert Status.PROCESSED.routing_key not in QUEUE.bindings
    assert QUEUE.retired == (Status.PROCESSED.routing_key,)
