"""Pure: journal entries in, a photo's catalog document out. No I/O.

The catalog holds one document per photo with its current state. Events
arrive out of order and more than once, so folding is:

* idempotent: an event whose ``event_id`` is already in the photo's history
  changes nothing;
* forward-only: a status replaces the current one only if it ranks higher
  (``Detected < Processed | Failed | Duplicate < Archived < Collected``), or
  ranks the same and was emitted later (a retried photo goes Failed ->
  Processed). So a late ``Detected`` never hides a ``Collected``, and a
  re-drive ``Detected`` of a processed photo changes no state (it is only
  added to the history);
* history in pipeline order, then arrival order (``seq``), never by ``at``
  alone: ``at`` comes from each service's wall clock, and one stepped
  backwards (NTP, a VM resumed, another host) would show Archived before
  Processed;
* order-independent for facts: metadata, archives, size and hash are filled
  from whichever event carries them, so a ``Processed`` arriving after
  ``Collected`` still brings its EXIF.

The error of the event that set the current status is the photo's error: a
photo whose render failed keeps it on its ``Archived``/``Collected`` events,
and stays "failed" in the catalog. If a retry of such a collected photo fails
again, the newest failure's error replaces it (the status stays ``Collected``).

A record is one photo: one id *and* one sha256. An event whose id is held by
a record of other bytes (the scanner's index was lost, and a fresh one handed
the id out again; the archiver stored the second photo apart, under
``stored_name``) is folded into a record of its own,
:func:`record_key`, so two photos never become one record, nor does one show
the other's images.

Previews first (field uploads, docs/field-uploads.md): ``Previewed`` and
``Uploading`` are not pipeline stages. Folded into a photo they never change
its status: they bring its ``preview`` (the web-size JPEG a field device sent
ahead of the original) and ``upload`` (how much of the original has
arrived, the newest report wins). Alone, they make a *preview record*
(``preview:<sha256>``, status ``Previewed``, or ``Uploading`` while no
preview has come), which the gallery shows as "original on its way". When the
original's record exists, :func:`merge_preview` folds the preview record into
it, so a photo is one record whichever arrived first (:mod:`dp3_portal.join`
decides which record an event goes to). ``Uploading`` reports are not kept in
the history (one every 5 s per upload, they are in the journal); idempotency
for them is "an older or equal report changes nothing".

Every field a query filters on is a scalar that is never null (``""`` or
``False`` instead), because the embedded server answers null tests wrongly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from dp3 import filenames
from dp3.events import FIELD_UPLOAD_STATUSES, PIPELINE_RANK, JournalEntry, Status, disambiguated_id
from dp3_portal import camera_filter

PREVIEW_RANK = -1
"""Below every pipeline status: a preview record's rank, and a preview event's place in a history."""

PREVIEW_STAGE = FIELD_UPLOAD_STATUSES
"""Statuses of the field-upload side: facts about a photo on its way, never a pipeline state."""

RANK = {Status.PREVIEWED: PREVIEW_RANK, Status.UPLOADING: PREVIEW_RANK, **PIPELINE_RANK}

SORT_WIDTH = 12
"""Digits of the capture time in ``sort_key``: fixed width, so strings sort as numbers."""

Photo = dict[str, Any]


KEY_SEPARATOR = "\x1f"
"""Between a filter value and the sort key in the ``k_*`` fields; sorts below every printable character."""
KEY_END = "\x7f"
"""Above every sort key: the open upper end of a ``k_*`` range."""

FILTER_KEYS = {
    "owner": "k_owner",
    camera_filter.FIELD: camera_filter.PAGING_KEY,
    "status": "k_status",
    "failed": "k_failed",
}
"""Filter field -> the stored ``value + separator + sort_key`` string that pages by it."""


def time_prefix(seconds: int) -> str:
    """The ``sort_key`` prefix for a capture time; range bounds are built from it."""
    return f"{max(int(seconds), 0):0{SORT_WIDTH}d}"


def sort_key(capture_time: int, photo_id: str) -> str:
    """Capture time then id: unique, and newest-first is simply descending order."""
    return f"{time_prefix(capture_time)}|{photo_id}"


def at_seconds(at: str) -> float:
    """``at`` (UTC ISO 8601) as Unix seconds; 0 when unparseable (old journals)."""
    try:
        parsed = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def display_name(entry: JournalEntry) -> str:
    """The file name the gallery shows: readable even when the original bytes are not UTF-8."""
    return filenames.readable(PurePosixPath(entry.fs_path).name.encode("utf-8", "surrogateescape"))


def record_keys(photo_id: str, sha256: str) -> tuple[str, ...]:
    """The records a photo with this id and sha256 may be folded into, in the order they are tried."""
    return (photo_id, disambiguated_id(photo_id, sha256), disambiguated_id(photo_id, sha256, 64))


def record_key(photo_id: str, sha256: str | None, held: Mapping[str, str]) -> str:
    """The record an event of ``photo_id`` belongs to: its id, unless that record holds other bytes.

    ``held`` maps record ids to the sha256 their record holds (``""``: none known yet). Pure.
    """
    if not sha256:
        return photo_id
    keys = record_keys(photo_id, sha256)
    return next((key for key in keys if held.get(key, "") in ("", sha256)), keys[-1])


def history_item(entry: JournalEntry, seq: int = 0) -> dict[str, Any]:
    return {
        "event_id": entry.event_id,
        "seq": seq,
        "status": entry.status.value,
        "at": entry.at,
        "service": entry.service,
        "attempt": entry.attempt,
        "error": entry.error.model_dump(mode="json") if entry.error else None,
    }


def history_order(item: dict[str, Any]) -> tuple[int, int]:
    """Where a history item goes: its status's place in the pipeline, then when the portal received it."""
    return RANK[Status(item["status"])], int(item["seq"])


