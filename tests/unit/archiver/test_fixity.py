"""Fixity audit on real directories: find and repair a flipped byte and a deleted copy."""

from __future__ import annotations

import os
import time
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from dp3 import layout
from dp3.files import TEMP_PREFIX
from dp3_archiver.archive import Archiver
from dp3_archiver.fixity import audit
from dp3_archiver.metrics import archiver_metrics
from dp3_archiver.naming import StoredFiles
from dp3_archiver.stores import Store
from tests.unit.archiver.site import DATE, Site, sha256_of


def archived_site(tmp_path: Path) -> tuple[Site, list[str]]:
    site = Site.create(tmp_path)
    archiver = Archiver(site.stores(), inbox=site.inbox, staging=site.staging, zone=zoneinfo.ZoneInfo("UTC"))
    ids = []
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        entry = site.photo(name)
        archiver.archive(entry)
        ids.append(entry.id)
    return site, ids


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_clean_stores_report_nothing(tmp_path: Path) -> None:
    site, _ids = archived_site(tmp_path)
    report = audit(site.stores())
    assert report.findings == [] and report.photos == 3
    assert report.copies_checked == 3 * 2 * 4  # 3 photos x 2 stores x (original, 2 artifacts, sidecar)


def test_finds_and_repairs_a_flipped_byte_and_a_deleted_copy(tmp_path: Path) -> None:
    site, (first, second, _third) = archived_site(tmp_path)
    flipped = site.store_roots[0] / DATE / first
    deleted = site.store_roots[1] / DATE / second
    good = sha256_of(site.store_roots[1] / DATE / first)
    flip_a_byte(flipped)
    deleted.unlink()
    report = audit(site.stores())
    assert {(f.path, f.problem, f.repaired) for f in report.findings} == {
        (flipped, "corrupt", True),
        (deleted, "missing", True),
    }
    assert sha256_of(flipped) == good
    assert sha256_of(deleted) == sha256_of(site.store_roots[0] / DATE / second)
    assert audit(site.stores()).findings == []


def test_report_only_changes_nothing(tmp_path: Path) -> None:
    site, (first, *_rest) = archived_site(tmp_path)
    thumb = site.store_roots[1] / DATE / StoredFiles(first).thumbnail
    flip_a_byte(thumb)
    before = thumb.read_bytes()
    report = audit(site.stores(), repair=False)
    assert [(f.path, f.problem, f.repaired) for f in report.findings] == [(thumb, "corrupt", False)]
    assert thumb.read_bytes() == before


def test_restores_a_missing_or_torn_sidecar(tmp_path: Path) -> None:
    site, (first, second, _third) = archived_site(tmp_path)
    missing = site.store_roots[0] / DATE / StoredFiles(first).sidecar
    torn = site.store_roots[1] / DATE / StoredFiles(second).sidecar
    missing.unlink()
    torn.write_bytes(torn.read_bytes()[:20])
    report = audit(site.stores())
    assert {(f.path, f.problem, f.repaired) for f in report.findings} == {
        (missing, "missing", True),
        (torn, "corrupt", True),
    }
    assert missing.read_bytes() == (site.store_roots[1] / DATE / StoredFiles(first).sidecar).read_bytes()


def test_nothing_to_repair_from_is_reported_unrepaired(tmp_path: Path) -> None:
    site, (first, *_rest) = archived_site(tmp_path)
    for root in site.store_roots:
        flip_a_byte(root / DATE / first)
    report = audit(site.stores())
    assert len(report.unrepaired) == 2


def test_a_down_store_is_reported_and_skipped(tmp_path: Path) -> None:
    site, _ids = archived_site(tmp_path)
    (site.store_roots[1] / layout.STORE_MARKER).unlink()
    report = audit(site.stores())
    assert [(f.store, f.problem) for f in report.findings] == [(str(site.store_roots[1]), "unavailable")]


def test_stale_temporary_files_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    site, (first, *_rest) = archived_site(tmp_path)
    folder = site.store_roots[0] / DATE
    stale, fresh = folder / f"{TEMP_PREFIX}aaaa-{first}", folder / f"{TEMP_PREFIX}bbbb-{first}"
    stale.write_bytes(b"torn")
    fresh.write_bytes(b"in flight")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    report = audit(site.stores())
    assert report.temp_files_removed == 1 and not stale.exists() and fresh.exists()
    assert report.findings == []


def test_a_store_added_later_is_filled_from_the_others(tmp_path: Path) -> None:
    site, ids = archived_site(tmp_path)
    new_root = tmp_path / "archive-c"
    new_root.mkdir()
    new = Store(new_root)
    new.init()
    report = audit([*site.stores(), new])
    assert len(report.findings) == 3 * 4 and not report.unrepaired  # 3 photos x (3 files + sidecar)
    for photo_id in ids:
        assert sha256_of(new_root / DATE / photo_id) == sha256_of(site.store_roots[0] / DATE / photo_id)
        assert (new_root / DATE / StoredFiles(photo_id).sidecar).is_file()


def test_a_photo_still_being_written_is_left_for_the_next_audit(tmp_path: Path) -> None:
    # The periodic audit runs beside the archiving: one store's sidecar is in place, the
    # other's not yet. That gap is a write in progress, not a fixity failure to "repair".
    site, (first, *_rest) = archived_site(tmp_path)
    in_progress = site.store_roots[1] / DATE / StoredFiles(first).sidecar
    in_progress.unlink()
    report = audit(site.stores(), settle_seconds=15)
    assert report.findings == [] and report.skipped_recent == 3 and report.photos == 0
    assert not in_progress.exists()
    # Once the writes are older than the settle time, the same gap is a finding, and repaired.
    later = audit(site.stores(), settle_seconds=15, now=time.time() + 16)
    assert [(f.path, f.problem, f.repaired) for f in later.findings] == [(in_progress, "missing", True)]
    assert later.skipped_recent == 0 and in_progress.is_file()


def test_a_failure_is_counted_before_its_repair_is_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever sees a repaired copy (an operator, a test polling the store) sees the failure counted already."""
    site, (first, *_rest) = archived_site(tmp_path)
    label = site.stores()[1].label
    flip_a_byte(site.store_roots[1] / DATE / first)
    counter = archiver_metrics().fixity_failures.labels(label)
    before = counter._value.get()
    counted_at_repair: list[float] = []
    ensure_copy = Store.ensure_copy

    def observed(self: Store, *args: Any, **kwargs: Any) -> Any:
        counted_at_repair.append(counter._value.get() - before)
        return ensure_copy(self, *args, **kwargs)

    monkeypatch.setattr(Store, "ensure_copy", observed)
    report = audit(site.stores())
    assert [f.repaired for f in report.findings] == [True]
    assert counted_at_repair == [1.0]
