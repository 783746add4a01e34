"""How often the archiver reads a photo's bytes, and that the cheap proof at collection never trusts a changed file.

The figures are bytes the process read with ``read`` system calls
(``/proc/self/io`` ``rchar``), counted around the real handlers on real files
(a real corpus photo, two real stores), with the Store objects shared by the
Archiver and the Collector as the archiver process wires them.
"""

from __future__ import annotations

import os
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from dp3 import copies
from dp3.events import JournalEntry
from dp3_archiver import proof
from dp3_archiver.archive import Archiver
from dp3_archiver.collector import Collector, CopiesNotVerified
from dp3_archiver.fixity import audit
from dp3_archiver.naming import StoredFiles
from dp3_archiver.stores import Store
from tests.unit.archiver.site import DATE, Site

UTC = zoneinfo.ZoneInfo("UTC")
SLACK = 256 * 1024  # sidecars, staged meta and artifacts, store markers, /proc/self/mountinfo
T = TypeVar("T")


class Published:
    def publish(self, entry: JournalEntry) -> None:
        pass


def bytes_read(action: Callable[[], T]) -> tuple[T, int]:
    def rchar() -> int:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
        raise AssertionError("no rchar in /proc/self/io")

    before = rchar()
    result = action()
    return result, rchar() - before


@pytest.fixture
def photo(corpus: Path) -> bytes:
    largest = max((p for p in (corpus / "jpg").rglob("*.jpg") if p.is_file()), key=lambda p: p.stat().st_size)
    return largest.read_bytes()


def rested(entry: JournalEntry) -> JournalEntry:
    """The photo as the archiver gets it: the scanner waited for it to rest (seconds; here two clock ticks)."""
    time.sleep(2 * copies.SETTLE_NS / 1e9)
    return entry


def handlers(site: Site, stores: list[Store] | None = None) -> tuple[Archiver, Collector]:
    stores = site.stores() if stores is None else stores
    archiver = Archiver(stores, inbox=site.inbox, staging=site.staging, zone=UTC)
    collector = Collector(stores, inbox=site.inbox, staging=site.staging, zone=UTC, publisher=Published())
    return archiver, collector


@dataclass
class Archived:
    """One photo just archived by an archiver process, and that process's collector."""

    site: Site
    collector: Collector
    entry: JournalEntry
    archived: JournalEntry

    @property
    def original(self) -> Path:
        return Path(self.entry.fs_path)


@pytest.fixture
def done(tmp_path: Path, photo: bytes) -> Archived:
    site = Site.create(tmp_path)
    archiver, collector = handlers(site)
    entry = rested(site.photo(data=photo))
    [archived] = archiver.archive(entry)
    return Archived(site, collector, entry, archived)


def copy_path(site: Site, store: int, entry: JournalEntry) -> Path:
    return site.store_roots[store] / DATE / StoredFiles(entry.id).original


def test_one_read_of_the_original_and_one_read_back_per_copy_and_nothing_at_collection(
    tmp_path: Path, photo: bytes
) -> None:
    site = Site.create(tmp_path)
    archiver, collector = handlers(site)
    entry = rested(site.photo(data=photo))
    [archived], archive_read = bytes_read(lambda: archiver.archive(entry))
    collected, collect_read = bytes_read(lambda: collector.collect(archived))
    assert collected is not None and not os.path.lexists(entry.fs_path)
    size = len(photo)
    # The inbox file once (hashed while written into both stores), each copy read back once from its store.
    assert 3 * size <= archive_read <= 3 * size + SLACK, archive_read / size
    # Verified moments before and provably unchanged since: nothing read again.
    assert collect_read <= SLACK, collect_read / size


def test_a_replica_that_did_not_verify_the_copies_reads_them_and_the_inbox_file_back(
    tmp_path: Path, photo: bytes
) -> None:
    site = Site.create(tmp_path)
    archiver, _ = handlers(site)
    _, other_replica = handlers(site, site.stores())  # its own Store objects: no proofs of its own
    entry = rested(site.photo(data=photo))
    [archived] = archiver.archive(entry)
    collected, collect_read = bytes_read(lambda: other_replica.collect(archived))
    assert collected is not None and not os.path.lexists(entry.fs_path)
    assert collect_read >= 3 * len(photo)


def rewrite_keeping_mtime(path: Path, data: bytes) -> None:
    """Write ``data`` into ``path`` in place and put its old mtime back: only the ctime says it changed."""
    info = path.stat()
    time.sleep(2 * copies.SETTLE_NS / 1e9)  # a later clock tick, as any real writer's would be
    with open(path, "r+b") as stream:
        stream.write(data)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert path.stat().st_mtime_ns == info.st_mtime_ns and path.stat().st_size == info.st_size