def with_history_item(history: list[dict[str, Any]], entry: JournalEntry) -> list[dict[str, Any]]:
    """``history`` with ``entry`` added after everything received before it (``seq``), in :func:`history_order`."""
    # Documents written before seq existed keep their stored (time) order as their arrival order.
    known = [item if "seq" in item else {**item, "seq": index} for index, item in enumerate(history)]
    seq = max((int(item["seq"]) for item in known), default=-1) + 1
    return sorted([*known, history_item(entry, seq)], key=history_order)


def with_keys(photo: Photo) -> Photo:
    """Derive the paging keys from the photo's fields (see :mod:`dp3_portal.catalog`)."""
    key = photo["sort_key"]
    photo["k_owner"] = f"{photo['owner']}{KEY_SEPARATOR}{key}"
    photo[camera_filter.PAGING_KEY] = f"{photo[camera_filter.FIELD]}{KEY_SEPARATOR}{key}"
    photo["k_status"] = f"{photo['status']}{KEY_SEPARATOR}{key}"
    photo["k_failed"] = f"{int(bool(photo['failed']))}{KEY_SEPARATOR}{key}"
    # Failed photos by when they failed, for the status page; "" sorts below every failed one.
    photo["failed_recent"] = f"{photo['updated_ts']:017.6f}" if photo["failed"] else ""
    # Preview records by when their first preview-stage event was emitted, for the stale list; "" for the rest.
    waiting = is_preview_record(photo)
    photo["preview_waiting"] = f"{at_seconds(str(photo.get('preview_since') or '')):017.6f}" if waiting else ""
    return photo


def new_photo(entry: JournalEntry) -> Photo:
    return with_keys(
        {
            "_id": entry.id,
            "id": entry.id,
            "version": 0,
            "status": entry.status.value,
            "rank": RANK[entry.status],
            "status_at": entry.at,
            "updated_ts": at_seconds(entry.at),
            "owner": entry.owner or "",
            "path": entry.path,
            "path_bytes": entry.path_bytes or "",
            "display_name": display_name(entry),
            "name": PurePosixPath(entry.path).name.lower(),
            "datetime": entry.datetime,
            "sort_key": sort_key(entry.datetime, entry.id),
            "sha256": entry.sha256 or "",
            "size": entry.size if entry.size is not None else 0,
            "archives": list(entry.archives),
            "meta": entry.meta,
            camera_filter.FIELD: camera_filter.camera_of(entry.meta),
            "error": entry.error.model_dump(mode="json") if entry.error else None,
            "failed": entry.error is not None or entry.status is Status.FAILED,
            "error_kind": entry.error.kind.value if entry.error else "",
            "duplicate_of": entry.duplicate_of or "",
            "stored_name": entry.stored_name or "",
            "preview": "",
            "upload": None,
            "preview_since": "",
            "history": [history_item(entry)],
        }
    )


