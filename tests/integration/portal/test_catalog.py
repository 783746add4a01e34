"""Recorder and catalog on the embedded MongoDB-wire server: answers asserted, not just calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from pymongo import AsyncMongoClient, DeleteOne
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from dp3.events import ErrorKind, JournalEntry, Status
from dp3_portal import recorder as recorder_module
from dp3_portal.catalog import BadQuery, Catalog, PhotoFilter
from dp3_portal.recorder import Recorder
from dp3_portal.store_schema import JOURNAL, PHOTOS, ensure_indexes
from tests.integration.portal.events import lifecycle

pytestmark = pytest.mark.integration

T = TypeVar("T")
UTC = dt.UTC
DAY = 86_400
BASE = 1_355_517_208  # 2012-12-14


def run_catalog(mongo_url: str, db_name: str, action: Callable[[Catalog], Awaitable[T]]) -> T:
    async def main() -> T:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
        try:
            import zoneinfo

            return await action(Catalog(client[db_name], zoneinfo.ZoneInfo("UTC")))
        finally:
            await client.close()

    return asyncio.run(main())


@pytest.fixture
def recorder(db: Database[dict[str, Any]]) -> Recorder:
    ensure_indexes(db)
    return Recorder(db)


def test_every_event_is_stored_once_and_a_redelivered_batch_changes_nothing(
    db: Database[dict[str, Any]], recorder: Recorder
) -> None:
    events = lifecycle("A-B", BASE, "x.jpg") + lifecycle("A-B", BASE + 1, "y.jpg")
    assert recorder.record(events) == 8
    photos_before = {doc["_id"]: doc for doc in db[PHOTOS].find({})}
    assert recorder.record(events) == 0
    assert recorder.record(list(reversed(events[:3]))) == 0
    assert sorted(doc["event_id"] for doc in db[JOURNAL].find({})) == sorted(e.event_id for e in events)
    assert {doc["_id"]: doc for doc in db[PHOTOS].find({})} == photos_before
    assert {doc["status"] for doc in photos_before.values()} == {"Collected"}


def test_out_of_order_and_split_batches_reach_the_same_photo(db: Database[dict[str, Any]], recorder: Recorder) -> None:
    events = lifecycle("A-B", BASE, "x.jpg", model="NIKON D70")
    recorder.record([events[3]])
    assert (db[PHOTOS].find_one({"_id": events[0].id}) or {}).get("status") == "Collected"
    recorder.record([events[0]])  # a late Detected never hides Collected
    recorder.record([events[2], events[1]])
    photo = db[PHOTOS].find_one({"_id": events[0].id})
    assert photo is not None
    assert photo["status"] == "Collected"
    assert photo["model"] == "NIKON D70"
    assert photo["archives"] == ["/a/2012-12-14", "/b/2012-12-14"]
    assert [item["status"] for item in photo["history"]] == ["Detected", "Processed", "Archived", "Collected"]
    assert isinstance(photo["history"][0], dict)  # not a JSON string: $push of documents is avoided


def test_a_redrive_detected_changes_no_state(db: Database[dict[str, Any]], recorder: Recorder) -> None:
    events = lifecycle("A-B", BASE, "x.jpg")
    recorder.record(events[:2])
    before = db[PHOTOS].find_one({"_id": events[0].id})
    redrive = events[0].next(Status.DETECTED, service="scanner", attempt=1)
    recorder.record([redrive])
    after = db[PHOTOS].find_one({"_id": events[0].id})
    assert before is not None and after is not None
    assert (after["status"], after["meta"], after["error"]) == (before["status"], before["meta"], before["error"])
    assert len(after["history"]) == 3


def test_two_writers_on_the_same_photos_lose_no_event(db: Database[dict[str, Any]]) -> None:
    ensure_indexes(db)
    events = [e for n in range(30) for e in lifecycle("A-B", BASE + n, f"{n}.jpg")]
    random.Random(7).shuffle(events)
    first, second = Recorder(db), Recorder(db)
    import threading

    halves = [events[::2], events[1::2]]
    threads = [
        threading.Thread(target=lambda r=r, h=h: [r.record(h[i : i + 7]) for i in range(0, len(h), 7)])
        for r, h in zip((first, second), halves, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    photos = list(db[PHOTOS].find({}))
    assert len(photos) == 30
    assert all(len(photo["history"]) == 4 and photo["status"] == "Collected" for photo in photos)


def seed_gallery(recorder: Recorder) -> list[JournalEntry]:
    events: list[JournalEntry] = []
    for n in range(50):
        owner = ["JAEGER-NICHOLAS", "SMITH-ANNA"][n % 2]
        error = ErrorKind.CORRUPT_IMAGE if n % 10 == 3 else None
        photo = lifecycle(owner, BASE + n * DAY, f"IMG_{n:03d}.JPG", model=f"Model {n % 3}", error=error)
        events += photo if n % 7 else photo[:2]  # every seventh photo still waits for the archiver
    recorder.record(events)
    return events


def test_gallery_pages_filters_and_cursor_give_exact_answers(mongo_url: str, db_name: str, recorder: Recorder) -> None:
    seed_gallery(recorder)

    async def check(catalog: Catalog) -> None:
        everything = await catalog.page(PhotoFilter(), limit=200)
        assert len(everything.items) == 50 and everything.next_cursor is None
        times = [photo["datetime"] for photo in everything.items]
        assert times == sorted(times, reverse=True)  # newest capture first

        pages, cursor = [], None
        while True:
            page = await catalog.page(PhotoFilter(owner="SMITH-ANNA"), limit=7, cursor=cursor)
            pages.append(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        walked = [photo["id"] for items in pages for photo in items]
        assert [len(items) for items in pages] == [7, 7, 7, 4]
        assert walked == [p["id"] for p in everything.items if p["owner"] == "SMITH-ANNA"]

        start, end = dt.date(2012, 12, 20), dt.date(2012, 12, 29)
        ranged = await catalog.page(PhotoFilter(date_from=start, date_to=end), limit=200)
        days = sorted(dt.datetime.fromtimestamp(p["datetime"], UTC).date() for p in ranged.items)
        assert days == [start + dt.timedelta(days=d) for d in range(10)]

        model = await catalog.page(PhotoFilter(model="Model 1", owner="JAEGER-NICHOLAS"), limit=200)
        assert sorted(p["id"] for p in model.items) == sorted(
            p["id"] for p in everything.items if p["model"] == "Model 1" and p["owner"] == "JAEGER-NICHOLAS"
        )
        assert len(model.items) == 8

        failed = await catalog.page(PhotoFilter(status="failed"), limit=200)
        assert sorted(int(p["id"].split("_")[-1][:3]) for p in failed.items) == [3, 13, 23, 33, 43]
        assert {p["error_kind"] for p in failed.items} == {"corrupt_image"}

        waiting = await catalog.page(PhotoFilter(status="Processed"), limit=200)
        assert sorted(p["name"] for p in waiting.items) == [f"img_{n:03d}.jpg" for n in range(0, 50, 7)]

        search = await catalog.page(PhotoFilter(text="IMG_01"), limit=200)
        assert sorted(p["name"] for p in search.items) == [f"img_01{d}.jpg" for d in range(10)]
        assert (await catalog.page(PhotoFilter(text="img_0.*"), limit=200)).items == []  # regex chars are literal

        stats = await catalog.stats()
        assert stats == {
            "Detected": 0,
            "Processed": 8,
            "Archived": 0,
            "Collected": 42,
            "Failed": 0,
            "Duplicate": 0,
            "failed": 5,
        }
        report = await catalog.status_report(now=1_790_000_000.0 + 10)
        assert report.failures_by_kind == {"corrupt_image": 5}
        assert report.inbox_backlog == 8
        assert sum(report.last_hour.values()) == 4 * 42 + 2 * 8
        assert await catalog.facet("owner") == ["JAEGER-NICHOLAS", "SMITH-ANNA"]
        assert await catalog.facet("model") == ["Model 0", "Model 1", "Model 2"]

    run_catalog(mongo_url, recorder.db.name, check)


def test_a_forged_cursor_or_bad_filter_is_refused() -> None:
    from dp3_portal.catalog import decode_cursor, encode_cursor

    assert decode_cursor(encode_cursor("001355517208|A_1_x.jpg")) == "001355517208|A_1_x.jpg"
    for bad in ("!!!", encode_cursor("../../etc/passwd"), encode_cursor("")):
        with pytest.raises(BadQuery):
            decode_cursor(bad)
    with pytest.raises(BadQuery):
        PhotoFilter(status="Nope")
    with pytest.raises(BadQuery):
        PhotoFilter(date_from=dt.date(2020, 1, 2), date_to=dt.date(2020, 1, 1))


def test_the_embedded_server_answers_the_subset_the_catalog_relies_on(db: Database[dict[str, Any]]) -> None:
    """If an upgrade of the server changes one of these answers, the catalog's assumptions break."""
    db.t.insert_many([{"_id": i, "k": f"{i:03d}", "b": i % 2 == 0, "s": "x" if i < 5 else "y"} for i in range(10)])
    assert [d["_id"] for d in db.t.find({"k": {"$gte": "002", "$lt": "005"}}).sort("k", -1)] == [4, 3, 2]
    assert sorted(d["_id"] for d in db.t.find({"b": True})) == [0, 2, 4, 6, 8]
    assert sorted(d["_id"] for d in db.t.find({"_id": {"$in": [1, 3, 99]}})) == [1, 3]
    assert sorted(d["_id"] for d in db.t.find({"k": {"$regex": "00[12]"}})) == [1, 2]
    assert list(db.t.aggregate([{"$match": {"s": "x"}}, {"$count": "n"}])) == [{"n": 5}]
    # MongoDB answers [] for no match, nx-27017 [{"n": 0}]: Catalog.count reads both as 0.
    assert list(db.t.aggregate([{"$match": {"s": "nothing"}}, {"$count": "n"}])) in ([], [{"n": 0}])
    grouped = {
        r["_id"]: r["n"] for r in db.t.aggregate([{"$match": {"b": True}}, {"$group": {"_id": "$s", "n": {"$sum": 1}}}])
    }
    assert grouped == {"x": 3, "y": 2}
    db.t.create_index("k", unique=True)
    with pytest.raises(DuplicateKeyError) as raised:
        db.t.insert_one({"k": "001"})
    assert raised.value.code == 11000
    assert recorder_module.DUPLICATE_KEY == 11000

    # Previews first (join.py): a preview finds its original by sha256 equality, stale previews are a range
    # above "" (the other records hold ""), and a joined preview record is deleted only at the version read.
    db.p.insert_many(
        [{"_id": i, "sha": "ab" if i < 2 else "cd", "w": "" if i % 2 else f"{i:017.6f}"} for i in range(6)]
    )
    assert sorted(d["_id"] for d in db.p.find({"sha": "ab"})) == [0, 1]
    assert [d["_id"] for d in db.p.find({"w": {"$gt": "", "$lt": f"{4:017.6f}"}}).sort("w", 1)] == [0, 2]
    db.p.update_many({}, {"$set": {"version": 1}})
    deleted = db.p.bulk_write([DeleteOne({"_id": 0, "version": 0}), DeleteOne({"_id": 2, "version": 1})])
    assert deleted.deleted_count == 1 and sorted(d["_id"] for d in db.p.find({})) == [0, 1, 3, 4, 5]


