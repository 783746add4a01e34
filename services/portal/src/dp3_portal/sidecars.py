"""Read the journal back from a store's ``<id>.json`` sidecars (for ``dp3 catalog rebuild``).

The archiver writes, beside each archived original, ``<store>/<YYYY-MM-DD>/<id>.json``
with the photo's metadata and journal. This reader accepts the shapes a
sidecar may take: an object with the entries under ``journal`` (or
``events`` / ``history``), a list of entries, or a single entry. Anything
else is reported and skipped, never guessed at.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dp3.events import JournalEntry
from dp3.files import TEMP_PREFIX

log = logging.getLogger(__name__)

JOURNAL_KEYS = ("journal", "events", "history")


def entries_in(document: Any) -> list[dict[str, Any]]:
    """Pure: the raw journal entries in one parsed sidecar."""
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


def sidecar_files(store: Path) -> Iterator[Path]:
    """``<store>/<date>/*.json``; temporary files and symlinks are skipped."""
    for folder in sorted(store.iterdir()):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for path in sorted(folder.glob("*.json")):
            if path.name.startswith(TEMP_PREFIX) or path.is_symlink() or not path.is_file():
                continue
            yield path


def read_store(store: Path) -> Iterator[tuple[Path, list[JournalEntry]]]:
    for path in sidecar_files(store):
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable sidecar %s: %s", path, exc)
            continue
        entries = []
        for raw in entries_in(document):
            try:
                entries.append(JournalEntry.model_validate(raw))
            except ValidationError as exc:
                log.warning("skipping an invalid entry in %s: %s", path, exc.errors()[0]["msg"])
        if entries:
            yield path, entries
        else:
            log.warning("no journal entries in sidecar %s", path)
