"""What the scanner learns from the journal: archived checksums, collected paths.

Consumes ``scanner.archived`` (``photo.archived``, ``photo.collected``).
An Archived event teaches sha256 -> (id, archives), so a later upload of
the same bytes becomes a ``Duplicate``; a Collected event marks that the
original is gone, so its index row is dropped and the same bytes arriving
again, even under the same name, are a re-upload. Idempotent: replaying an
event changes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from dp3.broker import Message
from dp3.events import JournalEntry, Status
from dp3_scanner.index import Index

log = logging.getLogger(__name__)


class ArchiveLearner:
    """The handlers of ``scanner.archived``, one per status; they emit nothing."""

    def __init__(self, index: Index, forget_later: Callable[[str, str | None], None]) -> None:
        self._index = index
        self._forget_later = forget_later

    def archived(self, message: Message) -> Sequence[JournalEntry]:
        """Remember the archived sha256, so the same bytes uploaded again are a Duplicate."""
        self._remember(message.entry)
        return []

    def collected(self, message: Message) -> Sequence[JournalEntry]:
        """Remember it too (a Collected may come first), and forget the inbox path that is gone."""
        entry = message.entry
        self._remember(entry)
        self._forget_later(entry.fs_path, entry.sha256)
        return []

    def _remember(self, entry: JournalEntry) -> None:
        if entry.sha256 is None:
            log.warning(
                "%s event without sha256: cannot recognise re-uploads of it", entry.status, extra={"photo_id": entry.id}
            )
            return
        self._index.remember_archived(
            entry.sha256, entry.id, list(entry.archives), collected=entry.status == Status.COLLECTED
        )