def test_a_wall_clock_stepped_backwards_does_not_reorder_a_photos_history(
    db: Database[dict[str, Any]], recorder: Recorder
) -> None:
    # Each service stamps `at` with its own wall clock; here it went back an hour between stages.
    detected, processed, archived, collected = lifecycle("A-B", BASE, "x.jpg")
    hour = dt.timedelta(hours=1)
    stamps = [dt.datetime(2026, 12, 1, 12, tzinfo=UTC) - step * hour for step in range(4)]
    events = [
        event.model_copy(update={"at": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        for event, stamp in zip((detected, processed, archived, collected), stamps, strict=True)
    ]
    for event in events:  # one batch each, as they arrive one stage after another
        recorder.record([event])
    redrive = events[0].next(Status.DETECTED, service="scanner", attempt=1)  # stamped now, later than all
    recorder.record([redrive])
    photo = db[PHOTOS].find_one({"_id": detected.id})
    assert photo is not None and photo["status"] == "Collected"
    assert [item["status"] for item in photo["history"]] == [
        "Detected",
        "Detected",
        "Processed",
        "Archived",
        "Collected",
    ]
    assert [item["event_id"] for item in photo["history"]][:2] == [events[0].event_id, redrive.event_id]


def test_a_retry_keeps_failed_before_processed_when_the_clock_went_back(
    db: Database[dict[str, Any]], recorder: Recorder
) -> None:
    failed = lifecycle("A-B", BASE, "y.jpg", error=ErrorKind.CORRUPT_IMAGE)[1]
    assert failed.status is Status.FAILED
    recorder.record([failed])
    earlier = (dt.datetime.fromisoformat(failed.at.replace("Z", "+00:00")) - dt.timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    retried = failed.next(Status.PROCESSED, service="dispatcher", error=None).model_copy(update={"at": earlier})
    recorder.record([retried])
    photo = db[PHOTOS].find_one({"_id": failed.id})
    assert photo is not None
    assert [item["status"] for item in photo["history"]] == ["Failed", "Processed"]
