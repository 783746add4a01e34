"""Portal benchmark (issue 7, item 9): gallery and status page at 100,000 photos, and recording throughput.

Runs against the embedded MongoDB-wire server (nx-27017, data on disk in a
temporary folder) and the local RabbitMQ (a throwaway virtual host).

* gallery: server time of ``GET /`` (the HTML page of 60 thumbnails, filtered
  by photographer and capture date range), first page and 50 pages deep
  (reached by following ``next`` cursors), p50 and p95; target p95 <= 50 ms.
* status page: ``GET /status``, p50 and p95; target p95 <= 100 ms.
* recording: a backlog of 20,000 events waiting in ``portal.journal``; then
  the portal's recorder starts; events recorded per second; target >= 1,000/s.

Server time is measured in-process through the ASGI app (routing, auth,
queries, template rendering), without a network hop. Run from the
repository root::

    .venv/bin/python benchmarks/portal_bench.py [--photos 100000] [--backlog 20000] [--repeat 60]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fastapi.testclient import TestClient  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from dp3.broker import Publisher  # noqa: E402
from dp3.events import ErrorInfo, ErrorKind, JournalEntry, Status  # noqa: E402
from dp3.settings import load_settings  # noqa: E402
from dp3_portal import fold  # noqa: E402
from dp3_portal.app import create_app  # noqa: E402
from dp3_portal.consuming import RecorderThread  # noqa: E402
from dp3_portal.embedded import EmbeddedMongo  # noqa: E402
from dp3_portal.recorder import journal_document  # noqa: E402
from dp3_portal.settings import PortalSettings  # noqa: E402
from dp3_portal.store_schema import (  # noqa: E402
    FACETS,
    JOURNAL,
    PHOTOS,
    ensure_indexes,
)
from tests.rabbit import create_vhost, delete_vhost  # noqa: E402

OWNERS = [f"PHOTOGRAPHER-{n:02d}" for n in range(20)]
MODELS = [f"Camera {n}" for n in range(35)]
START = int(dt.datetime(2012, 1, 1, tzinfo=dt.UTC).timestamp())
SPAN = 5 * 365 * 86_400
PASSWORD = "benchmark password"  # noqa: S105 - a throwaway database
DATABASE = "dp3bench"


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def photo_events(n: int, rng: random.Random, at: float) -> list[JournalEntry]:
    owner = OWNERS[n % len(OWNERS)]
    capture = START + rng.randrange(SPAN)
    name = f"IMG_{n:07d}.JPG"
    photo_id = f"{owner}_{capture}_{name}"
    first = JournalEntry(
        id=photo_id,
        status=Status.DETECTED,
        datetime=capture,
        owner=owner,
        path=f"/inbox/{owner}/{name}",
        sha256=f"{n:064x}",
        size=4_000_000 + n,
        service="scanner",
        at=iso(at),
    )
    if n % 97 == 0:
        error = ErrorInfo(stage="render", kind=ErrorKind.CORRUPT_IMAGE, message="image file is truncated")
        second = first.next(Status.FAILED, service="dispatcher", error=error, at=iso(at + 1))
    else:
        meta = {"model": MODELS[n % len(MODELS)], "make": "Make", "width": 640, "height": 480, "iso": 200}
        second = first.next(Status.PROCESSED, service="dispatcher", meta=meta, at=iso(at + 1))
    day = dt.datetime.fromtimestamp(capture, dt.UTC).strftime("%Y-%m-%d")
    archived = second.next(Status.ARCHIVED, service="archiver", archives=[f"/a/{day}", f"/b/{day}"], at=iso(at + 2))
    return [first, second, archived, archived.next(Status.COLLECTED, service="archiver", at=iso(at + 3))]


def seed(db: Any, photos: int) -> None:
    """Photos and their journal, written directly (folded by the same code the recorder uses)."""
    rng = random.Random(42)
    now = time.time()
    ensure_indexes(db)
    batch_photos: list[dict[str, Any]] = []
    batch_journal: list[dict[str, Any]] = []
    for n in range(photos):
        events = photo_events(n, rng, now - 100 * 86_400 + n * 80)  # emitted over the last 100 days
        batch_photos.append(fold.fold(None, events))
        batch_journal += [journal_document(entry) for entry in events]
        if len(batch_photos) == 5000:
            db[PHOTOS].insert_many(batch_photos)
            db[JOURNAL].insert_many(batch_journal)
            batch_photos, batch_journal = [], []
    if batch_photos:
        db[PHOTOS].insert_many(batch_photos)
        db[JOURNAL].insert_many(batch_journal)
    db[FACETS].insert_many(
        [{"_id": f"owner:{o}", "kind": "owner", "value": o} for o in OWNERS]
        + [{"_id": f"model:{m}", "kind": "model", "value": m} for m in MODELS]
    )


def timed(action: Callable[[], Any], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, round(0.95 * len(samples)) - 1)]


def line(label: str, figures: tuple[float, float], target: float) -> None:
    p50, p95 = figures
    verdict = "ok" if p95 <= target else "MISSED"
    ratio = p95 / target
    print(f"{label:<46} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   target p95 <= {target:g} ms ({ratio:.2f}x) {verdict}")


def bench_pages(settings: PortalSettings, repeat: int) -> None:
    with TestClient(create_app(settings, record=False), follow_redirects=False) as client:
        client.get("/login")
        token = client.cookies.get("dp3_csrf")
        assert (
            client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}).status_code
            == 303
        )
        params = {"owner": OWNERS[3], "date_from": "2012-06-01", "date_to": "2016-05-31"}

        def get(url: str, query: dict[str, str]) -> str:
            response = client.get(url, params=query)
            assert response.status_code == 200, response.text[:300]
            return str(response.text)

        first = get("/", params)
        assert first.count('class="tile') == 60, "the first page should hold 60 photos"
        cursor_params = dict(params)
        api_params = {**params, "limit": "60"}
        for _ in range(50):  # 50 pages deep, following the cursors
            body = client.get("/api/photos", params=api_params).json()
            api_params["cursor"] = body["next"]
        cursor_params["cursor"] = api_params["cursor"]
        deep = get("/", cursor_params)
        assert deep.count('class="tile') == 60, "page 51 should still hold 60 photos"
        line("gallery, photographer + date range, page 1", timed(lambda: get("/", params), repeat), 50)
        line("gallery, same filter, 50 pages deep", timed(lambda: get("/", cursor_params), repeat), 50)
        line(
            "API /api/photos, same filter, 50 pages deep",
            timed(lambda: client.get("/api/photos", params=api_params), repeat),
            50,
        )
        rare = {"status": "failed"}
        line("gallery, failed photos only (1 in 97)", timed(lambda: get("/", rare), repeat), 50)
        both = {"owner": OWNERS[3], "model": MODELS[3]}
        line("gallery, photographer + camera model", timed(lambda: get("/", both), repeat), 50)
        line("status page", timed(lambda: get("/status", {}), repeat), 100)


def bench_recording(settings: PortalSettings, db: Any, backlog: int) -> None:
    vhost, url = create_vhost("dp3-portal-bench")
    try:
        publisher = Publisher(url)
        rng = random.Random(7)
        events = [e for n in range(backlog // 4) for e in photo_events(10_000_000 + n, rng, time.time())]
        started = time.perf_counter()
        for entry in events:
            publisher.publish(entry)
        published = time.perf_counter() - started
        print(f"published a backlog of {len(events)} events in {published:.1f} s")
        before = db[JOURNAL].estimated_document_count()
        recorder = RecorderThread(
            url,
            str(settings.mongo_url),
            DATABASE,
            publisher=publisher,
            prefetch=settings.recorder_prefetch,
            batch=settings.recorder_batch,
        )
        started = time.perf_counter()
        recorder.start()
        while True:
            done = list(db[JOURNAL].aggregate([{"$match": {"at_ts": {"$gte": time.time() - 3600}}}, {"$count": "n"}]))
            recorded = done[0]["n"] if done else 0
            if recorded >= len(events):
                break
            if time.perf_counter() - started > 600:
                raise SystemExit(f"recorded only {recorded} of {len(events)} events in 600 s")
            time.sleep(0.2)
        took = time.perf_counter() - started
        recorder.stop()
        publisher.close()
        rate = len(events) / took
        verdict = "ok" if rate >= 1000 else "MISSED"
        print(
            f"{f'recording a {len(events):,}-event backlog':<46} {rate:7.0f} events/s ({took:.1f} s; "
            f"journal {before} -> {before + len(events)})   target >= 1000/s ({rate / 1000:.2f}x) {verdict}"
        )
        collected = sum(
            1 for _ in db[PHOTOS].find({"status": "Collected", "owner": OWNERS[0], "datetime": {"$gte": 0}}).limit(1)
        )
        assert collected == 1
    finally:
        delete_vhost(vhost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dp3-portal-bench-") as tmp:
        root = Path(tmp)
        server = EmbeddedMongo(root / "mongo", run_dir=root / "run")
        url = server.start()
        try:
            client: MongoClient[dict[str, Any]] = MongoClient(url)
            db = client[DATABASE]
            started = time.perf_counter()
            seed(db, args.photos)
            took = time.perf_counter() - started
            print(f"seeded {args.photos} photos and {4 * args.photos} journal entries in {took:.0f} s")
            settings = load_settings(
                PortalSettings,
                home=root / "home",
                mongo_url=url,
                mongo_database=DATABASE,
                admin_password=PASSWORD,
            )
            bench_pages(settings, args.repeat)
            bench_recording(settings, db, args.backlog)
            print(f"after the backlog ({args.backlog:,} more events in the last hour):")
            bench_pages(settings, args.repeat)
            client.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
