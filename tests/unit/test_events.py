from __future__ import annotations

import json

import pytest

from dp3.events import ErrorInfo, ErrorKind, InvalidEvent, JournalEntry, Status, make_photo_id

SEED_ENTRY = """{"status": "Processed",
"datetime": 1355517208,
"archives": ["/data/scratch/dp3/Archive/2012-12-14"],
"owner": "JAEGER-NICHOLAS",
"path": "/Dropbox/Photos/Israel/JAEGER-NICHOLAS/DSC00372.JPG",
"id": "JAEGER-NICHOLAS_1355517208_DSC00372.JPG"}"""

BRIEF_ENTRY = """{"id": "JAEGER-NICHOLAS_1355517208_DSC00372.JPG",
 "status": "Processed",
 "datetime": 1355517208,
 "archives": ["/data/archive-a/2012-12-14", "/data/archive-b/2012-12-14"],
 "owner": "JAEGER-NICHOLAS",
 "path": "/Dropbox/Photos/Israel/JAEGER-NICHOLAS/DSC00372.JPG",
 "sha256": "9f2c...", "size": 4843921,
 "event_id": "uuid4", "at": "2026-11-24T19:00:00Z", "service": "dispatcher",
 "error": null}"""


def test_the_seeds_journal_entry_parses() -> None:
    entry = JournalEntry.from_json(SEED_ENTRY)
    assert entry.status is Status.PROCESSED
    assert entry.datetime == 1355517208
    assert entry.owner == "JAEGER-NICHOLAS"
    assert entry.archives == ["/data/scratch/dp3/Archive/2012-12-14"]
    assert entry.id == make_photo_id("JAEGER-NICHOLAS", 1355517208, "DSC00372.JPG")


def test_the_briefs_example_parses_and_round_trips() -> None:
    entry = JournalEntry.from_json(BRIEF_ENTRY)
    assert (entry.sha256, entry.size, entry.service, entry.event_id) == ("9f2c...", 4843921, "dispatcher", "uuid4")
    again = JournalEntry.from_json(entry.to_json())
    assert again == entry
    wire = json.loads(entry.to_json())
    for seed_field in ("status", "datetime", "archives", "owner", "path", "id"):
        assert wire[seed_field] == json.loads(BRIEF_ENTRY)[seed_field]


@pytest.mark.parametrize(
    ("status", "key"),
    [
        (Status.DETECTED, "photo.detected"),
        (Status.PROCESSED, "photo.processed"),
        (Status.ARCHIVED, "photo.archived"),
        (Status.COLLECTED, "photo.collected"),
        (Status.FAILED, "photo.failed"),
        (Status.DUPLICATE, "photo.duplicate"),
    ],
)
def test_routing_key_per_status(status: Status, key: str) -> None:
    assert status.routing_key == key


def test_failed_carries_a_specific_error() -> None:
    entry = JournalEntry(
        id="A-B_1_x.jpg",
        status=Status.FAILED,
        datetime=1,
        path="/inbox/x.jpg",
        error=ErrorInfo(stage="dispatcher", kind=ErrorKind.CORRUPT_IMAGE, message="not a JPEG"),
    )
    parsed = JournalEntry.from_json(entry.to_json())
    assert parsed.error is not None and parsed.error.kind is ErrorKind.CORRUPT_IMAGE


def test_unknown_error_kind_is_refused() -> None:
    body = json.loads(BRIEF_ENTRY) | {"status": "Failed", "error": {"stage": "x", "kind": "gremlins", "message": "?"}}
    with pytest.raises(InvalidEvent, match=r"error\.kind"):
        JournalEntry.from_json(json.dumps(body))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"id": "x", "status": "Lost", "datetime": 1, "path": "/p"}',
        b'{"id": "", "status": "Detected", "datetime": 1, "path": "/p"}',
    ],
)
def test_bad_bodies_raise_invalid_event(body: bytes) -> None:
    with pytest.raises(InvalidEvent):
        JournalEntry.from_json(body)


def test_next_makes_a_new_event_for_the_same_photo() -> None:
    detected = JournalEntry.from_json(BRIEF_ENTRY).next(Status.DETECTED, service="scanner")
    processed = detected.next(Status.PROCESSED, service="dispatcher", archives=[])
    assert processed.id == detected.id and processed.sha256 == detected.sha256
    assert processed.event_id != detected.event_id
    assert processed.status is Status.PROCESSED and processed.service == "dispatcher"


def test_id_rule() -> None:
    assert make_photo_id("REEDER-PHILIP", 1355825903, "(2)2009.YAVNE.AREA.PROPOSED.INSERT.JPG") == (
        "REEDER-PHILIP_1355825903_(2)2009.YAVNE.AREA.PROPOSED.INSERT.JPG"
    )
    assert make_photo_id("A-B", 7, "-rf 'x' é.jpg") == "A-B_7_-rf 'x' é.jpg"
    for owner, name in (("", "x.jpg"), ("a/b", "x.jpg"), ("A-B", "d/x.jpg"), ("A-B", "..")):
        with pytest.raises(ValueError):
            make_photo_id(owner, 1, name)


def test_the_field_upload_statuses_are_announcements_not_pipeline_stages() -> None:
    from dp3.events import PIPELINE_STATUSES, preview_id
    from dp3.topology import ALL_QUEUES, PORTAL

    assert Status.PREVIEWED.routing_key == "photo.previewed"
    assert Status.UPLOADING.routing_key == "photo.uploading"
    assert not Status.PREVIEWED.is_pipeline and not Status.UPLOADING.is_pipeline
    assert [status.value for status in PIPELINE_STATUSES] == [
        "Detected",
        "Processed",
        "Archived",
        "Collected",
        "Failed",
        "Duplicate",
    ]
    stage_bindings = {key for spec in ALL_QUEUES if spec is not PORTAL for key in spec.bindings}
    assert not stage_bindings & {"photo.previewed", "photo.uploading", "photo.#", "photo.*"}
    assert preview_id("ab" * 32) == "preview:" + "ab" * 32
