"""Catalog queries, kept to the subset MongoDB and the embedded server both answer right.

The embedded MongoDB-wire server (``nx-27017`` 0.8.1 over neosqlite 1.17.2)
answers some queries silently wrong. This module uses only:

* equality on scalar fields that are never null (``status``, ``failed``,
  ``kind``, ``_id``, ``sha256``), and ``$in`` on ``_id``;
* ``$gt``/``$gte``/``$lt`` ranges on scalar strings and numbers
  (``sort_key``, ``k_*``, ``failed_recent``, ``preview_waiting``, ``minute``);
* string ``$regex`` (a plain string pattern, never a compiled ``re``) on
  ``name``, which is stored lower-cased so no options are needed;
* ``sort`` / ``limit``, ``find_one``, and aggregations made of ``$match``
  + ``$group`` (``$sum: 1``) or ``$match`` + ``$count``.

and never: ``$exists`` or ``None`` tests (nulls), comparisons against array
fields, compiled regexes, ``$project``, ``$addToSet``, ``$push`` of documents
(stored as JSON strings), ``$not``, ``count_documents`` (seconds at 100,000
photos), ``$ne: None`` (matches missing fields), ``replace_one(upsert=True)``
(ignores the filter's ``_id``: upserts use ``update_one`` + ``$set``). A ``$count`` that matches
nothing gives ``[]`` on MongoDB and ``[{"n": 0}]`` on nx-27017; both read as 0.
Tests in ``tests/integration/portal/test_catalog.py`` assert the answers, so a
server upgrade that changes one fails a test.

Speed by design, not by hoping for an index: each photo stores ``sort_key``
= fixed-width capture time + ``|`` + id, and for each filter field a key
``k_<field>`` = value + separator + ``sort_key``. A page is then always one
range on one string field, sorted by that same field, descending:

* newest-first is descending order of the key;
* the filter value is the key's prefix, the capture date range and the cursor
  (the last ``sort_key`` of the previous page) are bounds after the prefix,
  so page 50 costs what page 1 costs (no ``skip``), and a rare value costs
  no more than a common one (the server walks only the matching range);
* a second filter field is an equality checked within that range.

Measured at 100,000 photos in ``docs/portal.md``. A file-name search (a regex)
without another filter walks the whole ``sort_key`` range.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import time
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from dp3.events import PIPELINE_STATUSES, PREVIEW_ID_PREFIX, Status
from dp3_portal import camera_filter
from dp3_portal.fold import (
    FILTER_KEYS,
    KEY_END,
    KEY_SEPARATOR,
    PREVIEW_STAGE,
    SORT_WIDTH,
    Photo,
    time_prefix,
)
from dp3_portal.join import pick_original
from dp3_portal.store_schema import FACETS, JOURNAL, PHOTOS, THROUGHPUT

DEFAULT_LIMIT = 60
MAX_LIMIT = 200
FAILED = "failed"
"""The status filter value for every photo that failed, whatever its pipeline status."""

_SORT_KEY = re.compile(rf"^\d{{{SORT_WIDTH}}}\|.+$")


class BadQuery(ValueError):
    """A filter or cursor a client sent that cannot be used (answered 400).

    A ``ValueError``, not a :class:`dp3.errors.DP3Error`: callers catch it as a bad value.
    """


@dataclass(frozen=True)
class PhotoFilter:
    owner: str = ""
    model: str = ""
    status: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    text: str = ""

    def __post_init__(self) -> None:
        if self.status and self.status != FAILED and self.status not in {s.value for s in Status}:
            raise BadQuery(f"unknown status {self.status!r}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise BadQuery("the date range ends before it starts")

    def as_params(self) -> dict[str, str]:
        """The filter as query-string parameters (for the next-page link)."""
        params = {
            "owner": self.owner,
            camera_filter.PARAM: self.model,
            "status": self.status,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "q": self.text,
        }
        return {key: value for key, value in params.items() if value}


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        sort_key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadQuery("not a cursor from this portal") from None
    if not _SORT_KEY.match(sort_key):
        raise BadQuery("not a cursor from this portal")
    return sort_key


def _day_start(day: dt.date, zone: zoneinfo.ZoneInfo) -> int:
    return int(dt.datetime.combine(day, dt.time.min, tzinfo=zone).timestamp())


def photo_query(flt: PhotoFilter, zone: zoneinfo.ZoneInfo, after: str | None = None) -> tuple[dict[str, Any], str]:
    """Pure: the filter document for one gallery page and the field to sort it by (descending)."""
    equalities: list[tuple[str, str]] = []  # (field, value), most selective first
    if flt.owner:
        equalities.append(("owner", flt.owner))
    if flt.model:
        equalities.append((camera_filter.FIELD, flt.model))
    if flt.status == FAILED:
        equalities.append(("failed", "1"))
    elif flt.status:
        equalities.append(("status", flt.status))
    query: dict[str, Any] = {}
    if equalities:
        field_name, value = equalities[0]
        key, prefix = FILTER_KEYS[field_name], value + KEY_SEPARATOR
        for other, other_value in equalities[1:]:
            query[FILTER_KEYS[other]] = {
                "$gte": other_value + KEY_SEPARATOR,
                "$lt": other_value + KEY_SEPARATOR + KEY_END,
            }
    else:
        key, prefix = "sort_key", ""
    lower = prefix + (time_prefix(_day_start(flt.date_from, zone)) if flt.date_from else "")
    uppers = [prefix + KEY_END]
    if flt.date_to:
        uppers.append(prefix + time_prefix(_day_start(flt.date_to + dt.timedelta(days=1), zone)))
    if after:
        uppers.append(prefix + after)
    query[key] = {"$gte": lower, "$lt": min(uppers)}
    if flt.text:
        query["name"] = {"$regex": re.escape(flt.text.lower())}
    return query, key


@dataclass
class Page:
    items: list[Photo]
    next_cursor: str | None


@dataclass
class StatusReport:
    per_status: dict[str, int]
    failed: int
    last_hour: dict[str, int]
    failures_by_kind: dict[str, int]
    recent_failures: list[Photo] = field(default_factory=list)
    previews_waiting: int = 0
    """Photos known only by a preview or an upload under way: not photos of the pipeline, counted apart."""
    stale_previews: list[Photo] = field(default_factory=list)
    """Preview records older than DP3_PREVIEW_STALE_HOURS whose original never arrived, oldest first."""

    @property
    def inbox_backlog(self) -> int:
        """Photos whose original is still in the inbox: not yet collected, or failed before archiving."""
        waiting = (Status.DETECTED, Status.PROCESSED, Status.ARCHIVED, Status.FAILED)
        return sum(self.per_status.get(status.value, 0) for status in waiting)


class Catalog:
    """Read side of the catalog, on the app's event loop."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], zone: zoneinfo.ZoneInfo) -> None:
        self.db = db
        self.zone = zone

    async def page(self, flt: PhotoFilter, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page:
        limit = max(1, min(limit, MAX_LIMIT))
        after = decode_cursor(cursor) if cursor else None
        query, key = photo_query(flt, self.zone, after)
        found = await self.db[PHOTOS].find(query).sort(key, -1).limit(limit + 1).to_list()
        items = found[:limit]
        more = len(found) > limit
        return Page(items, encode_cursor(items[-1]["sort_key"]) if more and items else None)

    async def photo(self, photo_id: str) -> Photo | None:
        return await self.db[PHOTOS].find_one({"_id": photo_id})

    async def joined(self, photo_id: str) -> Photo | None:
        """The record a preview record ``preview:<sha256>`` was joined into once its original arrived."""
        sha256 = photo_id.removeprefix(PREVIEW_ID_PREFIX)
        if sha256 == photo_id or not sha256:
            return None
        found = await self.db[PHOTOS].find({"sha256": sha256}).to_list()
        original = pick_original(found)
        return next((doc for doc in found if doc["_id"] == original), None)

    async def journal_entries(self, photo: Photo, status: Status) -> list[dict[str, Any]]:
        """The photo's journaled events with ``status`` (by the id they carry, and its bytes where known)."""
        query: dict[str, Any] = {"id": photo.get("journal_id") or photo["_id"], "status": status.value}
        found = await self.db[JOURNAL].find(query).to_list()
        if photo.get("sha256"):
            found = [doc for doc in found if doc.get("sha256") in (None, photo["sha256"])]
        return sorted(found, key=lambda doc: float(doc.get("at_ts", 0)))

    async def count(self, collection: str, match: dict[str, Any]) -> int:
        result = await (await self.db[collection].aggregate([{"$match": match}, {"$count": "n"}])).to_list()
        return int(result[0]["n"]) if result else 0

    async def group(self, collection: str, match: dict[str, Any], by: str) -> dict[str, int]:
        pipeline = [{"$match": match}, {"$group": {"_id": f"${by}", "n": {"$sum": 1}}}]
        result = await (await self.db[collection].aggregate(pipeline)).to_list()
        return {str(row["_id"]): int(row["n"]) for row in result}

    async def stats(self) -> dict[str, int]:
        """Photos per pipeline status (one indexed count each: a ``$group`` over all photos scans them).

        A preview is not a photo of the pipeline: it is never counted here (see :meth:`previews_waiting`).
        """
        counts = {status.value: await self.count(PHOTOS, {"status": status.value}) for status in PIPELINE_STATUSES}
        counts[FAILED] = await self.count(PHOTOS, {"failed": True})
        return counts

    async def previews_waiting(self) -> int:
        """Photos known only from the field-upload side (a preview, an upload under way)."""
        return sum([await self.count(PHOTOS, {"status": status.value}) for status in sorted(PREVIEW_STAGE)])

    async def stale_previews(self, older_than: float, limit: int = 100) -> list[Photo]:
        """Preview records whose first preview-stage event is older than ``older_than`` (Unix time), oldest first."""
        query = {"preview_waiting": {"$gt": "", "$lt": f"{older_than:017.6f}"}}
        return await self.db[PHOTOS].find(query).sort("preview_waiting", 1).limit(limit).to_list()

    async def status_report(self, now: float | None = None, *, stale_after: float = 48 * 3600) -> StatusReport:
        now = time.time() if now is None else now
        counts = await self.stats()
        failed = counts.pop(FAILED)
        recent_query = {"failed_recent": {"$gt": ""}}
        recent = await self.db[PHOTOS].find(recent_query).sort("failed_recent", -1).limit(20).to_list()
        return StatusReport(
            per_status=counts,
            failed=failed,
            last_hour=await self.last_hour(now),
            failures_by_kind=await self.group(PHOTOS, {"failed": True}, "error_kind"),
            recent_failures=recent,
            previews_waiting=await self.previews_waiting(),
            stale_previews=await self.stale_previews(now - stale_after),
        )

    async def last_hour(self, now: float) -> dict[str, int]:
        """Events per status emitted in the last 60 minutes, from the recorder's per-minute counts."""
        found = await self.db[THROUGHPUT].find({"minute": {"$gt": int(now // 60) - 60}}).to_list()
        totals: dict[str, int] = {}
        for row in found:
            totals[str(row["status"])] = totals.get(str(row["status"]), 0) + int(row["n"])
        return totals

    async def facet(self, kind: str) -> list[str]:
        found = await self.db[FACETS].find({"kind": kind}).to_list()
        return sorted(str(doc["value"]) for doc in found)
