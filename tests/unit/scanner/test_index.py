from __future__ import annotations

from pathlib import Path

from dp3_scanner.index import Index, ScanOutcome, SeenFile


def test_records_survive_a_reopen_and_forget_removes_them(tmp_path: Path) -> None:
    db = tmp_path / "state" / "index.sqlite3"
    index = Index(db)
    index.put(
        SeenFile("/in/A-B/x.jpg", (1, 2, 3, 7), ScanOutcome.DETECTED, sha256="s", event="{}", next_redrive_at=9.5)
    )
    index.put(SeenFile("/in/A-B/y.txt", (4, 5, 6, 8), ScanOutcome.IGNORED, reason="unsupported_type"))
    index.close()

    index = Index(db)
    assert index.get("/in/A-B/x.jpg") == SeenFile(
        "/in/A-B/x.jpg", (1, 2, 3, 7), ScanOutcome.DETECTED, sha256="s", event="{}", next_redrive_at=9.5
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


def test_paths_are_bytes_and_an_index_from_before_is_converted_once(tmp_path: Path) -> None:
    import json
    import os
    import sqlite3

    db = tmp_path / "index.sqlite3"
    old = sqlite3.connect(db)  # the layout before names were bytes: TEXT paths, no ids table
    old.executescript(
        "CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
        " inode INTEGER NOT NULL, outcome TEXT NOT NULL, reason TEXT, sha256 TEXT, event TEXT, emitted_at REAL,"
        " attempt INTEGER NOT NULL DEFAULT 0, next_redrive_at REAL);"
        "CREATE TABLE archived (sha256 TEXT PRIMARY KEY, photo_id TEXT NOT NULL, archives TEXT NOT NULL,"
        " collected INTEGER NOT NULL DEFAULT 0);"
    )
    event = json.dumps({"id": "A-B_1_x.jpg"})
    old.execute("INSERT INTO files VALUES ('/in/A-B/x.jpg', 1, 2, 3, 'detected', NULL, 's1', ?, 0, 0, NULL)", (event,))
    old.commit()
    old.close()

    index = Index(db)
    latin = os.fsdecode(b"/in/A-B/caf\xe9.jpg")
    index.put(SeenFile(latin, (1, 2, 4, 9), ScanOutcome.IGNORED, reason="hidden"))
    index.put(SeenFile("/in/A-B/x.jpg", (1, 2, 3, 7), ScanOutcome.DETECTED, sha256="s1", event=event))  # same key
    assert index.assign_id("A-B_1_x.jpg", "s1") == "A-B_1_x.jpg"  # learned from the old rows
    assert index.assign_id("A-B_1_x.jpg", "s2" * 32).startswith("A-B_1_x~s2s2")
    index.close()
    rows = sqlite3.connect(db).execute("SELECT path, typeof(path) FROM files ORDER BY path").fetchall()
    assert rows == [(b"/in/A-B/caf\xe9.jpg", "blob"), (b"/in/A-B/x.jpg", "blob")]
    again = Index(db)
    assert set(again.files) == {latin, "/in/A-B/x.jpg"}
    assert again.forget([latin]) == 1


def test_ids_are_unique_case_folded_and_stable_for_the_same_bytes(tmp_path: Path) -> None:
    import unicodedata

    db = tmp_path / "index.sqlite3"
    index = Index(db)
    sha_a, sha_b, sha_c = "a" * 64, "b" * 64, "c" * 64
    assert index.assign_id("O_1_DSC.JPG", sha_a) == "O_1_DSC.JPG"
    assert index.assign_id("O_1_DSC.JPG", sha_b) == "O_1_DSC~bbbbbbbbbbbb.JPG"
    assert index.assign_id("O_1_dsc.jpg", sha_c) == "O_1_dsc~cccccccccccc.jpg"  # a case twin
    nfd = unicodedata.normalize("NFD", "O_1_été.jpg")
    assert index.assign_id("O_1_été.jpg", sha_a) == "O_1_été.jpg"
    assert index.assign_id(nfd, sha_b) != nfd
    index.remember_archived(sha_c, "O_2_x.jpg", ["/a/d"])  # learned from the journal: taken too
    index.close()
    index = Index(db)
    assert index.assign_id("O_1_DSC.JPG", sha_b) == "O_1_DSC~bbbbbbbbbbbb.JPG"  # after a restart
    assert index.assign_id("O_1_DSC.JPG", sha_a) == "O_1_DSC.JPG"
    assert index.assign_id("O_2_x.jpg", sha_a) == "O_2_x~aaaaaaaaaaaa.jpg"
