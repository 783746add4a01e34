"""Receipts: is a photo archived, with a verified copy in every store? (docs/field-uploads.md)

The intake keeps its own small index of the pipeline's outcomes per
``(owner, sha256)``, fed by a queue of its own (``intake.receipts``) on the
journal, because a receipt is asked by sha256 and the stores are laid out by
date and id. The index only says where to look: the answer is always a fresh
read-back of every configured store's copy, judged by the collector's rule
(:func:`dp3.copies.all_verified`), so "archived" here means exactly "the
archiver may delete the original".
"""

from __future__ import annotations

import contextlib
import logging
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from dp3 import layout, store_places
from dp3.broker import Message
from dp3.copies import CopyRead, all_verified, one_file, read_uncached, store_folder
from dp3.events import PIPELINE_RANK, JournalEntry, Status
from dp3.topology import QueueSpec

log = logging.getLogger(__name__)

COLLECTION = "intake_receipts"
QUEUE = QueueSpec(
    "intake.receipts",
    tuple(
        status.routing_key
        for status in (
            Status.DETECTED,
            Status.FAILED,
            Status.DUPLICATE,
            Status.ARCHIVED,
            Status.COLLECTED,
        )
    ),
    # Processed says nothing a receipt shows (Detected already reads "processing", and Archived
    # brings the stores): one event fewer per photo for the head node (issue 17).
    retired=(Status.PROCESSED.routing_key,),
)
"""The intake's own queue. Not in :data:`dp3.topology.ALL_QUEUES`: only the intake declares it,
so an installation without an intake never accumulates its messages."""


def record_key(owner: str, sha256: str) -> str:
    return f"{owner}/{sha256}"


def replaceable(new: Status) -> list[str]:
    """The indexed statuses an event with status ``new`` replaces: its own and every earlier one.

    Redeliveries arrive out of order; a later status is never replaced by an earlier one.
    """
    return [status.value for status, rank in PIPELINE_RANK.items() if rank <= PIPELINE_RANK[new]]


def index_document(entry: JournalEntry) -> dict[str, Any] | None:
    """The index's document for a pipeline event, or None when it cannot be indexed (no owner or sha256)."""
    if entry.owner is None or entry.sha256 is None or not entry.status.is_pipeline:
        return None
    return {
        "_id": record_key(entry.owner, entry.sha256),
        "owner": entry.owner,
        "sha256": entry.sha256,
        "id": entry.id,
        "status": entry.status.value,
        "archives": list(entry.archives),
        "stored_name": entry.stored_name,
        "datetime": entry.datetime,
        "duplicate_of": entry.duplicate_of,
    }


class ReceiptIndex:
    """The ``intake_receipts`` collection: written by the journal handler, read by receipts."""

    def __init__(self, collection: Collection[dict[str, Any]]) -> None:
        self.collection = collection

    def handle(self, message: Message) -> list[JournalEntry]:
        """Index one event in one round trip: an upsert whose filter matches only a status it supersedes."""
        document = index_document(message.entry)
        if document is not None:
            wanted = {"_id": document["_id"], "status": {"$in": replaceable(message.entry.status)}}
            # A refused insert: the record holds a later status (this event is a late redelivery), and stays.
            with contextlib.suppress(DuplicateKeyError):
                self.collection.replace_one(wanted, document, upsert=True)
        return []

    def find(self, owner: str, sha256: str) -> dict[str, Any] | None:
        return self.collection.find_one({"_id": record_key(owner, sha256)})

    def archived_copy(self, sha256: str) -> dict[str, Any] | None:
        """Any owner's archived record of these bytes (a Duplicate's bytes are stored under the first one)."""
        return self.collection.find_one({"sha256": sha256, "status": {"$in": ["Archived", "Collected"]}})


@dataclass
class Receipt:
    sha256: str
    archived: bool = False
    stores: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    state: str = "unknown"

    def as_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "archived": self.archived,
            "stores": self.stores,
            "verified": self.verified,
            "state": self.state,
        }


def verified_stores(document: dict[str, Any], stores: Sequence[Path], zone: zoneinfo.ZoneInfo) -> list[str]:
    """The stores whose copy of the indexed photo reads back now with its sha256 (marker present)."""
    name = document.get("stored_name") or document["id"]
    copies: dict[str, CopyRead | None] = {}
    for root in stores:
        if not (root / layout.STORE_MARKER).is_file():
            continue  # a store that is down proves nothing, as for the collector
        folder = store_folder(root, document.get("archives") or [], int(document["datetime"]), zone)
        try:
            copy = read_uncached(folder / name)
        except OSError:
            continue
        if copy.sha256 == document["sha256"]:
            copies[str(root)] = copy
    # Two stores whose copies are one file hold one copy, as the collector judges before deleting.
    while (pair := one_file(copies)) is not None:
        del copies[pair[1]]
    return list(copies)


def state_of(status: str | None, archived: bool, *, uploading: bool, previewed: bool) -> str:
    """The receipt's ``state``: where the photo stands, as a device may show it."""
    if archived:
        return "collected" if status == Status.COLLECTED.value else "archived"
    if status in (Status.DETECTED.value, Status.PROCESSED.value, Status.ARCHIVED.value, Status.COLLECTED.value):
        return "processing"
    if status == Status.DUPLICATE.value:
        return "processing"
    if status == Status.FAILED.value:
        return "failed"
    if uploading:
        return "uploading"
    return "preview" if previewed else "unknown"


def receipt(
    index: ReceiptIndex,
    owner: str,
    sha256: str,
    stores: Sequence[Path],
    zone: zoneinfo.ZoneInfo,
    *,
    uploading: bool,
    previewed: bool,
) -> Receipt:
    """The receipt for ``owner``'s photo with ``sha256``: a fresh read-back of every store."""
    labels = [str(root) for root in stores]
    document = index.find(owner, sha256)
    status = None if document is None else str(document["status"])
    verified: list[str] = []
    if document is not None and status in (Status.ARCHIVED.value, Status.COLLECTED.value, Status.DUPLICATE.value):
        copy = document if status != Status.DUPLICATE.value else index.archived_copy(sha256)
        if copy is not None:
            verified = verified_stores(copy, stores, zone)
    # Two configured stores that are one place never count as two copies (invariant 9).
    distinct = not store_places.check_distinct(list(stores))
    archived = distinct and all_verified(dict.fromkeys(verified, sha256), labels, sha256)
    return Receipt(
        sha256=sha256,
        archived=archived,
        stores=labels,
        verified=verified,
        state=state_of(status, archived, uploading=uploading, previewed=previewed),
    )
