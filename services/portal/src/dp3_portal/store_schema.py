"""Collection names and indexes: what the catalog stores, declared once.

Both the synchronous recorder and the asynchronous web app use these names.
Indexes serve the catalog's few query shapes (see :mod:`dp3_portal.catalog`):
a range and a sort on one single string field (``sort_key`` or a ``k_*`` key),
and equality counts per status.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from dp3_portal import camera_filter

JOURNAL = "journal"
PHOTOS = "photos"
USERS = "users"
SESSIONS = "sessions"
"""One document per live login session (``_id``: sha256 of its id), so a session can be ended server-side."""
FACETS = "facets"
THROUGHPUT = "throughput"
"""Events per (minute of ``at``, status): the status page's last hour without scanning the journal."""

SESSION_INDEXES = [IndexModel([("user", ASCENDING)], name="user")]

THROUGHPUT_INDEXES = [IndexModel([("minute", ASCENDING)], name="minute")]

JOURNAL_INDEXES = [
    IndexModel([("event_id", ASCENDING)], unique=True, name="event_id_unique"),
    IndexModel([("id", ASCENDING)], name="photo_id"),
    IndexModel([("at_ts", ASCENDING)], name="at_ts"),
]

PHOTO_INDEXES = [
    IndexModel([("sort_key", DESCENDING)], unique=True, name="sort_key"),
    IndexModel([("k_owner", DESCENDING)], name="k_owner"),
    IndexModel([(camera_filter.PAGING_KEY, DESCENDING)], name=camera_filter.PAGING_KEY),
    IndexModel([("k_status", DESCENDING)], name="k_status"),
    IndexModel([("k_failed", DESCENDING)], name="k_failed"),
    IndexModel([("failed_recent", DESCENDING)], name="failed_recent"),
    IndexModel([("status", ASCENDING)], name="status"),
    IndexModel([("failed", ASCENDING)], name="failed"),
    # A preview finds the original's record by sha256 (docs/field-uploads.md); stale previews by when they came.
    IndexModel([("sha256", ASCENDING)], name="sha256"),
    IndexModel([("preview_waiting", ASCENDING)], name="preview_waiting"),
]

INDEXES = {JOURNAL: JOURNAL_INDEXES, PHOTOS: PHOTO_INDEXES, THROUGHPUT: THROUGHPUT_INDEXES, SESSIONS: SESSION_INDEXES}
"""Which collection has which indexes: applied, the same, by the web app and by every recorder."""


def ensure_indexes(db: Database[dict[str, Any]]) -> None:
    """Create every index of :data:`INDEXES` (existing ones are kept: creating them again is a no-op)."""
    for collection, indexes in INDEXES.items():
        db[collection].create_indexes(indexes)


async def ensure_indexes_async(db: AsyncDatabase[dict[str, Any]]) -> None:
    """:func:`ensure_indexes` for the web app's asynchronous client."""
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)
