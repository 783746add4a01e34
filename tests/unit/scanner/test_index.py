from __future__ import annotations

from pathlib import Path

from dp3_scanner.index import FileRecord, Index, Outcome


def test_records_survive_a_reopen_and_forget_removes_them(tmp_path: Path) -> None:
    db = tmp_path / "state" / "index.sqlite3"
    index = Index(db)
    index.put(FileRecord("/in/A-B/x.jpg", (1, 2, 3), Outcome.DETECTED, sha256="s", event="{}", next_redrive_at=9.5))
    index.put(FileRecord("/in/A-B/y.txt", (4, 5, 6), Outcome.IGNORED, reason="unsupported_type"))
    index.close()

    index = Index(db)
    assert index.get("/in/A-B/x.jpg") == FileRecord(
        "/in/A-B/x.jpg", (1, 2, 3), Outcome.DETECTED, sha256="s", event="{}", next_redrive_at=9.5
    )
    assert index.forget(["/in/A-B/x.jpg", "/in/nope"]) == 1
    index.close()
    assert set(Index(db).files) == {"/in/A-B/y.txt"}


def test_archived_photos_are_remembered_and_collected_is_sticky(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    index = Index(db)
    index.remember_archived("s1", "A-B_1_x.jpg", ["/a/d"])
    index.remember_archived("s1", "A-B_1_x.jpg", [], collected=True)
    index.remember_archived("s1", "A-B_1_x.jpg", ["/a/d"])  # a replayed Archived after Collected
    index.close()
    photo = Index(db).archived("s1")
    assert photo is not None
    assert (photo.photo_id, photo.archives, photo.collected) == ("A-B_1_x.jpg", ["/a/d"], True)
