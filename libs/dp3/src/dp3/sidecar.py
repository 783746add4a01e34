"""The sidecar ``<name>.json`` as a format: what the archiver writes and every reader parses.

The archiver writes one beside each archived original (its merge rules are
in ``dp3_archiver.sidecar``); its own audits and collection read it back, and
``dp3 catalog rebuild`` reads the journal out of it. The format is here once,
so writer and readers cannot drift: the canonical bytes (:func:`dumps`), the
strict reader of the current format (:func:`loads`), the file records
(:func:`file_records`) and the journal in any shape a sidecar has taken
(:func:`journal_entries`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, cast

FORMAT = "dp3-sidecar/1"


class Sidecar(TypedDict, total=False):
    """A parsed sidecar (:func:`loads` guarantees ``format`` and ``sha256``; the rest as the archiver writes it)."""

    format: str
    id: str
    name: str
    date_folder: str
    sha256: str
    size: int | None
    datetime: int
    owner: str | None
    path: str
    path_bytes: str | None
    files: dict[str, dict[str, Any]]
    """role (original, thumbnail, web) -> :class:`FileRecord` fields."""
    duplicates: list[dict[str, Any]]
    missing_artifacts: bool
    meta: dict[str, Any] | None
    error: dict[str, Any] | None
    journal: list[dict[str, Any]]
    """The photo's journal entries, as JSON objects."""


JOURNAL_KEYS = ("journal", "events", "history")
"""Where a sidecar may keep its journal: ``journal`` today, the others in hand-made or older files."""


@dataclass(frozen=True)
class FileRecord:
    role: str  # original | thumbnail | web
    name: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size}


def dumps(sidecar: Mapping[str, Any]) -> bytes:
    """Canonical bytes: the same sidecar gives the same bytes in every store."""
    return (json.dumps(sidecar, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def loads(data: bytes | None) -> Sidecar | None:
    """The sidecar, or None if ``data`` is missing or not a sidecar (a torn or rotten file)."""
    if data is None:
        return None
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(value, dict) or value.get("format") != FORMAT or not isinstance(value.get("sha256"), str):
        return None
    return cast(Sidecar, value)


def file_records(sidecar: Mapping[str, Any]) -> dict[str, FileRecord]:
    records = {}
    for role, item in sidecar.get("files", {}).items():
        if isinstance(item, dict) and {"name", "sha256", "size"} <= item.keys():
            records[role] = FileRecord(role, str(item["name"]), str(item["sha256"]), int(item["size"]))
    return records


def journal_entries(document: Any) -> list[dict[str, Any]]:
    """The raw journal entries in one parsed sidecar, whatever its shape.

    An object with the entries under one of :data:`JOURNAL_KEYS`, a list of
    entries, or a single entry; anything else has none (never guessed at).
    """
    if isinstance(document, list):
        return [item for item in document if isinstance(item, dict)]
    if isinstance(document, dict):
        for key in JOURNAL_KEYS:
            value = document.get(key)
            if isinstance(value, list):
                return [item for item in value if isinstance(item, dict)]
        if "status" in document and "id" in document:
            return [document]
    return []
