"""Read the journal back from a store's ``<id>.json`` sidecars (for ``dp3 catalog rebuild``).

The archiver writes, beside each archived original, ``<store>/<YYYY-MM-DD>/<id>.json``
with the photo's metadata and journal. The journal is read by
:func:`dp3.sidecar.journal_entries`, which accepts every shape a sidecar may
take; a file with no entries is reported and skipped, never guessed at.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from dp3.events import JournalEntry
from dp3.files import TEMP_PREFIX
from dp3.sidecar import journal_entries

log = logging.getLogger(__name__)


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
        for raw in journal_entries(document):
            try:
                entries.append(JournalEntry.model_validate(raw))
            except ValidationError as exc:
                log.warning("skipping an invalid entry in %s: %s", path, exc.errors()[0]["msg"])
        if entries:
            yield path, entries
        else:
            log.warning("no journal entries in sidecar %s", path)
