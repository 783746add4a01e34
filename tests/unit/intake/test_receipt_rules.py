"""The receipt's pure parts: which event replaces which in the index, and the state shown."""

from __future__ import annotations

from dp3.events import JournalEntry, Status
from dp3_intake.receipts import index_document, state_of, supersedes

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
    assert supersedes(Status.ARCHIVED, None)
    assert supersedes(Status.COLLECTED, "Archived")
    assert not supersedes(Status.DETECTED, "Archived")
    assert not supersedes(Status.ARCHIVED, "Collected")


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