def test_a_copy_rewritten_in_place_after_its_read_back_is_read_again_and_blocks_the_deletion(
    done: Archived, photo: bytes
) -> None:
    rewrite_keeping_mtime(copy_path(done.site, 1, done.entry), bytes(256) + photo[256:])  # same size and mtime
    with pytest.raises(CopiesNotVerified):
        done.collector.collect(done.archived)
    assert done.original.read_bytes() == photo


def test_a_copy_touched_but_unchanged_is_read_again_and_the_photo_collected(done: Archived, photo: bytes) -> None:
    rewrite_keeping_mtime(copy_path(done.site, 0, done.entry), photo)
    collected, collect_read = bytes_read(lambda: done.collector.collect(done.archived))
    assert collected is not None and not os.path.lexists(done.original)
    assert len(photo) <= collect_read <= len(photo) + SLACK  # that copy alone was read back again


def test_an_inbox_file_rewritten_in_place_after_it_was_copied_is_hashed_again_and_kept(
    done: Archived, photo: bytes
) -> None:
    rewrite_keeping_mtime(done.original, photo[:-256] + bytes(256))
    assert done.collector.collect(done.archived) is None
    assert done.original.read_bytes() == photo[:-256] + bytes(256)


def test_an_inbox_file_replaced_by_the_same_bytes_is_hashed_again_then_collected(done: Archived, photo: bytes) -> None:
    replacement = done.original.with_name("replacement")
    replacement.write_bytes(photo)
    os.replace(replacement, done.original)  # another inode: the proof is of another file
    collected, collect_read = bytes_read(lambda: done.collector.collect(done.archived))
    assert collected is not None and not os.path.lexists(done.original)
    assert len(photo) <= collect_read <= len(photo) + SLACK


def test_a_copy_the_audit_finds_decayed_under_an_unchanged_identity_is_read_again_at_collection(
    tmp_path: Path, photo: bytes
) -> None:
    site = Site.create(tmp_path)
    stores = site.stores()
    archiver, collector = handlers(site, stores)
    entry = rested(site.photo(data=photo))
    [archived] = archiver.archive(entry)
    copy = copy_path(site, 0, entry)
    rewrite_keeping_mtime(copy, bytes(256) + photo[256:])
    # Decay below the file system leaves the identity as it was: stand in for it by a proof of the new identity.
    identity = copies.identity_of(os.stat(copy))
    rotten = copies.ReadProof(os.fspath(copy), archived.sha256 or "", identity, time.monotonic())
    stores[0].proofs.record(proof.CopyProof(rotten, None))
    report = audit(stores, repair=False)
    assert [finding.problem for finding in report.findings] == ["corrupt"]
    with pytest.raises(CopiesNotVerified):
        collector.collect(archived)
    assert Path(entry.fs_path).read_bytes() == photo


def test_a_proof_expires() -> None:
    identity = copies.Identity(1, 2, 3, 4, 5)
    read = copies.ReadProof("/x", "a" * 64, identity, read_at=100.0)
    assert proof.still_proven(read, "a" * 64, identity, 100.0 + proof.PROOF_SECONDS)
    assert not proof.still_proven(read, "a" * 64, identity, 100.0 + proof.PROOF_SECONDS + 1)
    assert not proof.still_proven(read, "b" * 64, identity, 101.0)
    assert not proof.still_proven(read, "a" * 64, identity._replace(ctime_ns=6), 101.0)
    assert not proof.still_proven(read, "a" * 64, None, 101.0)


def test_a_read_too_close_to_the_last_change_proves_nothing() -> None:
    changed = copies.Identity(1, 2, 3, 4, ctime_ns=10**18)
    assert not copies.settled(changed, 10**18 + copies.SETTLE_NS - 1)
    assert copies.settled(changed, 10**18 + copies.SETTLE_NS)
    assert copies.settle_wait(changed, 10**18) == copies.SETTLE_NS / 1e9
    assert copies.settle_wait(changed, 10**18 + copies.SETTLE_NS) == 0.0
    assert copies.settle_wait(changed, 10**18 - 2 * copies.SETTLE_NS) is None  # a clock far behind the file's


def test_the_ledger_keeps_the_latest_proofs_only() -> None:
    ledger = proof.Ledger(size=2)
    for name in ("a", "b", "c"):
        ledger.record(proof.CopyProof(copies.ReadProof(name, "0" * 64, copies.Identity(0, 0, 0, 0, 0), 0.0), None))
    assert ledger.get("a") is None and ledger.get("b") is not None and ledger.get("c") is not None
