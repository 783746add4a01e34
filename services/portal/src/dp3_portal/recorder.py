"""The journal recorder: events from ``portal.journal`` into ``journal`` and ``photos``.

Writes go in batches (one ``insert_many`` for the journal, one
``bulk_write`` for the photos), because one round trip per event cannot
reach 1,000 events/s on the embedded server. Idempotency does not depend on
the batch: the journal refuses a second copy of an ``event_id`` (unique
index), and folding skips an event already in the photo's history, so a
redelivered batch, or a crash between the two writes, changes nothing twice.

Photos are replaced under optimistic concurrency (``version``): if another
writer (a second portal, ``dp3 catalog rebuild``) changed a photo between
read and write, the batch's photos are read and folded again.

Which record each event goes to, previews joined to their original by
sha256, and the writes that follow are decided by :mod:`dp3_portal.join`
(pure); this module reads what it asks for and carries the writes out.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, ConnectionFailure

from dp3.broker import Message
from dp3.errors import Retryable
from dp3.events import JournalEntry
from dp3_portal import camera_filter, fold, join
from dp3_portal.store_schema import FACETS, JOURNAL, PHOTOS, THROUGHPUT

log = logging.getLogger(__name__)

EVENTS_RECORDED = Counter("dp3_portal_events_recorded_total", "Journal events recorded (first copy only)", ["status"])
DUPLICATE_EVENTS = Counter("dp3_portal_duplicate_events_total", "Events received again and ignored")

DUPLICATE_KEY = 11000
MAX_REFOLDS = 20

Document = dict[str, Any]


def journal_document(entry: JournalEntry) -> Document:
    document: Document = entry.model_dump(mode="json")
    document["_id"] = entry.event_id
    document["at_ts"] = fold.at_seconds(entry.at)
    return document


class Recorder:
    """Writes batches of journal entries; safe to call again with the same entries."""

    def __init__(self, db: Database[Document]) -> None:
        self.db = db
        self._known_facets: set[str] = set()

    def record(self, entries: Sequence[JournalEntry]) -> int:
        """Store and fold ``entries``; returns how many were new to the journal."""
        unique = list({entry.event_id: entry for entry in entries}.values())
        if not unique:
            return 0
        new = self._insert_journal(unique)
        self._fold_photos(unique)
        self._record_facets(unique)
        return new

    def _insert_journal(self, entries: list[JournalEntry]) -> int:
        duplicates: set[int] = set()
        try:
            self.db[JOURNAL].insert_many([journal_document(entry) for entry in entries], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            others = [error for error in errors if error.get("code") != DUPLICATE_KEY]
            if others:
                raise
            duplicates = {int(error["index"]) for error in errors}
        per_minute: collections.Counter[tuple[int, str]] = collections.Counter()
        for index, entry in enumerate(entries):
            if index in duplicates:
                DUPLICATE_EVENTS.inc()
            else:
                EVENTS_RECORDED.labels(entry.status.value).inc()
                per_minute[(int(fold.at_seconds(entry.at) // 60), entry.status.value)] += 1
        if per_minute:
            # A crash between the two writes under-counts this figure, never the journal.
            self.db[THROUGHPUT].bulk_write(
                [
                    UpdateOne(
                        {"_id": f"{minute}|{status}"},
                        {"$inc": {"n": count}, "$set": {"minute": minute, "status": status}},
                        upsert=True,
                    )
                    for (minute, status), count in per_minute.items()
                ],
                ordered=False,
            )
        return len(entries) - len(duplicates)

    def _routes(self, entries: list[JournalEntry]) -> join.Routes:
        """Each entry with the record it folds into, previews joined by sha256 (:mod:`dp3_portal.join`)."""
        held = {
            str(doc["_id"]): str(doc.get("sha256") or "")
            for doc in self.db[PHOTOS].find({"_id": {"$in": sorted(join.candidate_ids(entries))}})
        }
        originals: dict[str, str] = {}
        for sha256 in sorted(join.preview_shas(entries)):
            # Equality on a scalar string (never null): answered right by both servers (see catalog.py).
            found = join.pick_original(self.db[PHOTOS].find({"sha256": sha256}))
            if found is not None:
                originals[sha256] = found
        return join.route(entries, held, originals)

    def _fold_photos(self, entries: list[JournalEntry]) -> None:
        routes = self._routes(entries)
        by_photo: dict[str, list[JournalEntry]] = {}
        journal_ids: dict[str, str] = {}
        for key, entry in routes.keyed:
            if key != entry.id and entry.status not in fold.PREVIEW_STAGE:
                log.warning(
                    "id %s is held in the catalog by other bytes; recorded as %s",
                    entry.id,
                    key,
                    extra={"photo_id": key},
                )
                journal_ids[key] = entry.id
            by_photo.setdefault(key, []).append(entry)
        for photo_id, preview in routes.absorb.items():
            log.info(
                "the original of %s has arrived: its preview joins its record", preview, extra={"photo_id": photo_id}
            )
        pending = set(by_photo)
        for _ in range(MAX_REFOLDS):
            wanted = pending | {routes.absorb[key] for key in pending if key in routes.absorb}
            current = {doc["_id"]: doc for doc in self.db[PHOTOS].find({"_id": {"$in": sorted(wanted)}})}
            writes = [self._write_op(change) for change in join.plan(by_photo, current, routes.absorb, journal_ids)]
            if not writes:
                return
            expected = len(writes)
            try:
                result = self.db[PHOTOS].bulk_write(writes, ordered=False)
                done = result.inserted_count + result.matched_count + result.deleted_count
            except BulkWriteError as exc:
                if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
                    raise
                done = -1
            if done == expected:
                return
            # Someone else wrote some of these photos meanwhile: fold again from
            # what is stored (events already folded are skipped).
            log.info("photos changed during a batch write; folding %d photos again", len(pending))
        raise RuntimeError(f"could not fold {len(pending)} photos after {MAX_REFOLDS} attempts")

    @staticmethod
    def _write_op(change: join.Put | join.Delete) -> InsertOne[Document] | ReplaceOne[Document] | DeleteOne:
        if isinstance(change, join.Delete):
            return DeleteOne({"_id": change.photo_id, "version": change.version})
        if change.version is None:
            return InsertOne(change.photo)
        return ReplaceOne({"_id": change.photo["_id"], "version": change.version}, change.photo)

    def _record_facets(self, entries: list[JournalEntry]) -> None:
        """Owners and camera models for the gallery's filter lists (tiny collection)."""
        values = set()
        for entry in entries:
            if entry.owner:
                values.add(("owner", entry.owner))
            camera = camera_filter.camera_of(entry.meta)
            if camera:
                values.add((camera_filter.FACET, camera))
        new = [(kind, value) for kind, value in values if f"{kind}:{value}" not in self._known_facets]
        if not new:
            return
        writes = [
            UpdateOne({"_id": f"{kind}:{value}"}, {"$set": {"kind": kind, "value": value}}, upsert=True)
            for kind, value in new
        ]
        self.db[FACETS].bulk_write(writes, ordered=False)
        self._known_facets.update(f"{kind}:{value}" for kind, value in new)