def is_preview_record(photo: Photo) -> bool:
    """A record with no pipeline event yet: the gallery's "original on its way" tile."""
    return int(photo.get("rank", 0)) == PREVIEW_RANK


def preview_file(entry: JournalEntry) -> str:
    """The preview's path (under DP3_PREVIEWS) a ``Previewed`` event names; "" when it names none."""
    value = (entry.meta or {}).get("preview") if entry.status is Status.PREVIEWED else None
    return value if isinstance(value, str) else ""


def upload_report(entry: JournalEntry) -> dict[str, Any] | None:
    """An ``Uploading`` event's ``{offset, length, at, event_id}``; None when its meta is not a report."""
    meta = entry.meta or {}
    offset, length = meta.get("offset"), meta.get("length")
    if entry.status is not Status.UPLOADING or not isinstance(offset, int) or not isinstance(length, int):
        return None
    if isinstance(offset, bool) or isinstance(length, bool) or not 0 <= offset <= length:
        return None
    return {"offset": offset, "length": length, "at": entry.at, "event_id": entry.event_id}


def _report_order(report: dict[str, Any]) -> tuple[float, int, str]:
    return at_seconds(str(report["at"])), int(report["offset"]), str(report["event_id"])


def newer_upload(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    """The later of two upload reports (emitted later, then further along): a restarted upload goes back to 0."""
    if a is None or b is None:
        return a or b
    return max(a, b, key=_report_order)


def upload_share(photo: Photo) -> float | None:
    """How much of the original has arrived (0..1), from the newest ``Uploading`` report; None if none came."""
    report = photo.get("upload")
    if not report:
        return None
    length = int(report["length"])
    return 1.0 if length == 0 else min(int(report["offset"]) / length, 1.0)


def _preview_status(photo: Photo) -> str:
    return Status.PREVIEWED.value if photo.get("preview") else Status.UPLOADING.value


def new_preview_record(entry: JournalEntry) -> Photo:
    """A photo known only by its preview or its upload: the record ``entry.id`` (``preview:<sha256>``)."""
    photo = new_photo(entry.model_copy(update={"meta": None}))
    photo.update(
        rank=PREVIEW_RANK,
        preview=preview_file(entry),
        upload=upload_report(entry),
        preview_since=entry.at,
        history=[history_item(entry)] if entry.status is Status.PREVIEWED else [],
    )
    photo["status"] = _preview_status(photo)
    return with_keys(photo)


def apply_preview_stage(photo: Photo | None, entry: JournalEntry) -> Photo:
    """``photo`` after a ``Previewed`` or ``Uploading`` event: its preview and upload facts, never its status."""
    if photo is None:
        return new_preview_record(entry)
    updated = dict(photo)
    changed = False
    if entry.status is Status.PREVIEWED:
        if any(item["event_id"] == entry.event_id for item in photo["history"]):
            return photo
        updated["history"] = with_history_item(list(photo["history"]), entry)
        if preview_file(entry):
            updated["preview"] = preview_file(entry)
        changed = True
    report = upload_report(entry)
    if report is not None and newer_upload(photo.get("upload"), report) is report:
        updated["upload"] = report
        changed = True
    if not changed:
        return photo
    if not updated.get("preview_since") or at_seconds(entry.at) < at_seconds(str(updated["preview_since"])):
        updated["preview_since"] = entry.at
    if is_preview_record(updated):
        updated["status"] = _preview_status(updated)
        for name, value in (("owner", entry.owner), ("sha256", entry.sha256), ("size", entry.size)):
            if not updated.get(name) and value:
                updated[name] = value
    return with_keys(updated)


def merge_preview(photo: Photo, preview: Photo) -> Photo:
    """The pipeline record ``photo`` with the preview record ``preview`` folded in: one record per photo.

    The preview's history items join the photo's (after everything it had), its
    preview file fills in, and the newer upload report wins. Merging the same
    preview again changes nothing.
    """
    updated = dict(photo)
    known = {item["event_id"] for item in photo["history"]}
    history = [item if "seq" in item else {**item, "seq": index} for index, item in enumerate(photo["history"])]
    seq = max((int(item["seq"]) for item in history), default=-1) + 1
    for item in sorted(preview["history"], key=history_order):
        if item["event_id"] not in known:
            history.append({**item, "seq": seq})
            seq += 1
    updated["history"] = sorted(history, key=history_order)
    if not updated.get("preview") and preview.get("preview"):
        updated["preview"] = preview["preview"]
    updated["upload"] = newer_upload(photo.get("upload"), preview.get("upload"))
    if not updated.get("preview_since") or (
        preview.get("preview_since") and at_seconds(preview["preview_since"]) < at_seconds(updated["preview_since"])
    ):
        updated["preview_since"] = preview.get("preview_since") or ""
    return with_keys(updated)


def _wins(entry: JournalEntry, photo: Photo) -> bool:
    rank = RANK[entry.status]
    if rank != photo["rank"]:
        return rank > int(photo["rank"])
    return at_seconds(entry.at) > at_seconds(str(photo["status_at"]))


def apply(photo: Photo | None, entry: JournalEntry) -> Photo:
    """The photo after ``entry``; returns ``photo`` itself when the event is already in it."""
    if entry.status in PREVIEW_STAGE:
        return apply_preview_stage(photo, entry)
    if photo is not None and is_preview_record(photo):
        # The first pipeline event of a photo whose preview came first: the photo's facts are the
        # pipeline's (its inbox path, capture time, name), the preview record's are folded into them.
        return merge_preview(new_photo(entry.model_copy(update={"id": photo["_id"]})), photo)
    if photo is None:
        return new_photo(entry)
    if any(item["event_id"] == entry.event_id for item in photo["history"]):
        return photo
    updated = dict(photo)
    updated["history"] = with_history_item(list(photo["history"]), entry)
    if _wins(entry, photo):
        updated.update(
            status=entry.status.value,
            rank=RANK[entry.status],
            status_at=entry.at,
            updated_ts=at_seconds(entry.at),
            error=entry.error.model_dump(mode="json") if entry.error else None,
            failed=entry.error is not None or entry.status is Status.FAILED,
            error_kind=entry.error.kind.value if entry.error else "",
        )
        if entry.archives:
            updated["archives"] = list(entry.archives)
        if entry.duplicate_of:
            updated["duplicate_of"] = entry.duplicate_of
        if entry.stored_name:
            updated["stored_name"] = entry.stored_name
    if updated["failed"]:
        # A retry of a collected render failure that failed again: the status stays (the original is
        # collected, it ranks higher), but the error is the newest attempt's, so the page says why.
        # History is in pipeline order (see history_order), not time order: the newest error is the
        # latest retry's (attempt), then the latest in time.
        errors = [item for item in updated["history"] if item.get("error")]
        newest = max(errors, key=lambda item: (int(item.get("attempt") or 0), at_seconds(item["at"])), default=None)
        if newest is not None and at_seconds(newest["at"]) > at_seconds(str(updated["status_at"])):
            updated.update(error=newest["error"], error_kind=newest["error"]["kind"])
    # Facts fill in from any event that carries them.
    if not updated["archives"] and entry.archives:
        updated["archives"] = list(entry.archives)
    if entry.meta is not None and (updated["meta"] is None or entry.status is Status.PROCESSED):
        updated["meta"] = entry.meta
        updated[camera_filter.FIELD] = camera_filter.camera_of(entry.meta)
    if not updated.get("stored_name") and entry.stored_name:
        updated["stored_name"] = entry.stored_name
    if not updated["sha256"] and entry.sha256:
        updated["sha256"] = entry.sha256
    if not updated["size"] and entry.size:
        updated["size"] = entry.size
    if not updated["owner"] and entry.owner:
        updated["owner"] = entry.owner
    return with_keys(updated)


def fold(photo: Photo | None, entries: list[JournalEntry]) -> Photo:
    """Apply ``entries`` (any order, duplicates allowed) to ``photo``."""
    for entry in entries:
        photo = apply(photo, entry)
    assert photo is not None
    return photo


STATE_FIELDS = (
    "status",
    "error",
    "failed",
    "archives",
    "meta",
    "sha256",
    "size",
    "owner",
    "path",
    "path_bytes",
    "datetime",
    "stored_name",
)
"""The fields that make up a photo's state, as opposed to its history."""
