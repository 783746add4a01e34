"""Previews and originals joined by sha256: one record per photo in every order of arrival (pure).

The catalog here is a dict, and :class:`Catalog.record` does what the recorder
does around the pure functions (read what they ask for, carry out their
writes); the integration tests run the real recorder on the real servers.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from dp3.events import JournalEntry, Status, preview_id
from dp3_portal import fold, join, presentation

SHA = "5e" * 32
OWNER = "JAEGER-NICHOLAS"
PHOTO_ID = f"{OWNER}_1355517208_DSC00372.JPG"
PREVIEW_FILE = f"{OWNER}/{SHA}.jpg"


class Catalog:
    """The ``photos`` collection as a dict, written the way the recorder writes it."""

    def __init__(self) -> None:
        self.photos: dict[str, fold.Photo] = {}

    def record(self, entries: Sequence[JournalEntry]) -> None:
        ids = join.candidate_ids(entries)
        held = {key: str(self.photos[key]["sha256"]) for key in ids if key in self.photos}
        originals = {}
        for sha256 in join.preview_shas(entries):
            found = join.pick_original(p for p in self.photos.values() if p["sha256"] == sha256)
            if found is not None:
                originals[sha256] = found
        routes = join.route(list(entries), held, originals)
        by_photo: dict[str, list[JournalEntry]] = {}
        for key, entry in routes.keyed:
            by_photo.setdefault(key, []).append(entry)
        for change in join.plan(by_photo, dict(self.photos), routes.absorb):
            if isinstance(change, join.Delete):
                assert self.photos[change.photo_id]["version"] == change.version
                del self.photos[change.photo_id]
            else:
                stored = self.photos.get(change.photo["_id"])
                assert (stored is None) == (change.version is None)
                assert stored is None or stored["version"] == change.version
                self.photos[change.photo["_id"]] = change.photo


def iso(second: int) -> str:
    return f"2026-12-01T10:00:{second:02d}.000000Z"


def field_event(status: Status, at: int, meta: dict[str, object], sha256: str) -> JournalEntry:
    """What the intake publishes before the original reaches the inbox (docs/field-uploads.md)."""
    return JournalEntry(
        id=preview_id(sha256),
        status=status,
        datetime=1355517000,  # the device's declared capture time: the scanner may read another
        owner=OWNER,
        path="DSC00372.JPG",
        sha256=sha256,
        size=4_000_000,
        service="intake",
        at=iso(at),
        meta=meta,
    )


def previewed(at: int = 0, *, sha256: str = SHA) -> JournalEntry:
    return field_event(Status.PREVIEWED, at, {"preview": PREVIEW_FILE}, sha256)


def uploading(offset: int, at: int, *, sha256: str = SHA) -> JournalEntry:
    return field_event(Status.UPLOADING, at, {"offset": offset, "length": 4_000_000}, sha256)


def original(at: int = 10, *, sha256: str = SHA, photo_id: str = PHOTO_ID) -> list[JournalEntry]:
    first = JournalEntry(
        id=photo_id,
        status=Status.DETECTED,
        datetime=1355517208,
        owner=OWNER,
        path=f"/inbox/{OWNER}/DSC00372.JPG",
        sha256=sha256,
        size=4_000_000,
        service="scanner",
        at=iso(at),
    )
    processed = first.next(Status.PROCESSED, service="dispatcher", meta={"model": "NIKON D70"}, at=iso(at + 1))
    archived = processed.next(Status.ARCHIVED, service="archiver", archives=["/a/2012-12-14"], at=iso(at + 2))
    collected = archived.next(Status.COLLECTED, service="archiver", at=iso(at + 3))
    return [first, processed, archived, collected]


def state(photo: fold.Photo) -> dict[str, object]:
    fields = (*fold.STATE_FIELDS, "_id", "model", "sort_key", "preview", "upload", "preview_since", "preview_waiting")
    return {name: photo[name] for name in fields} | {"history": [item["event_id"] for item in photo["history"]]}


def events_of_one_photo() -> list[JournalEntry]:
    detected, processed, _, collected = original()
    # The last upload report (at completion) may come after the scanner's Detected, or before it.
    return [previewed(0), uploading(2_000_000, 5), uploading(4_000_000, 9), detected, processed, collected]


def test_a_preview_alone_is_one_tile_marked_original_on_its_way() -> None:
    catalog = Catalog()
    catalog.record([previewed(0), uploading(1_000_000, 5)])
    assert list(catalog.photos) == [preview_id(SHA)]
    photo = catalog.photos[preview_id(SHA)]
    assert (photo["status"], photo["preview"], photo["owner"], photo["sha256"]) == (
        "Previewed",
        PREVIEW_FILE,
        OWNER,
        SHA,
    )
    assert presentation.on_its_way(photo)
    assert presentation.arrived_text(photo) == "25 % arrived"
    assert photo["preview_waiting"] == f"{fold.at_seconds(iso(0)):017.6f}"
    assert photo["k_status"].startswith("Previewed")
    assert [item["status"] for item in photo["history"]] == ["Previewed"]


def test_every_order_of_arrival_one_event_at_a_time_ends_in_the_originals_one_record() -> None:
    events = events_of_one_photo()
    expected: dict[str, object] | None = None
    for order in itertools.permutations(events):
        catalog = Catalog()
        for entry in order:
            catalog.record([entry])
            assert len(catalog.photos) == 1, order  # never two tiles, at any moment
        (photo,) = catalog.photos.values()
        assert photo["_id"] == PHOTO_ID
        assert (photo["status"], photo["datetime"], photo["path"]) == ("Collected", 1355517208, events[3].path)
        assert (photo["preview"], photo["upload"]["offset"], photo["model"]) == (PREVIEW_FILE, 4_000_000, "NIKON D70")
        assert not presentation.on_its_way(photo) and photo["preview_waiting"] == ""
        assert [item["status"] for item in photo["history"]] == ["Previewed", "Detected", "Processed", "Collected"]
        if expected is None:
            expected = state(photo)
        assert state(photo) == expected, order


def test_every_order_in_one_batch_and_in_random_batches_ends_the_same() -> None:
    events = events_of_one_photo()
    reference = Catalog()
    for entry in events:
        reference.record([entry])
    expected = state(reference.photos[PHOTO_ID])
    rng = random.Random(18)
    for order in itertools.permutations(events):
        whole = Catalog()
        whole.record(list(order))
        assert [state(photo) for photo in whole.photos.values()] == [expected], order
        split = Catalog()
        cuts = sorted(rng.sample(range(1, len(order)), 2))
        for start, end in itertools.pairwise([0, *cuts, len(order)]):
            split.record(list(order[start:end]))
        assert [state(photo) for photo in split.photos.values()] == [expected], (order, cuts)


def test_every_event_again_after_the_join_changes_nothing() -> None:
    catalog = Catalog()
    events = events_of_one_photo()
    for entry in events:
        catalog.record([entry])
    before = catalog.photos[PHOTO_ID]
    for entry in events:
        catalog.record([entry])
    catalog.record(events)
    assert list(catalog.photos) == [PHOTO_ID]
    assert catalog.photos[PHOTO_ID] is before  # not even rewritten


def test_an_original_with_no_preview_is_one_record_without_one() -> None:
    catalog = Catalog()
    for entry in original():
        catalog.record([entry])
    (photo,) = catalog.photos.values()
    assert (photo["_id"], photo["preview"], photo["upload"], photo["status"]) == (PHOTO_ID, "", None, "Collected")
    assert not presentation.on_its_way(photo)


def test_upload_reports_without_a_preview_are_one_tile_then_the_originals_record() -> None:
    catalog = Catalog()
    catalog.record([uploading(3_000_000, 5)])
    (photo,) = catalog.photos.values()
    assert (photo["_id"], photo["status"], photo["preview"]) == (preview_id(SHA), "Uploading", "")
    assert presentation.arrived_text(photo) == "75 % arrived"
    catalog.record([previewed(6)])
    assert catalog.photos[preview_id(SHA)]["status"] == "Previewed"
    catalog.record(original()[:1])
    assert list(catalog.photos) == [PHOTO_ID]
    assert catalog.photos[PHOTO_ID]["status"] == "Detected"
    assert catalog.photos[PHOTO_ID]["preview"] == PREVIEW_FILE  # the stand-in until the render's web version


def test_the_newest_upload_report_wins_so_a_restarted_upload_shows_its_restart() -> None:
    catalog = Catalog()
    restarted = uploading(0, 30)  # a checksum mismatch: the device starts again at byte 0
    for entry in (previewed(0), restarted, uploading(3_000_000, 20), uploading(1_000_000, 10)):
        catalog.record([entry])
    assert presentation.arrived_text(catalog.photos[preview_id(SHA)]) == "0 % arrived"
    catalog.record([uploading(4_000_000, 40)])
    assert presentation.arrived_text(catalog.photos[preview_id(SHA)]) == "100 % arrived"
    catalog.record([restarted])  # replayed: older than what is shown
    assert presentation.arrived_text(catalog.photos[preview_id(SHA)]) == "100 % arrived"


def test_other_bytes_are_other_photos() -> None:
    catalog = Catalog()
    catalog.record([previewed(0, sha256="77" * 32), *original()])
    assert sorted(catalog.photos) == sorted([PHOTO_ID, preview_id("77" * 32)])
    assert catalog.photos[PHOTO_ID]["preview"] == ""


def test_a_preview_joins_the_photo_and_not_its_duplicate() -> None:
    catalog = Catalog()
    duplicate_id = f"{OWNER}_1355517208_DSC00372 (copy).JPG"
    detected = original(photo_id=duplicate_id)[0]
    duplicate = detected.next(Status.DUPLICATE, service="scanner", duplicate_of=PHOTO_ID, at=iso(20))
    catalog.record([*original(), detected, duplicate])
    catalog.record([previewed(30)])
    assert sorted(catalog.photos) == sorted([PHOTO_ID, duplicate_id])
    assert catalog.photos[PHOTO_ID]["preview"] == PREVIEW_FILE
    assert catalog.photos[duplicate_id]["preview"] == ""


def test_a_preview_record_written_beside_its_original_is_joined_by_the_next_event() -> None:
    # Two portals recording at once may each write their side before seeing the other's.
    catalog = Catalog()
    detected, processed, _, _ = original()
    catalog.record([detected])
    catalog.photos[preview_id(SHA)] = fold.fold(None, [previewed(0)])
    catalog.record([processed])
    assert list(catalog.photos) == [PHOTO_ID]
    assert [item["status"] for item in catalog.photos[PHOTO_ID]["history"]] == ["Previewed", "Detected", "Processed"]


def test_a_preview_event_without_its_report_fields_is_recorded_without_them() -> None:
    odd = uploading(0, 1).model_copy(update={"meta": {"offset": "half"}})
    photo = fold.fold(None, [odd])
    assert (photo["status"], photo["upload"], presentation.arrived_text(photo)) == ("Uploading", None, "not started")
