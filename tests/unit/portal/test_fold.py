"""Folding events into a photo: idempotent, forward-only, order-independent for facts."""

from __future__ import annotations

import itertools

from dp3.events import ErrorInfo, ErrorKind, JournalEntry, Status
from dp3_portal import camera_filter, fold

META = {"model": "Canon EOS 40D", "width": 3888, "height": 2592}


def detected(n: int = 1) -> JournalEntry:
    return JournalEntry(
        id=f"JAEGER-NICHOLAS_1355517208_DSC{n}.JPG",
        status=Status.DETECTED,
        datetime=1355517208,
        owner="JAEGER-NICHOLAS",
        path=f"/inbox/JAEGER-NICHOLAS/DSC{n}.JPG",
        sha256="ab" * 32,
        size=1234,
        service="scanner",
        at="2026-11-24T10:00:00.000000Z",
    )


def lifecycle() -> list[JournalEntry]:
    first = detected()
    processed = first.next(Status.PROCESSED, service="dispatcher", meta=META, at="2026-11-24T10:00:01.000000Z")
    archived = processed.next(
        Status.ARCHIVED, service="archiver", archives=["/a/2012-12-14", "/b/2012-12-14"], at="2026-11-24T10:00:02Z"
    )
    collected = archived.next(Status.COLLECTED, service="archiver", at="2026-11-24T10:00:03.000000Z")
    return [first, processed, archived, collected]


def state(photo: fold.Photo) -> dict[str, object]:
    return {name: photo[name] for name in (*fold.STATE_FIELDS, "model", "sort_key")}


def test_every_order_of_the_lifecycle_folds_to_the_same_state() -> None:
    events = lifecycle()
    expected = state(fold.fold(None, events))
    assert expected["status"] == "Collected"
    assert expected["model"] == "Canon EOS 40D"
    assert expected["archives"] == ["/a/2012-12-14", "/b/2012-12-14"]
    for order in itertools.permutations(events):
        photo = fold.fold(None, list(order))
        assert state(photo) == expected
        assert [item["status"] for item in photo["history"]] == ["Detected", "Processed", "Archived", "Collected"]


def test_a_redelivered_event_changes_nothing() -> None:
    events = lifecycle()
    photo = fold.fold(None, events)
    assert fold.fold(photo, events) is photo
    assert len(fold.fold(photo, [events[2]])["history"]) == 4


def test_a_late_detected_never_hides_collected() -> None:
    events = lifecycle()
    photo = fold.fold(None, events)
    redrive = events[0].next(Status.DETECTED, service="scanner", attempt=1, at="2026-11-25T00:00:00Z")
    after = fold.apply(photo, redrive)
    assert state(after) == state(photo)
    assert len(after["history"]) == 5


def test_a_redrive_detected_of_a_processed_photo_changes_no_state() -> None:
    first, processed = lifecycle()[:2]
    photo = fold.fold(None, [first, processed])
    redrive = first.next(Status.DETECTED, service="scanner", attempt=1, at="2026-11-25T00:00:00Z")
    assert state(fold.apply(photo, redrive)) == state(photo)


def test_a_failed_render_stays_failed_through_archiving() -> None:
    first = detected()
    error = ErrorInfo(stage="render", kind=ErrorKind.CORRUPT_IMAGE, message="not a JPEG")
    failed = first.next(Status.FAILED, service="dispatcher", error=error, at="2026-11-24T10:00:01Z")
    archived = failed.next(Status.ARCHIVED, service="archiver", archives=["/a/2012-12-14"], at="2026-11-24T10:00:02Z")
    collected = archived.next(Status.COLLECTED, service="archiver", at="2026-11-24T10:00:03Z")
    photo = fold.fold(None, [collected, first, failed, archived])
    assert photo["status"] == "Collected"
    assert photo["failed"] is True
    assert photo["error_kind"] == "corrupt_image"
    assert photo["error"]["message"] == "not a JPEG"


