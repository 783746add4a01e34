"""Processed, permanent Failed and Duplicate events -> verified copies in every store -> Archived.

The handler is idempotent by construction: it looks at what the stores hold,
copies only what is missing or wrong, and re-emits the journaled ``Archived``
event when everything was already there, so a redelivered message writes
nothing twice.

Order inside one store: original, artifacts, then the sidecar. A sidecar is
therefore only ever beside complete, verified copies.

Staged artifacts are used only if ``staging/<id>/meta.json`` names the event's
sha256: artifacts rendered from other bytes are never archived with a photo.
Such a photo is not archived now (the event is acknowledged); the scanner's
re-drive brings its ``Detected`` back, the dispatcher renders it again (its
fast path checks the same sha256), and the next ``Processed`` archives it.

A store that refuses a photo's *name* (``ENAMETOOLONG``, ``EILSEQ``:
:class:`~dp3_archiver.stores.NameRefused`) is not down: the photo ends
``Failed`` / ``bad_name`` and the store serves every other photo.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dp3 import layout
from dp3.broker import Message
from dp3.errors import DP3Error, Retryable
from dp3.events import ErrorInfo, ErrorKind, JournalEntry, Status
from dp3.files import OutsideRoot, event_path_under, sha256_file
from dp3.log import PhotoLogger, photo_logger
from dp3_archiver import sidecar
from dp3_archiver.metrics import archiver_metrics
from dp3_archiver.naming import StoredFiles, candidate_names, capture_times_in_id, is_date_folder
from dp3_archiver.stores import (
    CopyOutcome,
    NameRefused,
    SourceMismatch,
    Store,
    StoreUnavailable,
    ensure_all_usable,
    write_temps,
)

log = logging.getLogger(__name__)

SERVICE = "archiver"
ARCHIVE_STAGE = "archive"
NOT_ARCHIVED = frozenset({ErrorKind.NO_OWNER, ErrorKind.UNREADABLE, ErrorKind.SOURCE_CHANGED, ErrorKind.BAD_NAME})
"""Failures whose file stays where it is: no owner or no name to file it under, or no bytes we could read."""


@dataclass
class Target:
    """Where a photo goes: its date folder and stored name, and what the stores already say about it."""

    date: str
    name: str
    claimed: dict[str, bool] = field(default_factory=dict)  # store label -> its sidecar claims name for our sha
    existing: sidecar.Sidecar | None = None  # the most complete sidecar already written for it

    @property
    def files(self) -> StoredFiles:
        return StoredFiles(self.name)


@dataclass(frozen=True)
class _Plan:
    """One file to have in every store: its record, where its bytes come from, where it may be replaced."""

    record: sidecar.FileRecord
    sources: list[Path]
    replace_if: dict[str, bool] | None  # None: ours everywhere (artifacts); else per store (the original's claim)


class ForeignArtifacts(DP3Error):
    """``staging/<id>/`` holds a render of other bytes than the event's: never archived with this photo."""


def staged_sha256(folder: Path) -> str | None:
    """The sha256 the staged ``meta.json`` was rendered from; None if there is none to read.

    A folder without a readable, well-formed meta.json reads as ``""``: it proves
    nothing, so it matches no photo.
    """
    try:
        if not folder.is_dir() or folder.is_symlink():
            return None
    except OSError:  # a name no file system takes (an id from before ids were kept short): nothing staged
        return None
    try:
        content = json.loads((folder / layout.META_NAME).read_bytes())
    except (OSError, ValueError):
        return ""
    sha = content.get("sha256") if isinstance(content, dict) else None
    return sha if isinstance(sha, str) else ""


