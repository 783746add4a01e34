"""Names are bytes (invariant 6) and two files never share an id (issue 14, items 2 and 5), with the real scanner.

Real files with real non-UTF-8 names (Latin-1 bytes, as an SMB share or an old
zip leaves them), names of 255 bytes, multi-byte names near the limit, control
characters, NFC and NFD twins, and an edited re-export beside its original.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from dp3 import filenames
from dp3.events import ID_MAX, JournalEntry, Status
from tests.integration.scanner.conftest import Journal
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration

OWNER = "JAEGER-NICHOLAS"


def events_for(journal: Journal, path: bytes, status: Status = Status.DETECTED) -> list[JournalEntry]:
    return [e for e in journal.poll() if os.fsencode(e.fs_path) == path and e.status == status]


def wait_event(journal: Journal, path: bytes, status: Status = Status.DETECTED, timeout: float = 30) -> JournalEntry:
    wait_for(lambda: bool(events_for(journal, path, status)), timeout, f"{status} for {path!r}")
    return events_for(journal, path, status)[0]


def put(inbox: Path, relative: bytes, data: bytes) -> bytes:
    """Write ``data`` at ``inbox/relative`` (bytes, any name); returns the absolute path as bytes."""
    path = os.fsencode(inbox) + b"/" + relative
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(data)
    return path


def test_any_name_the_file_system_takes_is_detected_with_its_exact_bytes(
    scanner, journal: Journal, inbox: Path, corpus: Path
) -> None:
    data = (corpus / "jpg" / "gps" / "DSCN0010.jpg").read_bytes()
    owner = OWNER.encode()
    names = [
        owner + b"/caf\xe9 \xab1\xbb.jpg",  # Latin-1 basename
        b"M\xdcLLER-J\xd6RG/DSC00001.JPG",  # Latin-1 owner folder
        owner + b"/Gr\xfc\xdfe/DSC00002.JPG",  # Latin-1 sub-folder
        owner + b"/" + b"L" * 251 + b".JPG",  # exactly 255 bytes
        owner + b"/" + "é".encode() * 125 + b".JPG",  # 254 bytes of two-byte characters
        owner + b"/" + "中".encode() * 83 + b"x.jpg",  # 255 bytes of three-byte characters
        owner + b"/two\nlines\t\x01.jpg",  # control characters
        owner + b"/-n --rm 'q' \"dq\".jpg",  # leading dashes and quotes
        owner + b"/%E9.jpg",  # looks like an escape, is not one
        owner + b"/\xe9.jpg",  # the byte that "%E9" stands for: a different name, a different id
        owner + "/\u00e9t\u00e9.jpg".encode(),  # NFC ...
        owner + unicodedata.normalize("NFD", "/\u00e9t\u00e9.jpg").encode(),  # ... and NFD of the same name
    ]
    # Each file holds its own bytes (a Duplicate is another matter, see test_duplicates.py).
    paths = [put(inbox, name, data + bytes([index])) for index, name in enumerate(names)]
    scanner()
    events = [wait_event(journal, path) for path in paths]

    ids = [event.id for event in events]
    assert len(set(ids)) == len(ids), ids
    folded = {unicodedata.normalize("NFC", i).casefold() for i in ids}
    assert len(folded) == len(ids), "the NFC and NFD twins share an id a normalising store would merge"
    for path, event in zip(paths, events, strict=True):
        assert os.fsencode(event.fs_path) == path  # the original, byte for byte
        assert event.path == filenames.escape(path)
        assert len(event.id.encode()) <= ID_MAX
        assert "\n" not in event.id and "\n" not in event.path
        event.to_json().decode("utf-8")
    assert events[0].path.endswith("/caf%E9 %AB1%BB.jpg") and events[0].path_bytes is not None
    assert events[1].owner == "M%DCLLER-J%D6RG"
    assert events[7].path_bytes is None and events[7].id == f"{OWNER}_{events[7].datetime}_-n --rm 'q' \"dq\".jpg"
    assert events[8].path.endswith("/%25E9.jpg") and events[9].path.endswith("/%E9.jpg")


def test_a_bad_name_never_stops_the_loop(scanner, journal: Journal, inbox: Path, corpus: Path) -> None:
    """Ignored entries with non-UTF-8 names are recorded (once) and photos after them are still detected."""
    data = (corpus / "jpg" / "gps" / "DSCN0010.jpg").read_bytes()
    ignored = REGISTRY.get_sample_value("dp3_scanner_ignored_total", {"reason": "hidden"}) or 0.0
    put(inbox, OWNER.encode() + b"/.caf\xe9.jpg", data)  # hidden, named in Latin-1
    put(inbox, OWNER.encode() + b"/r\xe9sum\xe9.txt.part", data)  # a partial download
    os.symlink("/etc/passwd", os.fsencode(inbox) + b"/" + OWNER.encode() + b"/lien-\xe9.jpg")
    running = scanner()
    running.wait_rescans(2)
    assert running.thread.is_alive()
    later = put(inbox, OWNER.encode() + b"/after \xe9.jpg", data + b"1")
    wait_event(journal, later)
    assert (REGISTRY.get_sample_value("dp3_scanner_ignored_total", {"reason": "hidden"}) or 0.0) == ignored + 1


def test_a_restarted_scanner_keeps_every_id_and_re_drives_by_the_same_name(
    scanner, journal: Journal, inbox: Path, corpus: Path
) -> None:
    data = (corpus / "jpg" / "gps" / "DSCN0010.jpg").read_bytes()
    latin = put(inbox, OWNER.encode() + b"/caf\xe9.jpg", data)
    long = put(inbox, OWNER.encode() + b"/" + b"x" * 240 + b".jpg", data + b"1")
    first = scanner(redrive_seconds=2.0)
    ids = {path: wait_event(journal, path).id for path in (latin, long)}
    first.stop()
    scanner(redrive_seconds=2.0)
    for path in (latin, long):
        wait_for(lambda: len(events_for(journal, path)) >= 2, 30, "a re-drive after the restart")  # noqa: B023
        assert {event.id for event in events_for(journal, path)} == {ids[path]}


def test_an_edited_re_export_with_the_same_name_and_second_gets_its_own_id(
    scanner, journal: Journal, inbox: Path, corpus: Path
) -> None:
    """``edited/DSCN0010.jpg`` (other bytes, same EXIF time) beside the original: two ids; same bytes: one."""
    original = (corpus / "jpg" / "gps" / "DSCN0010.jpg").read_bytes()
    edited = original + b"re-exported"  # after the end marker: same EXIF, other bytes
    first = put(inbox, OWNER.encode() + b"/DSCN0010.jpg", original)
    scanner()
    original_event = wait_event(journal, first)
    second = put(inbox, OWNER.encode() + b"/edited/DSCN0010.jpg", edited)
    third = put(inbox, OWNER.encode() + b"/other camera/DSCN0010.jpg", original + b"second camera")
    cased = put(inbox, OWNER.encode() + b"/dscn0010.JPG", original + b"case")
    edited_event = wait_event(journal, second)
    third_event = wait_event(journal, third)
    cased_event = wait_event(journal, cased)

    assert original_event.datetime == edited_event.datetime == third_event.datetime
    assert original_event.id == f"{OWNER}_{original_event.datetime}_DSCN0010.jpg"  # the seed's shape
    ids = {original_event.id, edited_event.id, third_event.id, cased_event.id}
    assert len(ids) == 4
    assert edited_event.sha256 is not None
    assert edited_event.id == f"{OWNER}_{original_event.datetime}_DSCN0010~{edited_event.sha256[:12]}.jpg"
    assert cased_event.sha256 is not None and f"~{cased_event.sha256[:12]}" in cased_event.id
