"""Fixity audit: re-hash every copy in every store, report what is missing or corrupted, repair it.

The sidecars are the record: each names the photo's files and their sha256.
For every photo found in any store, every store's copy of every file is read
back from the storage and compared. A missing or corrupted copy is repaired
from a copy in another store that still verifies (``Store.ensure_copy``:
atomic, hashed while copied, read back). A missing or unreadable sidecar is
restored from another store's. The only files ever deleted are the archiver's
own temporary files (``.dp3-tmp-*``) left by a crash mid-write, once they are
older than an hour (a write in progress is never that old).

The periodic audit runs beside the archiving itself (this process and any
other archiver), so it leaves alone a photo whose sidecar in some store is
younger than ``settle_seconds``: its copies may still be on their way to the
other store, and "repairing" that gap would report a false fixity failure
and could write an older sidecar over the one being written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dp3.files import TEMP_PREFIX
from dp3_archiver import sidecar
from dp3_archiver.metrics import archiver_metrics
from dp3_archiver.naming import StoredFiles, is_date_folder, name_of_sidecar
from dp3_archiver.stores import SourceMismatch, Store, StoreUnavailable, check_distinctness

log = logging.getLogger(__name__)

STALE_TEMP_SECONDS = 3600.0
WRITE_SETTLE_SECONDS = 10.0  # far beyond the gap between one photo's writes to its stores


@dataclass(frozen=True)
class Finding:
    store: str
    path: Path
    problem: str  # missing | corrupt | unavailable
    repaired: bool
    detail: str = ""

    def line(self) -> str:
        state = "repaired" if self.repaired else "NOT REPAIRED"
        return f"{self.problem:<11} {state:<12} {self.path}  {self.detail}".rstrip()


@dataclass
class AuditReport:
    photos: int = 0
    copies_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    temp_files_removed: int = 0
    skipped_recent: int = 0

    @property
    def unrepaired(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.repaired]

    def summary(self) -> str:
        repaired = len(self.findings) - len(self.unrepaired)
        later = f" ({self.skipped_recent} photos being written, left for the next audit)" if self.skipped_recent else ""
        return (
            f"{self.photos} photos, {self.copies_checked} copies checked: {len(self.findings)} problems, "
            f"{repaired} repaired, {len(self.unrepaired)} not repaired, "
            f"{self.temp_files_removed} stale temporary files removed{later}"
        )


@dataclass
class _Photo:
    date: str
    name: str
    documents: dict[str, sidecar.Sidecar | None] = field(default_factory=dict)  # store label -> parsed sidecar
    raw: dict[str, bytes] = field(default_factory=dict)  # store label -> sidecar bytes that parse
    newest_sidecar: float = 0.0  # mtime of the youngest sidecar in any store


def audit(
    stores: Sequence[Store], *, repair: bool = True, now: float | None = None, settle_seconds: float = 0.0
) -> AuditReport:
    """Check (and, if ``repair``, fix) every photo recorded in any usable store.

    Photos with a sidecar written less than ``settle_seconds`` ago are counted, not checked.
    """
    report = AuditReport()
    aliased = check_distinctness(stores)
    if aliased:  # a "repair" would copy a store onto itself, and two copies would be one file
        for alias in aliased:
            report.findings.append(Finding(alias.second, Path(alias.second), "unavailable", False, alias.line()))
        log.error("fixity audit not run: %s", aliased[0].line())
        return report
    usable = []
    for store in stores:
        if store.is_marked():
            usable.append(store)
        else:
            report.findings.append(Finding(store.label, store.root, "unavailable", False, "store marker missing"))
    now = time.time() if now is None else now
    photos = _photos(usable, report, repair, now)
    settled = [photo for photo in photos if now - photo.newest_sidecar >= settle_seconds]
    report.skipped_recent = len(photos) - len(settled)
    photos = settled
    report.photos = len(photos)
    for photo in photos:
        try:
            _check_photo(photo, usable, report, repair)
        except StoreUnavailable as exc:
            report.findings.append(Finding(exc.store, Path(exc.store), "unavailable", False, str(exc)))
    log.info("fixity audit: %s", report.summary())
    return report


def _photos(stores: Sequence[Store], report: AuditReport, repair: bool, now: float) -> list[_Photo]:
    found: dict[tuple[str, str], _Photo] = {}
    for store in stores:
        try:
            with store.translated("listing"):
                dates = sorted(child.name for child in store.root.iterdir() if is_date_folder(child.name))
                for date in dates:
                    for child in sorted((store.root / date).iterdir()):
                        if child.name.startswith(TEMP_PREFIX):
                            if repair and _stale(child, now):
                                child.unlink(missing_ok=True)
                                report.temp_files_removed += 1
                            continue
                        name = name_of_sidecar(child.name)
                        if name is None:
                            continue
                        photo = found.setdefault((date, name), _Photo(date, name))
                        photo.newest_sidecar = max(photo.newest_sidecar, _mtime(child))
                        data = store.read_bytes(child)
                        document = sidecar.loads(data)
                        photo.documents[store.label] = document
                        if document is not None and data is not None:
                            photo.raw[store.label] = data
        except StoreUnavailable as exc:
            report.findings.append(Finding(store.label, store.root, "unavailable", False, str(exc)))
    return [found[key] for key in sorted(found)]


def _check_photo(photo: _Photo, stores: Sequence[Store], report: AuditReport, repair: bool) -> None:
    parsed = {label: doc for label, doc in photo.documents.items() if doc is not None}
    if not parsed:
        for label in photo.documents:
            path = Path(label) / photo.date / StoredFiles(photo.name).sidecar
            _count_failure(label)
            report.findings.append(Finding(label, path, "corrupt", False, "no store has a readable sidecar"))
        return
    hashes: dict[tuple[str, str], str | None] = {}
    for store in stores:
        for record in _all_records(parsed.values()):
            found = store.read_hash(store.root / photo.date / record.name)
            hashes[(store.label, record.name)] = None if found is None else found[0]
    best_label = max(
        parsed,
        key=lambda label: (
            sum(hashes.get((s.label, parsed[label]["name"])) == parsed[label]["sha256"] for s in stores),
            len(parsed[label].get("journal", [])),
        ),
    )
    records = sidecar.file_records(parsed[best_label])
    for record in records.values():
        paths = {store.label: store.root / photo.date / record.name for store in stores}
        good = [paths[s.label] for s in stores if hashes.get((s.label, record.name)) == record.sha256]
        for store in stores:
            report.copies_checked += 1
            got = hashes.get((store.label, record.name))
            if got == record.sha256:
                continue
            problem = "missing" if got is None else "corrupt"
            detail = f"expected sha256 {record.sha256[:12]}" + ("" if got is None else f", found {got[:12]}")
            _count_failure(store.label)
            repaired = False
            if repair and good:
                try:
                    store.ensure_copy(good, paths[store.label], record.sha256, record.size, may_replace=True)
                    repaired = True
                    detail += f"; restored from {good[0]}"
                except (SourceMismatch, StoreUnavailable) as exc:
                    detail += f"; repair failed: {exc}"
            report.findings.append(Finding(store.label, paths[store.label], problem, repaired, detail))
            log.warning("fixity: %s %s (%s)", problem, paths[store.label], detail, extra={"store": store.label})
    _check_sidecars(photo, stores, report, repair, photo.raw[best_label])


def _check_sidecars(photo: _Photo, stores: Sequence[Store], report: AuditReport, repair: bool, good: bytes) -> None:
    for store in stores:
        report.copies_checked += 1
        if photo.documents.get(store.label) is not None:
            continue
        path = store.root / photo.date / StoredFiles(photo.name).sidecar
        problem = "missing" if store.label not in photo.documents else "corrupt"
        _count_failure(store.label)
        repaired = False
        if repair:
            try:
                store.write_document(path, good)
                repaired = True
            except StoreUnavailable as exc:
                log.warning("fixity: could not restore %s: %s", path, exc)
        report.findings.append(Finding(store.label, path, problem, repaired, "sidecar"))


def _count_failure(store_label: str) -> None:
    """Counted when found, before any repair: whoever sees a repaired copy also sees its failure counted."""
    archiver_metrics().fixity_failures.labels(store_label).inc()


def _all_records(documents: Any) -> list[sidecar.FileRecord]:
    seen: dict[str, sidecar.FileRecord] = {}
    for document in documents:
        for record in sidecar.file_records(document).values():
            seen.setdefault(record.name, record)
    return list(seen.values())


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:  # replaced or removed since the listing: written just now
        return time.time()


def _stale(path: Path, now: float) -> bool:
    try:
        return now - path.lstat().st_mtime > STALE_TEMP_SECONDS
    except FileNotFoundError:
        return False
