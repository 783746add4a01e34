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


def archived_handler(
    index: Index, forget_later: Callable[[str, str | None], None]
) -> Callable[[Message], Sequence[JournalEntry]]:
    """The consumer handler; emits nothing."""

    def handle(message: Message) -> Sequence[JournalEntry]:
        entry = message.entry
        if entry.status not in (Status.ARCHIVED, Status.COLLECTED):
            return []
        if entry.sha256 is None:
            log.warning(
                "%s event without sha256: cannot recognise re-uploads of it", entry.status, extra={"photo_id": entry.id}
            )
        else:
            index.remember_archived(
                entry.sha256, entry.id, list(entry.archives), collected=entry.status == Status.COLLECTED
            )
        if entry.status == Status.COLLECTED:
            forget_later(entry.fs_path, entry.sha256)
        return []

    return handle
