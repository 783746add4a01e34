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
* ``ids``: every photo id handed out, with the sha256 it was given to, so two
  different files never share an id (:meth:`Index.assign_id`). Ids are
  compared case-folded and in Unicode NFC, because a store on SMB, exFAT or
  macOS would take ``DSC.JPG`` and ``dsc.jpg`` (or a name's NFC and NFD forms)
  for one file. Kept for good: an id stays taken after its photo was collected.

Paths are names as the file system has them: any bytes. They are stored as
BLOBs (``os.fsencode``), never as TEXT, which would refuse a name that is not
UTF-8; a database from before is converted once at open.

The dict of files belongs to the scanner's loop thread; the archived table
is also written by the consumer thread, so it sits behind a lock, as does
the one SQLite connection.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dp3.events import disambiguated_id

FileKey = tuple[int, int, int, int]
"""(size, mtime_ns, inode, ctime_ns): a file is unchanged while its key is.

The ctime is there because a rewrite in place that puts the old mtime back
(``touch -r``, ``os.utime``, a sync client restoring times) keeps size, mtime
and inode; no user call can set the ctime. A chmod moves it too: that costs one
hash, and the same bytes say nothing new.
"""

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
    next_redrive_at REAL,
    ctime_ns INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS archived (
    sha256 TEXT PRIMARY KEY,
    photo_id TEXT NOT NULL,
    archives TEXT NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ids (
    folded TEXT PRIMARY KEY,
    photo_id TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
"""

# Columns named, since ctime_ns was added at the end of an older table.
_SELECT_FILES = (
    "SELECT path, size, mtime_ns, inode, ctime_ns, outcome, reason, sha256, event, emitted_at, attempt, next_redrive_at"
    " FROM files"
)
_PUT_FILE = (
    "INSERT OR REPLACE INTO files"
    " (path, size, mtime_ns, inode, ctime_ns, outcome, reason, sha256, event, emitted_at, attempt, next_redrive_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)


def folded_id(photo_id: str) -> str:
    """The form two ids are compared in: a case-insensitive or normalising store sees them as one name."""
    return unicodedata.normalize("NFC", photo_id).casefold()


@dataclass(frozen=True, slots=True)
class AssignedId:
    photo_id: str
    sha256: str


class ScanOutcome(enum.StrEnum):
    """What the scanner did with a file."""

    DETECTED = "detected"  # emitted Detected (re-driven while the file stays)
    DUPLICATE = "duplicate"  # emitted Duplicate (re-driven while the file stays)
    FAILED = "failed"  # emitted Failed (no_owner, unreadable); reason = the kind
    IGNORED = "ignored"  # not a photo; reason = the IgnoreReason


@dataclass(slots=True)
class SeenFile:
    path: str
    key: FileKey
    outcome: ScanOutcome
    reason: str | None = None
    sha256: str | None = None
    event: str | None = None
    """The last event emitted for this file, as JSON (re-driven as is, with a new event_id)."""
    emitted_at: float | None = None
    redrives: int = 0
    """How many times this file was re-driven: re-announced (its last event's ``attempt``), or looked at
    again after a failure. Each doubles the wait before the next. (Column ``attempt``, its old name:
    renaming it would need a migration of every index for nothing.)"""
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
        fresh_ids = not self._db.execute("SELECT name FROM sqlite_master WHERE name = 'ids'").fetchone()
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
        if "ctime_ns" not in columns:  # an index from before the ctime was part of the key: each file is hashed once
            self._db.execute("ALTER TABLE files ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0")
        # Paths were TEXT before names were bytes: the same key must not exist twice, as TEXT and as BLOB.
        self._db.execute("UPDATE files SET path = CAST(path AS BLOB) WHERE typeof(path) = 'text'")
        self.files: dict[str, SeenFile] = {}
        self._archived: dict[str, ArchivedPhoto] = {}
        self._ids: dict[str, AssignedId] = {}
        self._load()
        if fresh_ids:
            self._learn_ids_from_history()

    def _load(self) -> None:
        for row in self._db.execute(_SELECT_FILES):
            path = os.fsdecode(row[0])
            self.files[path] = SeenFile(
                path,
                (row[1], row[2], row[3], row[4]),
                ScanOutcome(row[5]),
                row[6],
                row[7],
                row[8],
                row[9],
                row[10],
                row[11],
            )
        for sha, photo_id, archives, collected in self._db.execute(
            "SELECT sha256, photo_id, archives, collected FROM archived"
        ):
            self._archived[sha] = ArchivedPhoto(photo_id, json.loads(archives), bool(collected))
        for folded, photo_id, sha in self._db.execute("SELECT folded, photo_id, sha256 FROM ids"):
            self._ids[folded] = AssignedId(photo_id, sha)

    def _learn_ids_from_history(self) -> None:
        """Once, for an index from before ids were kept: the ids already emitted and archived are taken."""
        known = [(photo.photo_id, sha) for sha, photo in self._archived.items()]
        for record in self.files.values():
            if record.event is not None and record.sha256:
                try:
                    known.append((str(json.loads(record.event)["id"]), record.sha256))
                except (ValueError, KeyError, TypeError):
                    continue
        with self._lock:
            for photo_id, sha in known:
                self._take_id(photo_id, sha)

    # --- ids (any thread) -----------------------------------------------------

    def assign_id(self, photo_id: str, sha256: str) -> str:
        """``photo_id`` for these bytes, unless other bytes hold it: then ``<stem>~<sha>...`` (see events.py).

        The same bytes always get the id they got first, so a restart or a
        re-drive never renames a photo.
        """
        with self._lock:
            for candidate in (photo_id, disambiguated_id(photo_id, sha256), disambiguated_id(photo_id, sha256, 64)):
                held = self._ids.get(folded_id(candidate))
                if held is None:
                    self._take_id(candidate, sha256)
                    return candidate
                if held.sha256 == sha256:
                    return held.photo_id
        raise RuntimeError(f"every id for {photo_id!r} is held by other bytes")

    def _take_id(self, photo_id: str, sha256: str) -> None:
        folded = folded_id(photo_id)
        if folded in self._ids:
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR IGNORE INTO ids VALUES (?,?,?)", (folded, photo_id, sha256))
        self._ids[folded] = AssignedId(photo_id, sha256)

    # --- files (the scanner loop's thread) -----------------------------------

    def get(self, path: str) -> SeenFile | None:
        return self.files.get(path)

    def put(self, record: SeenFile) -> None:
        self.put_many([record])

    def put_many(self, records: Iterable[SeenFile]) -> None:
        rows = []
        for record in records:
            self.files[record.path] = record
            rows.append(
                (
                    os.fsencode(record.path),
                    *record.key,
                    record.outcome.value,
                    record.reason,
                    record.sha256,
                    record.event,
                    record.emitted_at,
                    record.redrives,
                    record.next_redrive_at,
                )
            )
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(_PUT_FILE, rows)

    def forget(self, paths: Iterable[str]) -> int:
        """Drop these paths (their files left the inbox); returns how many were known."""
        gone = [path for path in paths if self.files.pop(path, None) is not None]
        if gone:
            with self._lock, self._db:
                self._db.execute("BEGIN")
                self._db.executemany("DELETE FROM files WHERE path = ?", ((os.fsencode(path),) for path in gone))
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
            self._take_id(photo_id, sha256)

    def close(self) -> None:
        with self._lock:
            self._db.close()
