"""The scanner's memory: which inbox files it has handled, and which photos are archived.

A small SQLite database under ``$DP3_HOME`` so that a restart neither
re-reads nor re-emits unchanged files. It is loaded into memory at start:
a rescan compares a whole ``os.scandir`` walk against a dict, with no SQL per
file (100,000 files in well under the 3-second budget); SQL is only written
when something happens to a file.

Two tables:

* ``files``: one row per inbox path the scanner has dealt with, keyed by path,
  with the ``(size, mtime_ns, inode)`` it had, the outcome, and for emitted
  photos the last event sent (re-driven later with growing intervals).
* ``archived``: sha256 -> the id and archive folders of an archived photo, and
  whether its original has been collected; learned from the journal, so a
  re-upload of the same bytes is recognised as a ``Duplicate``.

The dict of files belongs to the scanner's loop thread; the archived table
is also written by the consumer thread, so it sits behind a lock, as does
the one SQLite connection.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

FileKey = tuple[int, int, int]
"""(size, mtime_ns, inode): a file is unchanged while its key is."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    sha256 TEXT,
    event TEXT,
    emitted_at REAL,
    attempt INTEGER NOT NULL DEFAULT 0,
    next_redrive_at REAL
);
CREATE TABLE IF NOT EXISTS archived (
    sha256 TEXT PRIMARY KEY,
    photo_id TEXT NOT NULL,
    archives TEXT NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0
);
"""


class Outcome(enum.StrEnum):
    """What the scanner did with a file."""

    DETECTED = "detected"  # emitted Detected (re-driven while the file stays)
    DUPLICATE = "duplicate"  # emitted Duplicate (re-driven while the file stays)
    FAILED = "failed"  # emitted Failed (no_owner, unreadable); reason = the kind
    IGNORED = "ignored"  # not a photo; reason = the IgnoreReason


@dataclass(slots=True)
class FileRecord:
    path: str
    key: FileKey
    outcome: Outcome
    reason: str | None = None
    sha256: str | None = None
    event: str | None = None
    """The last event emitted for this file, as JSON (re-driven as is, with a new event_id)."""
    emitted_at: float | None = None
    attempt: int = 0
    next_redrive_at: float | None = None
    """Unix time of the next re-drive (or re-read, for an unreadable file); None = never."""


@dataclass(frozen=True, slots=True)
class ArchivedPhoto:
    photo_id: str
    archives: list[str] = field(default_factory=list)
    collected: bool = False


class Index:
    """The persistent index; construct once per process, close at the end."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self.files: dict[str, FileRecord] = {}
        self._archived: dict[str, ArchivedPhoto] = {}
        self._load()

    def _load(self) -> None:
        for row in self._db.execute(
            "SELECT path, size, mtime_ns, inode, outcome, reason, sha256, event, emitted_at, attempt, next_redrive_at"
            " FROM files"
        ):
            self.files[row[0]] = FileRecord(
                row[0], (row[1], row[2], row[3]), Outcome(row[4]), row[5], row[6], row[7], row[8], row[9], row[10]
            )
        for sha, photo_id, archives, collected in self._db.execute(
            "SELECT sha256, photo_id, archives, collected FROM archived"
        ):
            self._archived[sha] = ArchivedPhoto(photo_id, json.loads(archives), bool(collected))

    # --- files (the scanner loop's thread) -----------------------------------

    def get(self, path: str) -> FileRecord | None:
        return self.files.get(path)

    def put(self, record: FileRecord) -> None:
        self.put_many([record])

    def put_many(self, records: Iterable[FileRecord]) -> None:
        rows = []
        for record in records:
            self.files[record.path] = record
            rows.append(
                (
                    record.path,
                    *record.key,
                    record.outcome.value,
                    record.reason,
                    record.sha256,
                    record.event,
                    record.emitted_at,
                    record.attempt,
                    record.next_redrive_at,
                )
            )
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)

    def forget(self, paths: Iterable[str]) -> int:
        """Drop these paths (their files left the inbox); returns how many were known."""
        gone = [path for path in paths if self.files.pop(path, None) is not None]
        if gone:
            with self._lock, self._db:
                self._db.execute("BEGIN")
                self._db.executemany("DELETE FROM files WHERE path = ?", ((path,) for path in gone))
        return len(gone)

    # --- archived photos (any thread) ----------------------------------------

    def archived(self, sha256: str) -> ArchivedPhoto | None:
        with self._lock:
            return self._archived.get(sha256)

    def remember_archived(self, sha256: str, photo_id: str, archives: list[str], *, collected: bool = False) -> None:
        """Record an archived photo; idempotent, and ``collected`` never goes back to False."""
        with self._lock:
            known = self._archived.get(sha256)
            if known is not None and known.photo_id == photo_id:
                collected = collected or known.collected
                archives = archives or known.archives
            photo = ArchivedPhoto(photo_id, list(archives), collected)
            if photo == known:
                return
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(
                    "INSERT OR REPLACE INTO archived VALUES (?,?,?,?)",
                    (sha256, photo_id, json.dumps(photo.archives), int(collected)),
                )
            self._archived[sha256] = photo

    def close(self) -> None:
        with self._lock:
            self._db.close()
