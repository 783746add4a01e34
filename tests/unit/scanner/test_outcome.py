from __future__ import annotations

from dp3.events import ErrorKind, Status
from dp3_scanner.index import ArchivedPhoto
from dp3_scanner.outcome import Upload, decide, photo_id, unreadable


def upload(owner: str | None = "JAEGER-NICHOLAS", name: str = "DSC00372.JPG") -> Upload:
    return Upload(f"/inbox/{owner or ''}/{name}".replace("//", "/"), name, owner, 1355517208, "ab" * 32, 42, 1e9)


def test_a_new_photo_is_detected_with_the_seed_id() -> None:
    entry = decide(upload(), None)
    assert entry.status == Status.DETECTED
    assert entry.id == "JAEGER-NICHOLAS_1355517208_DSC00372.JPG"
    assert (entry.owner, entry.sha256, entry.size, entry.upload_finished_at) == ("JAEGER-NICHOLAS", "ab" * 32, 42, 1e9)
    assert entry.service == "scanner" and entry.attempt == 0


def test_the_inbox_root_is_no_owner() -> None:
    entry = decide(upload(owner=None), None)
    assert entry.status == Status.FAILED and entry.owner is None
    assert entry.error is not None and entry.error.kind == ErrorKind.NO_OWNER and entry.error.stage == "scanner"
    assert entry.id == "_1355517208_DSC00372.JPG"


def test_bytes_archived_under_another_id_are_a_duplicate() -> None:
    archived = ArchivedPhoto("REEDER-PHILIP_1_x.jpg", ["/a/2012-12-14"], collected=False)
    entry = decide(upload(), archived)
    assert entry.status == Status.DUPLICATE
    assert entry.duplicate_of == "REEDER-PHILIP_1_x.jpg" and entry.archives == ["/a/2012-12-14"]


def test_same_id_is_a_duplicate_only_once_the_original_was_collected() -> None:
    same = photo_id(upload())
    assert decide(upload(), ArchivedPhoto(same, ["/a"], collected=False)).status == Status.DETECTED
    assert decide(upload(), ArchivedPhoto(same, ["/a"], collected=True)).status == Status.DUPLICATE


def test_unreadable() -> None:
    entry = unreadable("/inbox/A-B/x.jpg", "x.jpg", "A-B", 5_000_000_000, "Permission denied")
    assert entry.status == Status.FAILED and entry.id == "A-B_5_x.jpg"
    assert entry.error is not None and entry.error.kind == ErrorKind.UNREADABLE
    assert "Permission denied" in entry.error.message