def test_a_retried_failure_that_then_succeeds_is_no_longer_failed() -> None:
    first = detected()
    error = ErrorInfo(stage="render", kind=ErrorKind.WORKER_ENVIRONMENT, message="no Pillow")
    failed = first.next(Status.FAILED, service="dispatcher", error=error, at="2026-11-24T10:00:01Z")
    retry = first.next(Status.DETECTED, service="portal", attempt=1, at="2026-11-24T11:00:00Z")
    processed = retry.next(Status.PROCESSED, service="dispatcher", meta=META, at="2026-11-24T11:00:01Z")
    photo = fold.fold(None, [first, failed, retry])
    assert photo["status"] == "Failed"
    photo = fold.apply(photo, processed)
    assert (photo["status"], photo["failed"], photo["error"], photo["error_kind"]) == ("Processed", False, None, "")


def test_sort_key_orders_by_capture_time_then_id() -> None:
    keys = [fold.sort_key(t, i) for t, i in [(5, "b"), (1_355_517_208, "a"), (40, "z"), (40, "a")]]
    assert sorted(keys) == [keys[0], keys[3], keys[2], keys[1]]
    assert fold.time_prefix(40) < keys[3] < fold.time_prefix(41)


def test_camera_model_is_read_from_flat_or_nested_meta() -> None:
    assert camera_filter.camera_of({"model": "X100"}) == "X100"
    assert camera_filter.camera_of({"exif": {"Model": "D70 "}}) == "D70"
    assert camera_filter.camera_of(None) == ""
    assert camera_filter.camera_of({"model": None}) == ""
    assert camera_filter.wanted(" D70 ") == "D70"


def test_the_stored_name_comes_from_the_archiver_events_in_any_order() -> None:
    first, processed, archived, collected = lifecycle()
    archived = archived.model_copy(update={"stored_name": "X~0123456789ab.JPG"})
    collected = collected.model_copy(update={"stored_name": "X~0123456789ab.JPG"})
    assert fold.fold(None, [collected, first, processed, archived])["stored_name"] == "X~0123456789ab.JPG"
    assert fold.fold(None, [first, processed])["stored_name"] == ""


def test_a_collected_render_failure_whose_retry_fails_shows_the_newest_error_in_any_order() -> None:
    # Retried after collection (from the stores), it failed again for another reason: the page must say
    # that reason, not the old one (whose advice, "raise the limit", was already followed).
    first = detected()
    old = ErrorInfo(stage="dispatcher", kind=ErrorKind.TOO_LARGE, message="raise DP3_TASK_MEMORY_MB")
    failed = first.next(Status.FAILED, service="dispatcher", error=old, at="2026-11-24T10:00:01Z")
    archived = failed.next(Status.ARCHIVED, service="archiver", archives=["/a/2012-12-14"], at="2026-11-24T10:00:02Z")
    collected = archived.next(Status.COLLECTED, service="archiver", at="2026-11-24T10:00:03Z")
    retry = first.next(Status.DETECTED, service="portal", attempt=1, at="2026-11-24T11:00:00Z")
    new = ErrorInfo(stage="dispatcher", kind=ErrorKind.UNREADABLE, message="no store holds a copy with its sha256")
    again = retry.next(Status.FAILED, service="dispatcher", error=new, at="2026-11-24T11:00:01Z")
    events = [first, failed, archived, collected, retry, again]
    for order in itertools.permutations(events):
        photo = fold.fold(None, list(order))
        assert (photo["status"], photo["failed"], photo["error_kind"]) == ("Collected", True, "unreadable"), order
        assert photo["error"]["message"] == new.message


def test_a_late_copy_of_the_first_failure_does_not_hide_a_collected_success() -> None:
    first = detected()
    error = ErrorInfo(stage="dispatcher", kind=ErrorKind.RENDER_FAILED, message="old")
    failed = first.next(Status.FAILED, service="dispatcher", error=error, at="2026-11-24T09:00:00Z")
    photo = fold.fold(None, [*lifecycle(), failed])
    assert (photo["status"], photo["failed"], photo["error"]) == ("Collected", False, None)
