"""The scanner loop with real files and a fake clock and publisher (no broker)."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from dp3.errors import BrokerUnavailable
from dp3.events import JournalEntry, Status
from dp3.settings import load_settings
from dp3_scanner import scanner as scanner_module
from dp3_scanner.index import Index
from dp3_scanner.scanner import Scanner
from dp3_scanner.settings import ScannerSettings

SMALL_JPEG = b"\xff\xd8\xff" + b"a" * 100 + b"\xff\xd9"  # SOI, some bytes, EOI: complete as far as the scanner can tell


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Published(list[JournalEntry]):
    def __init__(self) -> None:
        super().__init__()
        self.refuse = 0

    def __call__(self, entry: JournalEntry) -> None:
        if self.refuse:
            self.refuse -= 1
            raise BrokerUnavailable("down")
        self.append(entry)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    (tmp_path / "inbox" / "A-B").mkdir(parents=True)
    return tmp_path / "inbox"


def make(tmp_path: Path, inbox: Path, clock: Clock, published: Published, **overrides: object) -> Scanner:
    values: dict[str, object] = {"stable_seconds": 5, "rescan_seconds": 60, **overrides}
    settings = load_settings(ScannerSettings, home=tmp_path / "home", inbox=inbox, **values)
    return Scanner(settings, Index(settings.index_path), published, clock=clock, wall_clock=clock)


def detected_once(tmp_path: Path, inbox: Path, data: bytes = SMALL_JPEG) -> tuple[Scanner, Clock, Published, Path]:
    """A scanner that has just emitted the one Detected of ``A-B/x.jpg`` (holding ``data``)."""
    clock, published = Clock(), Published()
    scanner = make(tmp_path, inbox, clock, published)
    path = inbox / "A-B" / "x.jpg"
    path.write_bytes(data)
    scanner.step()
    clock.now += 5
    scanner.step()
    assert len(published) == 1
    return scanner, clock, published, path


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int]]:
    return {
        str(path): (path.lstat().st_size, path.lstat().st_mtime_ns, path.lstat().st_ino, path.lstat().st_ctime_ns)
        for path in root.rglob("*")
    }


def test_emitted_after_the_window_and_not_before(tmp_path: Path, inbox: Path, corpus: Path) -> None:
    clock, published = Clock(), Published()
    scanner = make(tmp_path, inbox, clock, published)
    (inbox / "A-B" / "x.jpg").write_bytes((corpus / "jpg/gps/DSCN0010.jpg").read_bytes())
    scanner.step()
    clock.now += 4.9
    scanner.step()
    assert published == []
    clock.now += 0.1
    scanner.step()
    assert [e.status for e in published] == [Status.DETECTED]
    assert published[0].upload_finished_at == clock.now


def test_a_rewrite_in_place_that_puts_the_mtime_back_is_detected_as_a_new_upload(tmp_path: Path, inbox: Path) -> None:
    """Same size, same inode, old mtime restored (``touch -r``, a sync client keeping times): the ctime moved."""
    scanner, clock, published, path = detected_once(tmp_path, inbox)
    info = path.stat()
    newer = b"\xff\xd8\xff" + b"b" * 100 + b"\xff\xd9"
    with path.open("r+b") as stream:
        stream.write(newer)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns, path.stat().st_ino) == (
        info.st_size,
        info.st_mtime_ns,
        info.st_ino,
    )
    clock.now += 61  # a rescan sees the change; the new version rests its own window
    scanner.step()
    clock.now += 5
    scanner.step()
    assert [e.status for e in published] == [Status.DETECTED, Status.DETECTED]
    assert published[1].sha256 == hashlib.sha256(newer).hexdigest() != published[0].sha256


def test_an_unchanged_file_is_not_read_again_and_a_chmod_costs_one_read_and_no_event(
    tmp_path: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner, clock, published, path = detected_once(tmp_path, inbox)
    reads: list[object] = []
    real_sha256 = scanner_module.sha256_stream  # type: ignore[attr-defined]

    def counting_sha256(stream: Any) -> tuple[str, int]:
        reads.append(stream)
        return real_sha256(stream)

    monkeypatch.setattr(scanner_module, "sha256_stream", counting_sha256)
    for _ in range(3):
        clock.now += 61
        scanner.step()
    assert reads == [] and len(published) == 1
    path.chmod(0o640)  # the ctime moves, the bytes do not
    for _ in range(3):
        clock.now += 61
        scanner.step()
    assert len(reads) == 1 and len(published) == 1


def test_a_restart_reloads_the_index_and_emits_nothing_new(tmp_path: Path, inbox: Path) -> None:
    _scanner, clock, published, _path = detected_once(tmp_path, inbox)
    restarted = make(tmp_path, inbox, clock, published)
    restarted.step()
    clock.now += 10
    restarted.step()
    assert len(published) == 1 and restarted.pending == {}


def test_a_refused_publish_is_retried_and_recorded_only_once_confirmed(tmp_path: Path, inbox: Path) -> None:
    clock, published = Clock(), Published()
    scanner = make(tmp_path, inbox, clock, published)
    path = inbox / "A-B" / "x.jpg"
    path.write_bytes(b"\xff\xd8\xff\xd9")  # SOI + EOI: a complete (tiny) JPEG
    published.refuse = 1
    scanner.step()
    clock.now += 5
    scanner.step()
    assert published == [] and scanner._index.get(str(path)) is None
    clock.now += 5
    scanner.step()
    assert len(published) == 1 and scanner._index.get(str(path)) is not None


def test_redrive_intervals_grow_and_are_capped(tmp_path: Path, inbox: Path) -> None:
    clock, published = Clock(), Published()
    scanner = make(tmp_path, inbox, clock, published, redrive_seconds=600, redrive_max_seconds=2000, rescan_seconds=1)
    (inbox / "A-B" / "x.jpg").write_bytes(b"\xff\xd8\xff\xd9")  # SOI + EOI: a complete (tiny) JPEG
    scanner.step()
    clock.now += 5
    scanner.step()
    times = [clock.now]
    for _ in range(4 * 3000):
        clock.now += 1
        scanner.step()
        if len(published) > len(times):
            times.append(clock.now)
        if len(times) == 5:
            break
    gaps = [round(b - a) for a, b in itertools.pairwise(times)]
    assert gaps == [600, 1200, 2000, 2000]
    assert [e.attempt for e in published] == [0, 1, 2, 3, 4]
    assert len({e.id for e in published}) == 1


def test_the_scanner_never_changes_the_inbox(tmp_path: Path, inbox: Path, corpus: Path) -> None:
    clock, published = Clock(), Published()
    scanner = make(tmp_path, inbox, clock, published, redrive_seconds=10)
    (inbox / "A-B" / "x.jpg").write_bytes((corpus / "jpg/gps/DSCN0010.jpg").read_bytes())
    (inbox / "root.jpg").write_bytes(b"\xff\xd8\xff\xd9")  # SOI + EOI: a complete (tiny) JPEG
    (inbox / "A-B" / "notes.txt").write_text("hi")
    (inbox / "A-B" / ".hidden").write_text("hi")
    (inbox / "A-B" / "link.jpg").symlink_to(tmp_path)
    before = snapshot(inbox)
    for _ in range(10):
        scanner.step()
        clock.now += 61
    assert {e.status for e in published} == {Status.DETECTED, Status.FAILED}
    assert snapshot(inbox) == before


def test_an_unreadable_file_fails_once_and_is_read_again_later(
    tmp_path: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, published = Clock(), Published()
    scanner = make(tmp_path, inbox, clock, published, redrive_seconds=10)
    path = inbox / "A-B" / "locked.jpg"
    path.write_bytes(b"\xff\xd8\xff\xd9")  # SOI + EOI: a complete (tiny) JPEG
    real_open = os.open
    locked = [True]

    def guarded_open(name: object, flags: int, *args: object) -> int:
        if locked[0] and str(name) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(name, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", guarded_open)
    scanner.step()
    clock.now += 5
    scanner.step()
    assert [(e.status, e.error.kind if e.error else None) for e in published] == [(Status.FAILED, "unreadable")]
    assert published[0].error is not None and "Permission denied" in published[0].error.message
    for _ in range(3):
        clock.now += 61
        scanner.step()
    assert len(published) == 1, "reported once"
    locked[0] = False  # permissions fixed: the next look (after a growing interval) reads it
    clock.now += 200
    scanner.step()
    assert [e.status for e in published] == [Status.FAILED, Status.DETECTED]


def test_an_upload_stalled_mid_file_beyond_the_window_is_detected_once_whole(
    tmp_path: Path, inbox: Path, corpus: Path
) -> None:
    clock, published = Clock(), Published()
    scanner = make(tmp_path, inbox, clock, published, incomplete_seconds=60)
    data = (corpus / "jpg/gps/DSCN0010.jpg").read_bytes()
    path = inbox / "A-B" / "x.jpg"
    path.write_bytes(data[: len(data) // 2])
    scanner.step()
    clock.now += 30  # six windows of silence: the half file rests, but it has no end marker
    scanner.step()
    assert published == []
    with path.open("ab") as stream:  # the link comes back
        stream.write(data[len(data) // 2 :])
    scanner.hint(str(path))  # what inotify says
    scanner.step()
    clock.now += 5
    scanner.step()
    assert [(e.status, e.sha256, e.size) for e in published] == [
        (Status.DETECTED, hashlib.sha256(data).hexdigest(), len(data))
    ]


def test_a_truly_truncated_file_is_detected_after_the_longer_wait(tmp_path: Path, inbox: Path, corpus: Path) -> None:
    clock, published = Clock(), Published()
    scanner = make(tmp_path, inbox, clock, published, incomplete_seconds=60)
    data = (corpus / "jpg/gps/DSCN0010.jpg").read_bytes()[:5000]
    (inbox / "A-B" / "cut.jpg").write_bytes(data)
    scanner.step()
    clock.now += 59.9
    scanner.step()
    assert published == []
    clock.now += 0.1
    scanner.step()
    assert [(e.status, e.sha256) for e in published] == [(Status.DETECTED, hashlib.sha256(data).hexdigest())]


def test_a_file_replaced_after_detection_is_detected_again_as_a_new_upload(tmp_path: Path, inbox: Path) -> None:
    scanner, clock, published, path = detected_once(tmp_path, inbox)
    newer = b"\xff\xd8\xff" + b"b" * 300 + b"\xff\xd9"
    path.write_bytes(newer)  # the photographer saved a better version under the same name
    clock.now += 61  # a rescan sees the change; the new version rests its own window
    scanner.step()
    clock.now += 5
    scanner.step()
    assert [e.status for e in published] == [Status.DETECTED, Status.DETECTED]
    assert published[1].sha256 == hashlib.sha256(newer).hexdigest() and published[1].size == len(newer)
    assert published[1].path == published[0].path and published[1].sha256 != published[0].sha256


def test_one_file_that_raises_is_counted_and_retried_later_and_the_others_go_on(
    tmp_path: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client import REGISTRY

    clock, published = Clock(), Published()
    scanner = make(tmp_path, inbox, clock, published, redrive_seconds=30)
    (inbox / "A-B" / "bad.jpg").write_bytes(SMALL_JPEG)
    (inbox / "A-B" / "good.jpg").write_bytes(SMALL_JPEG + b"x")
    from dp3_scanner.capture_time import capture_time as real

    bad_inode = (inbox / "A-B" / "bad.jpg").stat().st_ino

    def failing_for_bad(stream: Any, mtime_ns: int, zone: Any) -> Any:
        if os.fstat(stream.fileno()).st_ino == bad_inode:
            raise RuntimeError("a bug no one foresaw")
        return real(stream, mtime_ns, zone)

    monkeypatch.setattr(scanner_module, "capture_time", failing_for_bad)
    before = REGISTRY.get_sample_value("dp3_scanner_file_errors_total", {"reason": "RuntimeError"}) or 0.0
    scanner.step()
    clock.now += 5
    scanner.step()  # raises inside for one file only
    assert [Path(e.fs_path).name for e in published] == ["good.jpg"]
    assert (REGISTRY.get_sample_value("dp3_scanner_file_errors_total", {"reason": "RuntimeError"}) or 0) == before + 1
    clock.now += 10
    scanner.step()  # not again before its re-drive time
    assert (REGISTRY.get_sample_value("dp3_scanner_file_errors_total", {"reason": "RuntimeError"}) or 0) == before + 1
    monkeypatch.setattr(scanner_module, "capture_time", real)  # the bug is fixed
    clock.now += 60
    scanner.step()  # the re-drive looks at it again
    clock.now += 5
    scanner.step()
    assert {Path(e.fs_path).name for e in published} == {"bad.jpg", "good.jpg"}


def test_a_photo_emitted_under_an_over_long_id_before_the_upgrade_is_detected_again_under_a_short_one(
    tmp_path: Path, inbox: Path
) -> None:
    from dp3.events import ID_MAX

    name = "L" * 251 + ".JPG"
    path = inbox / "A-B" / name
    path.write_bytes(SMALL_JPEG + b"long")
    clock, published = Clock(), Published()
    scanner = make(tmp_path, inbox, clock, published)
    scanner.step()
    clock.now += 5
    scanner.step()
    [entry] = [e for e in published if e.fs_path == str(path)]
    # What the old rule emitted and the old index kept: the whole name in the id (over NAME_MAX derived).
    legacy = entry.model_copy(update={"id": f"A-B_{entry.datetime}_{name}"})
    record = scanner._index.get(str(path))
    assert record is not None
    record.event, record.next_redrive_at = legacy.to_json().decode(), clock.now
    scanner._index.put(record)
    scanner._index.close()
    published.clear()
    scanner = make(tmp_path, inbox, clock, published)  # the upgraded scanner starts on the old index
    clock.now += 60
    scanner.step()  # the re-drive finds the legacy id and looks at the file again
    clock.now += 5
    scanner.step()
    again = [e for e in published if e.fs_path == str(path)]
    assert [e.id for e in again] == [entry.id] and len(entry.id.encode()) <= ID_MAX