class BatchingHandler:
    """A :class:`dp3.broker.Consumer` handler that records messages in batches.

    Each message's handler call returns a Future; a writer thread collects up
    to ``batch`` messages (or what arrived within ``linger`` seconds), records
    them in one go and resolves their futures, after which the consumer acks
    them. A failed write fails every future of the batch: those messages are
    retried by the consumer's usual policy and nothing is acknowledged early.

    Why a quarter of a second: each batch costs the catalog the same few round
    trips whatever its size, and a photo's five events arrive spread over
    seconds. At 14 photos/s (five events each) a 50 ms batch gathers about
    3.5 events; at 250 ms the portal and its catalog server spent about 3.5 ms less CPU per
    photo, measured in two back-to-back pairs of split-core runs
    (docs/pipeline.md, "What each change saved"). The gallery shows an event
    that much later, which no one watching it can tell.
    """

    def __init__(self, recorder: Recorder, *, batch: int = 500, linger: float = 0.25) -> None:
        self.recorder = recorder
        self.batch = batch
        self.linger = linger
        self._queue: queue.Queue[tuple[JournalEntry, concurrent.futures.Future[Sequence[JournalEntry]]]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dp3-portal-recorder", daemon=True)
        self._thread.start()

    def __call__(self, message: Message) -> concurrent.futures.Future[Sequence[JournalEntry]]:
        future: concurrent.futures.Future[Sequence[JournalEntry]] = concurrent.futures.Future()
        self._queue.put((message.entry, future))
        return future

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            items = [first]
            deadline = time.monotonic() + self.linger
            while len(items) < self.batch:
                remaining = deadline - time.monotonic()
                try:
                    items.append(
                        self._queue.get(timeout=max(remaining, 0)) if remaining > 0 else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            self._write(items)

    def _write(self, items: list[tuple[JournalEntry, concurrent.futures.Future[Sequence[JournalEntry]]]]) -> None:
        error: BaseException | None = None
        try:
            self.recorder.record([entry for entry, _ in items])
        except ConnectionFailure as exc:
            # MongoDB is away for now: retry later, without limit.
            error = Retryable(f"MongoDB unavailable: {exc}")
        except Exception as exc:  # noqa: BLE001 - every message of the batch is retried by the consumer
            error = exc
        if error is not None and not isinstance(error, Retryable) and len(items) > 1:
            # One bad event must not sink the others: record each alone, so only it fails (and is retried).
            log.warning("a batch of %d events failed (%s); recording them one by one", len(items), error)
            for item in items:
                self._write([item])
            return
        if error is not None:
            if len(items) == 1:
                entry = items[0][0]
                log.error(
                    "could not record %s of %s: %s", entry.status, entry.path, error, extra={"photo_id": entry.id}
                )
            else:
                log.error("could not record a batch of %d events: %s", len(items), error)
            for _, future in items:
                future.set_exception(error)
            return
        for _, future in items:
            future.set_result(())
