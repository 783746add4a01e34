"""Collection names and indexes: what the catalog stores, declared once.

Both the synchronous recorder and the asynchronous web app use these names.
Indexes serve the catalog's few query shapes (see :mod:`dp3_portal.catalog`):
an equality on one filter field plus a range and sort on ``sort_key``.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

JOURNAL = "journal"
PHOTOS = "photos"
USERS = "users"
FACETS = "facets"

JOURNAL_INDEXES = [
    IndexModel([("event_id", ASCENDING)], unique=True, name="event_id_unique"),
    IndexModel([("id", ASCENDING)], name="photo_id"),
    IndexModel([("at_ts", ASCENDING)], name="at_ts"),
]

PHOTO_INDEXES = [
    IndexModel([("sort_key", DESCENDING)], unique=True, name="sort_key"),
    IndexModel([("owner", ASCENDING), ("sort_key", DESCENDING)], name="owner_sort_key"),
    IndexModel([("model", ASCENDING), ("sort_key", DESCENDING)], name="model_sort_key"),
    IndexModel([("status", ASCENDING), ("sort_key", DESCENDING)], name="status_sort_key"),
    IndexModel([("failed", ASCENDING), ("updated_ts", DESCENDING)], name="failed_updated"),
]