class Archiver:
    """The ``archiver`` queue's handler."""

    def __init__(self, stores: Sequence[Store], *, inbox: Path, staging: Path, zone: zoneinfo.ZoneInfo) -> None:
        if not stores:
            raise ValueError("at least one store is needed")
        self.stores = tuple(stores)
        self.inbox = Path(os.path.abspath(inbox))
        self.staging = staging
        self.zone = zone
        self._pool = concurrent.futures.ThreadPoolExecutor(len(self.stores) * 8, thread_name_prefix="dp3-store")

    def handle(self, message: Message) -> list[JournalEntry]:
        return self.archive(message.entry)

    def archive(self, entry: JournalEntry) -> list[JournalEntry]:
        plog = photo_logger(log, entry.id)
        if not self._wanted(entry, plog):
            return []
        if entry.sha256 is None or entry.size is None:
            raise ValueError(f"{entry.status} event without sha256/size cannot be archived")
        try:
            return self._archive(entry, plog)
        except NameRefused as exc:
            plog.error("not archived: %s (path %s)", exc, entry.path)
            archiver_metrics().photo_faults.labels("bad_name").inc()
            return [self._bad_name(entry, str(exc))]
        except ForeignArtifacts as exc:
            plog.error("not archived now: %s; it is rendered again when its Detected is re-driven", exc)
            archiver_metrics().photo_faults.labels("foreign_artifacts").inc()
            return []

    def _archive(self, entry: JournalEntry, plog: PhotoLogger) -> list[JournalEntry]:
        assert entry.sha256 is not None
        ensure_all_usable(self.stores)
        target = self._existing_target(entry) if entry.status is Status.DUPLICATE else None
        if target is None:
            target = self._choose_target(entry)
        try:
            records, missing_artifacts = self._copy_everything(entry, target, plog)
        except SourceMismatch as exc:
            plog.error("the original is gone or changed and no store holds it: %s", exc)
            return [self._source_changed(entry)]
        document = sidecar.merged(
            target.existing,
            entry,
            name=target.name,
            date=target.date,
            files=records,
            missing_artifacts=missing_artifacts,
        )
        archived = entry.next(
            Status.ARCHIVED,
            service=SERVICE,
            archives=[str(store.root / target.date) for store in self.stores],
            stored_name=target.name,
        )
        journaled = sidecar.find_equivalent(document, archived)
        if journaled is not None:
            archived = journaled  # a replay: re-emit the same event
        else:
            document = sidecar.with_entry(document, archived)
            archiver_metrics().archived.inc()
        data = sidecar.dumps(document)
        writes = [
            self._pool.submit(store.write_document, store.root / target.date / target.files.sidecar, data)
            for store in self.stores
        ]
        concurrent.futures.wait(writes)
        for write in writes:
            write.result()
        plog.info("archived as %s in %s", target.name, ", ".join(archived.archives))
        return [archived]

    # --- what to do ---------------------------------------------------------------

    def _wanted(self, entry: JournalEntry, plog: PhotoLogger) -> bool:
        if entry.status is Status.FAILED:
            if entry.error is None or entry.error.kind in NOT_ARCHIVED or entry.error.stage == ARCHIVE_STAGE:
                plog.info("not archived: failure %s leaves the file in place", entry.error and entry.error.kind)
                return False
            return True
        if entry.status in (Status.PROCESSED, Status.DUPLICATE):
            return True
        plog.warning("ignoring a %s event on the archiver queue", entry.status)
        return False

    def _choose_target(self, entry: JournalEntry) -> Target:
        """The id in its date folder, unless a different photo holds it there: then a collision name."""
        assert entry.sha256 is not None
        date = layout.date_folder(entry.datetime, self.zone)
        for name in candidate_names(entry.id, entry.sha256):
            target = self._target_if_free(date, name, entry.sha256)
            if target is not None:
                if name != entry.id:
                    photo_logger(log, entry.id).warning("id collides with a different photo; stored as %s", name)
                return target
        raise RuntimeError(f"every candidate name for {entry.id} is taken by other bytes")

    def _target_if_free(self, date: str, name: str, sha256: str) -> Target | None:
        target = Target(date, name)
        files = target.files
        for store in self.stores:
            folder = store.root / date
            found = sidecar.loads(store.read_bytes(folder / files.sidecar))
            if found is not None:
                if found["sha256"] != sha256:
                    return None  # another photo's name
                target.claimed[store.label] = True
                if target.existing is None or len(found.get("journal", [])) > len(target.existing.get("journal", [])):
                    target.existing = found
                continue
            present = store.read_hash(folder / files.original)
            if present is not None and present[0] != sha256:
                return None  # another photo's copy, its sidecar not written yet
            target.claimed[store.label] = False
        return target

    def _existing_target(self, entry: JournalEntry) -> Target | None:
        """For a Duplicate: where the photo with the same bytes is already archived, if anywhere."""
        assert entry.sha256 is not None
        archived_id = entry.duplicate_of or entry.id
        names = candidate_names(archived_id, entry.sha256)
        dates = [Path(folder).name for folder in entry.archives]
        dates += [layout.date_folder(t, self.zone) for t in capture_times_in_id(archived_id)]
        for date in dict.fromkeys(d for d in dates if is_date_folder(d)):
            target = self._claimed_target(date, names, entry.sha256)
            if target is not None:
                return target
        for store in self.stores:  # slow path: the date is unknown
            with store.translated("listing date folders"):
                folders = sorted(child.name for child in store.root.iterdir() if is_date_folder(child.name))
            for date in folders:
                target = self._claimed_target(date, names, entry.sha256)
                if target is not None:
                    return target
        photo_logger(log, entry.id).warning("duplicate of %s, which no store holds: archived as itself", archived_id)
        return None

    def _claimed_target(self, date: str, names: Sequence[str], sha256: str) -> Target | None:
        for name in names:
            if any(
                (found := sidecar.loads(store.read_bytes(store.root / date / StoredFiles(name).sidecar))) is not None
                and found["sha256"] == sha256
                for store in self.stores
            ):
                return self._target_if_free(date, name, sha256)
        return None

    # --- copying -----------------------------------------------------------------

    def _copy_everything(
        self, entry: JournalEntry, target: Target, plog: PhotoLogger
    ) -> tuple[dict[str, sidecar.FileRecord], bool]:
        assert entry.sha256 is not None and entry.size is not None
        files = target.files
        original = sidecar.FileRecord("original", files.original, entry.sha256, entry.size)
        inbox_copy = self._inbox_path(entry)
        plans = [_Plan(original, [inbox_copy] if inbox_copy else [], target.claimed)]
        missing = False
        if entry.status is Status.PROCESSED:
            recorded = sidecar.file_records(target.existing or {})
            staged_dir: Path | None = layout.staging_dir(self.staging, entry.id)
            assert staged_dir is not None
            staged_for = staged_sha256(staged_dir)
            if staged_for is not None and staged_for != entry.sha256:
                if not {"thumbnail", "web"} <= recorded.keys():
                    raise ForeignArtifacts(
                        f"staging/{entry.id} holds artifacts of other bytes ({staged_for[:12]}...), "
                        f"not of {entry.sha256[:12]}..."
                    )
                staged_dir = None  # the stores' copies (of our bytes) are the sources
            for role, staged_name, stored_name in (
                ("thumbnail", layout.thumbnail_name(entry.id), files.thumbnail),
                ("web", layout.web_name(entry.id), files.web),
            ):
                try:
                    if staged_dir is None:
                        raise FileNotFoundError(staged_name)
                    staged = staged_dir / staged_name
                    sha, size = sha256_file(staged)
                    plans.append(_Plan(sidecar.FileRecord(role, stored_name, sha, size), [staged], None))
                except OSError:
                    if role in recorded:  # staging already cleaned up: the stores' copies are the sources
                        plans.append(_Plan(recorded[role], [], None))
                    else:
                        plog.warning("artifact %s is not in staging nor in any store; archived without it", role)
                        missing = True
        self._copy_all(plans, target)
        return {plan.record.role: plan.record for plan in plans}, missing

    def _copy_all(self, plans: Sequence[_Plan], target: Target) -> None:
        """Every file into every store, all at once (the stores are different devices, the files independent).

        A file no store has yet is read once from its source and written into
        every store in the same pass (:func:`~dp3_archiver.stores.write_temps`);
        then each store syncs, names and reads back its own copy in parallel.
        Anything else (a copy already there, a source that does not match) goes
        through :meth:`Store.ensure_copy` per store, where other stores' copies
        are fallback sources, each checked by its sha256 while it is copied.
        """
        jobs = []
        for plan in plans:
            copies = [store.root / target.date / plan.record.name for store in self.stores]
            teed = self._copy_once(plan, copies)
            for store, final in zip(self.stores, copies, strict=True):
                may_replace = True if plan.replace_if is None else plan.replace_if.get(store.label, False)
                sources = [*plan.sources, *(copy for copy in copies if copy != final)]
                future = teed.get(store.label)
                if future is None:
                    future = self._pool.submit(
                        store.ensure_copy, sources, final, plan.record.sha256, plan.record.size, may_replace=may_replace
                    )
                jobs.append((plan, final, future))
        concurrent.futures.wait([future for _, _, future in jobs])
        errors = [(plan, future.exception()) for plan, _, future in jobs if future.exception() is not None]
        for _, error in errors:
            if not isinstance(error, SourceMismatch):
                raise error  # type: ignore[misc]  # a store's trouble comes first: it may hold the only copy
        for plan, error in errors:
            if plan.record.role == "original":
                raise error  # type: ignore[misc]
        for plan, error in errors:
            raise Retryable(f"staged artifact {plan.record.role} changed while it was copied: {error}") from error
        for _, final, future in jobs:
            if future.result() is CopyOutcome.TAKEN:
                raise Retryable(f"{final} was just taken by a different photo; choosing another name")

    def _copy_once(self, plan: _Plan, copies: Sequence[Path]) -> dict[str, concurrent.futures.Future[CopyOutcome]]:
        """Stores with no file at the copy's name: one read of the plan's own source into all of them.

        The futures finish each store's copy (or carry its trouble); a store left
        out (it has a file there, or the source did not match) is for ensure_copy.
        """
        record = plan.record
        futures: dict[str, concurrent.futures.Future[CopyOutcome]] = {}
        fresh = []
        for store, final in zip(self.stores, copies, strict=True):
            if not plan.sources or not store.is_absent(final):
                continue
            try:
                store.ensure_usable()
                store.ensure_space(record.size)
            except StoreUnavailable as exc:
                futures[store.label] = _failed(exc)
                continue
            fresh.append((store, final))
        if not fresh:
            return futures
        tee = write_temps(plan.sources, fresh, record.sha256)
        for label, trouble in tee.failed.items():
            futures[label] = _failed(trouble)
        for staged in tee.staged:
            sources = [*plan.sources, *(copy for copy in copies if copy != staged.final)]
            futures[staged.store.label] = self._pool.submit(
                staged.store.finish_copy, staged, sources, record.sha256, record.size, present=False, source=tee.source
            )
        return futures

    def _inbox_path(self, entry: JournalEntry) -> Path | None:
        """The inbox original, if the event's path is a plain path inside the inbox (no symlinks)."""
        try:
            return event_path_under(self.inbox, entry.fs_path)
        except OutsideRoot as exc:
            photo_logger(log, entry.id).error("path %s not read: %s", entry.path, exc)
            return None

    def _bad_name(self, entry: JournalEntry, detail: str) -> JournalEntry:
        message = (
            f"a store cannot hold this file's name ({detail}); rename the file in the inbox "
            "(shorter, plain characters) and it is processed again under the new name"
        )
        return entry.next(
            Status.FAILED,
            service=SERVICE,
            error=ErrorInfo(stage=ARCHIVE_STAGE, kind=ErrorKind.BAD_NAME, message=message),
        )

    def _source_changed(self, entry: JournalEntry) -> JournalEntry:
        message = (
            "the file in the inbox changed or disappeared before it was archived; "
            "if it was replaced, the new version is processed as a new upload"
        )
        return entry.next(
            Status.FAILED,
            service=SERVICE,
            error=ErrorInfo(stage=ARCHIVE_STAGE, kind=ErrorKind.SOURCE_CHANGED, message=message),
        )


def _failed(exc: BaseException) -> concurrent.futures.Future[CopyOutcome]:
    """A store's trouble found before its copy began, in the shape of the copy jobs' results."""
    future: concurrent.futures.Future[CopyOutcome] = concurrent.futures.Future()
    future.set_exception(exc)
    return future
