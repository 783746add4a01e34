"""Archived -> re-verify every store -> delete the inbox original (deletion_rule.py) -> Collected.

Runs on the ``archiver.collect`` queue, separately from archiving, so the
deletion always starts from every store's copy as it is now, never from what
an earlier message said. A copy this process read back from its device when
it wrote it, and that is provably the same file, unchanged since
(:mod:`dp3_archiver.proof`), is not read again; any other copy is read back
now. Likewise the inbox file is not hashed again if it is the file that was
hashed while it was copied into every store. ``Collected`` is published here
(confirmed) before the staging folder is removed and the message acknowledged.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

from dp3 import layout, store_places
from dp3.broker import EventPublisher, Message
from dp3.copies import CopyRead, one_file, store_folder
from dp3.errors import Retryable
from dp3.events import JournalEntry, Status
from dp3.files import TEMP_PREFIX
from dp3_archiver import sidecar
from dp3_archiver.archive import SERVICE, staged_sha256
from dp3_archiver.deletion_rule import Deletion, collect_original
from dp3_archiver.metrics import archiver_metrics
from dp3_archiver.naming import StoredFiles
from dp3_archiver.stores import Store, StoresNotDistinct, ensure_all_usable, ensure_distinct

log = logging.getLogger(__name__)


class CopiesNotVerified(Retryable):
    """A store lacks a verified copy at collection time: the original stays, the message comes back."""


class Collector:
    """The ``archiver.collect`` queue's handler."""

    def __init__(
        self,
        stores: Sequence[Store],
        *,
        inbox: Path,
        staging: Path,
        zone: zoneinfo.ZoneInfo,
        publisher: EventPublisher,
    ) -> None:
        self.stores = tuple(stores)
        self.inbox = Path(os.path.abspath(inbox))
        self.staging = staging
        self.zone = zone
        self.publisher = publisher

    def handle(self, message: Message) -> list[JournalEntry]:
        entry = message.entry
        if entry.status is not Status.ARCHIVED:
            return []
        if entry.sha256 is None:
            raise ValueError("Archived event without sha256")
        collected = self.collect(entry)
        if collected is not None:
            self.publisher.publish(collected)
            self._remove_staging(entry)
        return []

    def collect(self, entry: JournalEntry) -> JournalEntry | None:
        """Delete the original if the rule allows; the Collected event to publish, or None if it stays."""
        assert entry.sha256 is not None
        ensure_all_usable(self.stores, distinct=False)  # checked below, right before the deletion
        files = StoredFiles(entry.stored_name or entry.id)
        folders = {store.label: self._folder(store, entry) for store in self.stores}
        checked = {
            store.label: store.verified_copy(folders[store.label] / files.original, entry.sha256)
            for store in self.stores
        }
        copies = {label: copy for label, (copy, _source) in checked.items()}
        read_back = {label: None if found is None else found.sha256 for label, found in copies.items()}
        # The inbox file as this process hashed it while copying it, if that read proves it (one read, or none).
        sources = {source for _copy, source in checked.values() if source is not None}
        inbox_read = sources.pop() if len(sources) == 1 else None
        # Right before the deletion, after the read-backs: a bind mount made since the photo was
        # archived, or two "copies" that are one file, must never count as two verified copies.
        ensure_distinct(self.stores)
        _ensure_distinct_copies(copies, files.original)
        labels = [store.label for store in self.stores]
        outcome = collect_original(self.inbox, Path(entry.fs_path), entry.sha256, read_back, labels, hashed=inbox_read)
        if outcome is Deletion.NOT_VERIFIED:
            bad = [label for label in labels if read_back[label] != entry.sha256]
            for label in bad:
                archiver_metrics().store_errors.labels(label, "verify").inc()
            raise CopiesNotVerified(f"no verified copy in {', '.join(bad)}; the original stays in the inbox")
        log_ = logging.LoggerAdapter(log, {"photo_id": entry.id})
        if outcome in (Deletion.CHANGED, Deletion.REFUSED):
            log_.warning("inbox file %s left in place: %s", entry.path, outcome.value)
            return None
        if outcome is Deletion.DELETED:
            archiver_metrics().collected.inc()
            if entry.upload_finished_at is not None:
                archiver_metrics().drop_to_collected.observe(max(0.0, time.time() - entry.upload_finished_at))
            log_.info("collected %s", entry.path)
        collected = entry.next(Status.COLLECTED, service=SERVICE)
        return self._journal(collected, files, folders)

    def _folder(self, store: Store, entry: JournalEntry) -> Path:
        return store_folder(store.root, entry.archives, entry.datetime, self.zone)

    def _journal(self, collected: JournalEntry, files: StoredFiles, folders: dict[str, Path]) -> JournalEntry:
        """Add Collected to every store's sidecar; on a replay, re-emit the journaled event instead."""
        documents = {}
        for store in self.stores:
            path = folders[store.label] / files.sidecar
            documents[store.label] = (path, sidecar.loads(store.read_bytes(path)))
        result = next(
            (found for _, doc in documents.values() if (found := sidecar.find_equivalent(doc, collected)) is not None),
            collected,
        )
        for store in self.stores:
            path, document = documents[store.label]
            if document is not None:  # a missing sidecar is restored by fsck from another store
                store.write_document(path, sidecar.dumps(sidecar.with_entry(document, result)))
        return result

    def _remove_staging(self, entry: JournalEntry) -> None:
        """Remove ``staging/<id>/`` if it still holds this photo's renders, and never another photo's.

        Between this photo's Collected and this removal, the dispatcher may have
        committed the renders of other bytes under the same id (a scanner that
        lost its index hands the id out again). The folder is first claimed by
        a rename, which takes one whole commit (the dispatcher's commits are
        renames too), and is only then read and removed; a claimed folder that
        proves to be another photo's goes back under its name.
        """
        folder = layout.staging_dir(self.staging, entry.id)
        if folder.is_symlink():
            folder.unlink()
            return
        claimed = self.staging / f"{TEMP_PREFIX}{secrets.token_hex(6)}-collected"
        try:
            folder.rename(claimed)
        except FileNotFoundError:
            return
        except OSError as exc:  # a store-like failure of staging: the dispatcher's reap or the next run tidies up
            log.warning("staging folder kept: %s", exc, extra={"photo_id": entry.id})
            return
        assert entry.sha256 is not None
        if staging_is_of_other_bytes(staged_sha256(claimed), entry.sha256):
            try:
                claimed.rename(folder)
                return
            except OSError:  # a newer commit took the name meanwhile: it replaces this one, as a commit does
                pass
        shutil.rmtree(claimed, ignore_errors=True)


def staging_is_of_other_bytes(staged_for: str | None, sha256: str) -> bool:
    """True if a staging folder's meta.json proves it was rendered from bytes other than ``sha256``.

    A folder whose meta.json is missing or unreadable (``""``) proves nothing:
    no commit of the dispatcher's looks like that, and renders can always be
    made again, so it is removed with the photo it is named after.
    """
    return bool(staged_for) and staged_for != sha256


def _ensure_distinct_copies(copies: dict[str, CopyRead | None], name: str) -> None:
    """Raise StoresNotDistinct if two stores' copies are one file (same device and inode)."""
    pair = one_file(copies)
    if pair is not None:
        alias = store_places.Alias(*pair, "same_file", f"their copies of {name} are one file")
        log.error("%s", alias.line())
        raise StoresNotDistinct([alias])
