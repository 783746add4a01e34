"""The durable queue: what the agent has seen, what it sent, and what the head node said. SQLite.

It survives ``kill -9`` and a reboot: WAL journal, ``synchronous=FULL`` (a
commit is on disk when it returns), and every step's change is one
transaction. So a restart neither resends a finished file (its state says
``sent``) nor loses a pending one (it was committed when found). An
original's tus upload URL is committed the moment the head node gives it, so
a restart resumes that upload from the head node's offset instead of creating
another (tuspy keeps URLs only in memory by default).

Tables:

- ``files``: every file of the watched folder already read, by path, with
  the stat it had then, so an unchanged file is never hashed or rendered
  twice;
- ``photos``: one row per distinct sha256 (the same bytes under two names are
  sent once), with both halves' states (:mod:`dp3_field.plan`);
- ``notes``: small JSON facts for the status (the link's state, the rate,
  the last receipt), written by ``run`` and read by ``status`` and the page.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dp3_field.plan import OriginalState, Photo, PreviewState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    sha256 TEXT
);
CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    day TEXT NOT NULL,
    taken REAL NOT NULL,
    captured_at TEXT,
    preview_state TEXT NOT NULL,
    preview_file TEXT,
    original_state TEXT NOT NULL,
    upload_url TEXT,
    offset INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0,
    receipt_asked_at REAL,
    receipt TEXT,
    deleted_at REAL,
    problem TEXT,
    found_at REAL NOT NULL,
    preview_sent_at REAL,
    original_sent_at REAL
);
CREATE TABLE IF NOT EXISTS notes (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_REMEMBER_FILE = (
    "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, ctime_ns, sha256) VALUES (?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class Found:
    """A finished file, read: what the queue needs to enqueue it."""

    path: str
    name: str
    sha256: str
    size: int
    day: str
    taken: float
    captured_at: str | None
    preview_file: str | None
    """The rendered preview on local disk; None when the render refused the file (then it is not sent)."""
    problem: str | None = None


@dataclass(frozen=True)
class Counts:
    previews_sent: int
    previews_waiting: int
    originals_sent: int
    originals_waiting: int
    bytes_to_go: int
    archived: int
    freed: int
    refused: int


class Queue:
    """The agent's SQLite file. One instance per thread (sqlite3 connections are not shared)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            self._db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=5)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- the folder ------------------------------------------------------------

    def known_file(self, path: str) -> tuple[int, int, int, int] | None:
        row = self._db.execute("SELECT size, mtime_ns, inode, ctime_ns FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def add(self, found: Found, key: tuple[int, int, int, int], now: float) -> bool:
        """Record a finished file and enqueue its photo; False when these bytes were already queued."""
        with self._transaction() as db:
            db.execute(
                _REMEMBER_FILE,
                (found.path, *key, found.sha256),
            )
            preview = PreviewState.PENDING if found.preview_file else PreviewState.NONE
            original = OriginalState.PENDING if found.preview_file else OriginalState.REFUSED
            cursor = db.execute(
                "INSERT OR IGNORE INTO photos (sha256, path, name, size, day, taken, captured_at, preview_state,"
                " preview_file, original_state, found_at, problem) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    found.sha256,
                    found.path,
                    found.name,
                    found.size,
                    found.day,
                    found.taken,
                    found.captured_at,
                    preview.value,
                    found.preview_file,
                    original.value,
                    now,
                    found.problem,
                ),
            )
            return cursor.rowcount == 1

    def remember_file(self, path: str, key: tuple[int, int, int, int], sha256: str | None) -> None:
        """A file that is not (or no longer) a photo to send: remember its stat so it is not read again."""
        with self._transaction() as db:
            db.execute(
                _REMEMBER_FILE,
                (path, *key, sha256),
            )

    # --- photos ----------------------------------------------------------------

    def photos(self) -> list[Photo]:
        rows = self._db.execute("SELECT * FROM photos ORDER BY id").fetchall()
        return [_photo(row) for row in rows]

    def row(self, photo_id: int) -> sqlite3.Row:
        row = self._db.execute("SELECT * FROM photos WHERE id = ?", (photo_id,)).fetchone()
        assert isinstance(row, sqlite3.Row)
        return row

    def _update(self, photo_id: int, **values: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in values)
        with self._transaction() as db:
            db.execute(f"UPDATE photos SET {columns} WHERE id = ?", (*values.values(), photo_id))  # noqa: S608 -- column names are ours

    def preview_sent(self, photo_id: int, now: float) -> None:
        self._update(photo_id, preview_state=PreviewState.SENT.value, preview_sent_at=now, problem=None)

    def preview_refused(self, photo_id: int, problem: str) -> None:
        self._update(photo_id, preview_state=PreviewState.NONE.value, problem=problem)

    def upload_url(self, photo_id: int) -> str | None:
        value = self.row(photo_id)["upload_url"]
        return None if value is None else str(value)

    def set_upload_url(self, photo_id: int, url: str | None) -> None:
        self._update(photo_id, upload_url=url)

    def set_offset(self, photo_id: int, offset: int) -> None:
        self._update(photo_id, offset=offset)

    def original_done(self, photo_id: int, state: OriginalState, now: float) -> None:
        """The original reached the head node (``sent``) or was already there (``already``)."""
        row = self.row(photo_id)
        self._update(photo_id, original_state=state.value, offset=int(row["size"]), original_sent_at=now, problem=None)

    def original_refused(self, photo_id: int, problem: str) -> None:
        self._update(photo_id, original_state=OriginalState.REFUSED.value, problem=problem)

    def set_problem(self, photo_id: int, problem: str | None) -> None:
        self._update(photo_id, problem=problem)

    def receipt(self, photo_id: int, receipt: dict[str, Any], archived: bool, now: float) -> None:
        self._update(photo_id, receipt=json.dumps(receipt), archived=int(archived), receipt_asked_at=now)

    def receipt_asked(self, photo_id: int, now: float) -> None:
        self._update(photo_id, receipt_asked_at=now)

    def freed(self, photo_id: int, now: float) -> None:
        self._update(photo_id, deleted_at=now)

    def counts(self) -> Counts:
        row = self._db.execute(
            """SELECT
                 SUM(preview_state = 'sent'), SUM(preview_state = 'pending'),
                 SUM(original_state IN ('sent', 'already')), SUM(original_state = 'pending'),
                 SUM(CASE WHEN original_state = 'pending' THEN size - offset ELSE 0 END),
                 SUM(archived), SUM(deleted_at IS NOT NULL), SUM(original_state = 'refused')
               FROM photos"""
        ).fetchone()
        return Counts(*(int(value or 0) for value in row))

    def problems(self) -> list[tuple[str, str]]:
        rows = self._db.execute("SELECT name, problem FROM photos WHERE problem IS NOT NULL ORDER BY id").fetchall()
        return [(str(row[0]), str(row[1])) for row in rows]

    # --- notes for the status ------------------------------------------------------

    def note(self, key: str, value: Any) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO notes (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def notes(self) -> dict[str, Any]:
        return {str(row[0]): json.loads(row[1]) for row in self._db.execute("SELECT key, value FROM notes")}


def _photo(row: sqlite3.Row) -> Photo:
    return Photo(
        id=int(row["id"]),
        path=str(row["path"]),
        name=str(row["name"]),
        sha256=str(row["sha256"]),
        size=int(row["size"]),
        day=str(row["day"]),
        taken=float(row["taken"]),
        preview=PreviewState(row["preview_state"]),
        original=OriginalState(row["original_state"]),
        offset=int(row["offset"]),
        archived=bool(row["archived"]),
        receipt_asked_at=None if row["receipt_asked_at"] is None else float(row["receipt_asked_at"]),
        deleted=row["deleted_at"] is not None,
    )
