"""The sidecar ``<name>.json``: a photo's metadata and journal, so one store alone can rebuild the catalog.

Pure functions: build and merge (the format itself, its bytes and its
readers, is :mod:`dp3.sidecar`). The same bytes are written to every store,
so the sidecars of one photo only differ while a write is in flight. The
journal holds the events the archiver saw for the photo
(``Processed``/``Failed``/``Duplicate``, which carry everything ``Detected``
said: path, owner, sha256, size, capture time) and the ``Archived`` and
``Collected`` events it emitted. An entry is added once: an event equivalent to
one already journaled (same status, path, duplicate_of, error kind) is a replay
and changes nothing, and re-emitting it reuses the journaled event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dp3.events import JournalEntry
from dp3.sidecar import FORMAT, FileRecord, Sidecar, dumps, file_records, loads

__all__ = [
    "FORMAT",
    "FileRecord",
    "Sidecar",
    "dumps",
    "file_records",
    "find_equivalent",
    "loads",
    "merged",
    "with_entry",
]


def _key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    error = entry.get("error") or {}
    archives = tuple(entry.get("archives") or ())
    return (entry.get("status"), entry.get("path"), entry.get("duplicate_of"), error.get("kind"), archives)


def find_equivalent(sidecar: Mapping[str, Any] | None, entry: JournalEntry) -> JournalEntry | None:
    """The journaled entry equivalent to ``entry`` (a replay of it), if any."""
    if not sidecar:
        return None
    wanted = _key(json.loads(entry.to_json()))
    for item in sidecar.get("journal", []):
        if _key(item) == wanted:
            return JournalEntry.model_validate(item)
    return None


def with_entry(sidecar: Mapping[str, Any], entry: JournalEntry) -> dict[str, Any]:
    """A copy of ``sidecar`` with ``entry`` journaled, unless an equivalent one already is."""
    result = dict(sidecar)
    journal = list(result.get("journal", []))
    item = json.loads(entry.to_json())
    if all(_key(existing) != _key(item) and existing.get("event_id") != item["event_id"] for existing in journal):
        journal.append(item)
    result["journal"] = journal
    return result


def merged(
    existing: Mapping[str, Any] | None,
    cause: JournalEntry,
    *,
    name: str,
    date: str,
    files: Mapping[str, FileRecord],
    missing_artifacts: bool,
) -> dict[str, Any]:
    """The sidecar after archiving ``cause`` (a Processed, Failed or Duplicate) under ``name``."""
    base: dict[str, Any] = dict(existing or {})
    recorded_files = dict(base.get("files", {}))
    recorded_files.update({role: record.to_dict() for role, record in files.items()})
    duplicates = list(base.get("duplicates", []))
    if cause.duplicate_of is not None or (existing and existing.get("path") not in (None, cause.path)):
        seen = {(item.get("id"), item.get("path")) for item in duplicates}
        if (cause.id, cause.path) not in seen and not (base.get("id") == cause.id and base.get("path") == cause.path):
            duplicates.append(
                {
                    "id": cause.id,
                    "path": cause.path,
                    "path_bytes": cause.path_bytes,
                    "owner": cause.owner,
                    "datetime": cause.datetime,
                }
            )
    # The first photo archived under a name keeps its identity; a duplicate only adds itself to the list.
    base.update(
        {
            "format": FORMAT,
            "id": base.get("id", cause.id),
            "name": name,
            "date_folder": date,
            "sha256": cause.sha256,
            "size": base.get("size", cause.size),
            "datetime": base.get("datetime", cause.datetime),
            "owner": base.get("owner", cause.owner),
            "path": base.get("path", cause.path),
            # The exact bytes of a path that is not plain UTF-8 (base64; see dp3.events), else None.
            "path_bytes": base.get("path_bytes", cause.path_bytes),
            "files": recorded_files,
            "duplicates": duplicates,
            "missing_artifacts": missing_artifacts and "thumbnail" not in recorded_files,
        }
    )
    if cause.meta is not None:
        base["meta"] = cause.meta
    base.setdefault("meta", None)
    if cause.status.value != "Duplicate":
        base["error"] = None if "thumbnail" in recorded_files else _error_dict(cause)
    base.setdefault("error", None)
    return with_entry(base, cause)


def _error_dict(entry: JournalEntry) -> dict[str, Any] | None:
    return None if entry.error is None else entry.error.model_dump(mode="json")
