"""Pure: which catalog record each event of a batch goes to, and the writes that fold them. No I/O.

One record per photo (docs/field-uploads.md). A photo may become known
from two sides: the field-upload side (``Previewed``, ``Uploading``: a
preview and the original's progress, sent by a field device before the
original reaches the inbox) and the pipeline (``Detected`` onwards, by the
scanner's id). The two are joined by sha256:

* a pipeline event goes to the record of its id (:func:`dp3_portal.fold.record_key`);
* a preview-stage event goes to the pipeline record that holds its sha256
  (one already stored, or one this batch creates), else to the preview
  record ``preview:<sha256>``;
* when a pipeline record and the preview record of its sha256 both exist,
  the preview record is folded into the pipeline record and deleted, in the
  same write (:func:`plan`).

So every order of arrival ends in the same one record: preview then
original, original then preview, or interleaved, and a replayed event
changes nothing. Two portals recording at once could each create their side
before seeing the other's; the next pipeline event of the photo (there is
always one: ``Processed``, ``Archived``, ``Collected`` follow ``Detected``)
finds the preview record and joins them then.

The recorder reads what :func:`candidate_ids` and :func:`preview_shas` name,
calls :func:`route` and :func:`plan`, and carries the writes out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dp3.events import PREVIEW_ID_PREFIX, JournalEntry, Status, preview_id
from dp3_portal.fold import PREVIEW_STAGE, Photo, fold, merge_preview, record_key, record_keys


def candidate_ids(entries: Iterable[JournalEntry]) -> set[str]:
    """The record ids whose stored sha256 (or existence) :func:`route` needs to know."""
    ids: set[str] = set()
    for entry in entries:
        if entry.status not in PREVIEW_STAGE:
            ids.add(entry.id)
            if entry.sha256:
                ids.update(record_keys(entry.id, entry.sha256))
        if entry.sha256:
            ids.add(preview_id(entry.sha256))
    return ids


def preview_shas(entries: Iterable[JournalEntry]) -> set[str]:
    """The sha256s whose pipeline record :func:`route` needs (those of preview-stage events)."""
    return {entry.sha256 for entry in entries if entry.status in PREVIEW_STAGE and entry.sha256}


def pick_original(records: Iterable[Mapping[str, Any]]) -> str | None:
    """Of the pipeline records holding one sha256, the one a preview joins: not a Duplicate, then by id."""
    found = [record for record in records if not str(record["_id"]).startswith(PREVIEW_ID_PREFIX)]
    if not found:
        return None
    return str(min(found, key=lambda r: (r.get("status") == Status.DUPLICATE.value, str(r["_id"])))["_id"])


@dataclass
class Routes:
    """Each event with the record it goes to, and which preview records join which pipeline records."""

    keyed: list[tuple[str, JournalEntry]] = field(default_factory=list)
    absorb: dict[str, str] = field(default_factory=dict)
    """pipeline record id -> the preview record folded into it (and deleted)."""


def route(entries: Sequence[JournalEntry], held: Mapping[str, str], originals: Mapping[str, str]) -> Routes:
    """Where each of ``entries`` goes.

    ``held``: record id -> the sha256 its record holds (``""``: none yet), for
    the ids :func:`candidate_ids` names that exist. ``originals``: sha256 ->
    the stored pipeline record holding it (:func:`pick_original`), for
    :func:`preview_shas`.
    """
    held = dict(held)
    originals = dict(originals)
    keys: list[str] = [""] * len(entries)
    for index, entry in enumerate(entries):
        if entry.status in PREVIEW_STAGE:
            continue
        key = record_key(entry.id, entry.sha256, held)
        if entry.sha256 and not held.get(key):
            held[key] = entry.sha256  # the first photo of the batch with this id claims it
        if entry.sha256:
            originals.setdefault(entry.sha256, key)
        keys[index] = key
    for index, entry in enumerate(entries):
        if entry.status in PREVIEW_STAGE:
            sha256 = entry.sha256 or ""
            keys[index] = originals.get(sha256) or (preview_id(sha256) if sha256 else entry.id)
    routes = Routes(keyed=list(zip(keys, entries, strict=True)))
    for entry in entries:
        if entry.sha256 and entry.sha256 in originals and preview_id(entry.sha256) in held:
            routes.absorb[originals[entry.sha256]] = preview_id(entry.sha256)
    return routes


@dataclass(frozen=True)
class Put:
    """Store ``photo``: a new record (``version`` None), or replace the one stored at ``version``."""

    photo: Photo
    version: int | None


@dataclass(frozen=True)
class Delete:
    """Delete the record ``photo_id`` if it is still at ``version`` (a preview record that was joined)."""

    photo_id: str
    version: int


def plan(
    by_photo: Mapping[str, Sequence[JournalEntry]],
    current: Mapping[str, Photo],
    absorb: Mapping[str, str],
    journal_ids: Mapping[str, str] | None = None,
) -> list[Put | Delete]:
    """The writes that fold ``by_photo`` (record id -> its events) into ``current`` (the stored records).

    ``journal_ids``: record id -> the id its events carry, for records kept apart from their id
    (:func:`dp3_portal.fold.record_key`). An empty list: nothing to write.
    """
    writes: list[Put | Delete] = []
    for photo_id, entries in by_photo.items():
        before = current.get(photo_id)
        after = fold(
            before, [entry if entry.id == photo_id else entry.model_copy(update={"id": photo_id}) for entry in entries]
        )
        joined = current.get(absorb.get(photo_id, ""))
        if joined is not None:
            after = merge_preview(after, joined)
        if before is None:
            if journal_ids and photo_id in journal_ids:
                after["journal_id"] = journal_ids[photo_id]  # the id its events carry in the journal
            writes.append(Put(after, None))
        elif after is not before:
            after["version"] = int(before["version"]) + 1
            writes.append(Put(after, int(before["version"])))
        if joined is not None:
            writes.append(Delete(str(joined["_id"]), int(joined["version"])))
    return writes
