"""Finished uploads become exactly one event each; nothing else does (issue 4, items 1-5, 8, 10)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from dp3.events import ErrorKind, Status
from tests.integration.scanner.conftest import Journal
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration

SEED_NAME = "REEDER-PHILIP 1355825903 (2)2009.YAVNE.AREA.PROPOSED.INSERT.JPG"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def photo_bytes(corpus: Path, name: str = "jpg/gps/DSCN0010.jpg") -> bytes:
    return (corpus / name).read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_a_file_written_over_8_seconds_is_emitted_once_after_it_stops_growing(
    scanner, journal: Journal, inbox: Path, corpus: Path
) -> None:
    running = scanner(stable_seconds=5.0, rescan_seconds=1.0)  # the default window; rescans during the write
    data = photo_bytes(corpus, "jpg/mobile/jolla.jpg")
    target = inbox / "JAEGER-NICHOLAS" / "slow upload.jpg"
    target.parent.mkdir()
    chunks = 16
    step = len(data) // chunks + 1
    with target.open("wb") as stream:  # 0.5 Mbps-ish: a piece every half second for 8 seconds
        for start in range(0, len(data), step):
            stream.write(data[start : start + step])
            stream.flush()
            finished_writing = time.time()  # the last byte's moment, not the sleep's end
            time.sleep(0.5)
    assert journal.about(target) == [], "emitted while still being written"

    [event] = journal.wait(target, timeout=30)
    assert event.upload_finished_at is not None
    assert event.upload_finished_at >= finished_writing + 5.0 - 0.1  # rested the whole window (mtime granularity)
    assert event.sha256 == sha(data) and event.size == len(data)
    assert event.datetime == 1411315256  # jolla.jpg's DateTimeOriginal, in UTC
    # Once: let a rescan pass, then a marker file proves the loop moved on without re-emitting.
    running.wait_rescans(2)
    marker = target.parent / "marker.jpg"
    marker.write_bytes(data)
    journal.wait(marker, timeout=30)
    assert len(journal.about(target)) == 1


def test_200_files_dropped_at_once_are_each_emitted_exactly_once(
    scanner, journal: Journal, inbox: Path, corpus: Path
) -> None:
    running = scanner(stable_seconds=0.5, rescan_seconds=1.0)
    data = photo_bytes(corpus)
    paths = []
    for n in range(200):
        owner = inbox / f"OWNER-{n % 4}"
        owner.mkdir(exist_ok=True)
        path = owner / f"IMG_{n:04d}.JPG"
        path.write_bytes(data + n.to_bytes(4, "big"))  # distinct bytes per file
        paths.append(path)

    wait_for(lambda: len({e.path for e in journal.poll() if e.status == Status.DETECTED}) >= 200, 60, "200 Detected")
    running.wait_rescans(2)
    marker = inbox / "OWNER-0" / "marker.jpg"
    marker.write_bytes(data)
    journal.wait(marker)
    detected = [e for e in journal.poll() if e.status == Status.DETECTED and e.path != str(marker)]
    assert sorted(e.path for e in detected) == sorted(str(p) for p in paths)
    assert len({e.id for e in detected}) == 200
    for event in detected:
        path = Path(event.path)
        assert event.owner == path.parent.name
        assert event.id == f"{path.parent.name}_{event.datetime}_{path.name}"
        assert event.sha256 == sha(path.read_bytes())
    assert all(path.exists() for path in paths), "the scanner must never remove anything"


def test_any_file_name_works(scanner, journal: Journal, inbox: Path, corpus: Path) -> None:
    scanner()
    names = [
        "with spaces.jpg",
        'it\'s "quoted".jpg',
        "paren (1) [2] {3}.jpeg",
        "Ñandú-日本語-ça.JPG",
        "-leading-dash.jpg",
        "$(touch pwned); `id`.jpg",
        SEED_NAME,
    ]
    data = photo_bytes(corpus)
    owner = inbox / "REEDER-PHILIP" / "2009 trip (Yavne)"
    owner.mkdir(parents=True)
    for name in names:
        (owner / name).write_bytes(data)
    for name in names:
        [event] = journal.wait(owner / name)
        assert event.id == f"REEDER-PHILIP_1224692919_{name}"
        assert event.owner == "REEDER-PHILIP"
        assert event.path == str(owner / name)
    assert not (inbox / "REEDER-PHILIP" / "2009 trip (Yavne)" / "pwned").exists()
    assert sorted(p.name for p in owner.iterdir()) == sorted(names)


def test_a_symlink_is_never_followed_or_emitted(
    scanner, journal: Journal, inbox: Path, tmp_path: Path, corpus: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.jpg"
    secret.write_bytes(photo_bytes(corpus))
    before = metric("dp3_scanner_ignored_total", reason="symlink")
    running = scanner()
    owner = inbox / "EVE-MALLORY"
    owner.mkdir()
    (owner / "link.jpg").symlink_to(secret)
    (owner / "linked-folder").symlink_to(outside, target_is_directory=True)
    (owner / "real.jpg").write_bytes(photo_bytes(corpus, "jpg/hdr/canon_hdr_NO.jpg"))

    journal.wait(owner / "real.jpg")
    running.wait_rescans(2)
    paths = {e.path for e in journal.poll()}
    assert paths == {str(owner / "real.jpg")}
    assert metric("dp3_scanner_ignored_total", reason="symlink") - before == 2  # each logged and counted once
    assert secret.read_bytes() == photo_bytes(corpus) and (owner / "link.jpg").is_symlink()


def test_a_photo_in_the_inbox_root_fails_once_with_no_owner(
    scanner, journal: Journal, inbox: Path, corpus: Path
) -> None:
    running = scanner(rescan_seconds=0.5)
    stray = inbox / "DSC00372.JPG"
    stray.write_bytes(photo_bytes(corpus))
    [event] = journal.wait(stray, Status.FAILED)
    assert event.error is not None and event.error.kind == ErrorKind.NO_OWNER and event.error.stage == "scanner"
    assert "FIRST-LAST" in event.error.message and "Move it" in event.error.message
    assert event.owner is None
    running.wait_rescans(3)
    assert len(journal.about(stray)) == 1, "reported once, not on every rescan"
    assert stray.exists()


def test_only_photos_are_emitted_by_extension_or_content(scanner, journal: Journal, inbox: Path, corpus: Path) -> None:
    before = {r: metric("dp3_scanner_ignored_total", reason=r) for r in ("hidden", "temporary", "unsupported_type")}
    running = scanner()
    owner = inbox / "ANNA-LIND"
    (owner / ".dropbox.cache").mkdir(parents=True)
    jpeg = photo_bytes(corpus)
    files = {
        "upper.JPEG": jpeg,
        "no-extension": jpeg,  # a photo's content, no extension: accepted
        "photo.dat": (corpus / "tiff/Arbitro.tiff").read_bytes(),
        "phone.bin": (corpus / "heic/samplefilehub.heif").read_bytes(),
        "not-really.jpg": b"hello, I am text\n",  # photo extension: accepted, the render classifies it
        "notes.txt": b"hello\n",
        ".DS_Store": jpeg,
        "IMG_1.jpg.partial": jpeg,
        "IMG_2.jpg.crdownload": jpeg,
        "~IMG_3.jpg": jpeg,
        ".dropbox.cache/IMG_4.jpg": jpeg,
    }
    for name, data in files.items():
        (owner / name).write_bytes(data)
    for name in ("upper.JPEG", "no-extension", "photo.dat", "phone.bin", "not-really.jpg"):
        journal.wait(owner / name)
    running.wait_rescans(2)
    emitted = {Path(e.path).name for e in journal.poll()}
    assert emitted == {"upper.JPEG", "no-extension", "photo.dat", "phone.bin", "not-really.jpg"}
    assert metric("dp3_scanner_ignored_total", reason="unsupported_type") - before["unsupported_type"] == 1
    assert metric("dp3_scanner_ignored_total", reason="temporary") - before["temporary"] == 3
    assert metric("dp3_scanner_ignored_total", reason="hidden") - before["hidden"] == 2  # .DS_Store, the cache folder


def test_inbox_metrics_and_scan_histogram(scanner, journal: Journal, inbox: Path, corpus: Path) -> None:
    running = scanner()
    owner = inbox / "MAX-MUSTER"
    owner.mkdir()
    data = photo_bytes(corpus)
    for n in range(3):
        (owner / f"{n}.jpg").write_bytes(data)
    journal.wait(owner / "2.jpg")
    scans_before = metric("dp3_scanner_scan_seconds_count")
    running.wait_rescans(1)
    assert metric("dp3_scanner_inbox_files") == 3
    assert metric("dp3_scanner_inbox_bytes") == 3 * len(data)
    assert metric("dp3_scanner_scan_seconds_count") > scans_before
    assert metric("dp3_scanner_detected_total", owner="MAX-MUSTER") == 3
    assert metric("dp3_scanner_detect_latency_seconds_count") >= 3


def test_rescans_alone_find_files_when_inotify_is_off(scanner, journal: Journal, inbox: Path, corpus: Path) -> None:
    scanner(watch=False, rescan_seconds=0.5)
    path = inbox / "OLGA-K" / "a.jpg"
    path.parent.mkdir()
    path.write_bytes(photo_bytes(corpus))
    journal.wait(path)


def test_a_folder_moved_into_the_inbox_is_picked_up(
    scanner, journal: Journal, inbox: Path, tmp_path: Path, corpus: Path
) -> None:
    scanner(rescan_seconds=60.0)  # inotify only: the folder arrives as one event
    staging = tmp_path / "elsewhere" / "PETER-PAN"
    (staging / "day 1").mkdir(parents=True)
    (staging / "day 1" / "a.jpg").write_bytes(photo_bytes(corpus))
    os.rename(staging, inbox / "PETER-PAN")
    journal.wait(inbox / "PETER-PAN" / "day 1" / "a.jpg")
