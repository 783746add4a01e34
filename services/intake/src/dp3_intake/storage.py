"""tuspyserver's local storage, made durable and given DP3's own records of each upload.

What tuspyserver's ``LocalFileStorage`` does not do, and this subclass adds:

* **Bounded memory.** It keeps a whole PATCH body in memory until the end;
  here bytes go to the file every :data:`WRITE_EVERY` bytes, and the rest
  at :meth:`flush`, which fsyncs before tuspyserver writes the new offset and
  replies: an acknowledged offset is on disk.
* **One request per upload at a time, for certain.** tuspyserver's lock is
  an ``flock`` on ``.locks/<uid>.lock`` that its release *unlinks*: a request
  already waiting holds the old file's lock while a newer one creates a new
  file and takes that, and both write the same upload at once, through the
  same pending buffer (a 0.5 Mbps run with 20-60 s outages placed bytes that
  did not hash to the declared sha256). Here the lock is an ``asyncio.Lock``
  per upload in this process, and one intake process owns the uploads folder
  (:func:`hold_uploads_folder`). A request that cannot have it within
  ``lock_wait`` seconds gets tuspyserver's 503; a body that stalls is cut
  off sooner (:mod:`dp3_intake.idle`), so a dead link never holds an upload.
* **Bytes past the offset are dropped.** The data file can hold bytes that
  were written but never acknowledged (the process was killed between the
  write and the offset's update). When a PATCH takes the upload's lock the
  file is cut back to the recorded offset, so the next bytes land where the
  client thinks they do.
* **Expiry counts from the last byte.** Every offset update moves
  ``expires`` to ``DP3_INTAKE_EXPIRY_DAYS`` from now (tuspyserver fixes it at
  creation), and the info sidecar's rename is made durable (fsync of the folder).
* **HEAD works without ``filetype``.** tuspyserver refuses HEAD for an upload
  whose metadata lacks it; the sidecar gets a generic one.
* **DP3 records.** ``<uid>.dp3`` says whose upload it is and what was declared
  (:class:`UploadRecord`); ``<uid>.done`` says where a completed upload was
  placed, so a second completion places nothing. Completed data is deleted at
  once; the records stay until expiry so a client can still ask.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from tuspyserver.storage.local import LocalFileStorage

from dp3.errors import ConfigError
from dp3.files import atomic_write_bytes, fsync_dir, write_all
from dp3_intake import metrics

WRITE_EVERY = 1 << 20
"""Bytes of a PATCH body held in memory before they are written to the file."""
OWNER_LOCK = ".intake.lock"
"""In the uploads folder: held (``flock``, never unlinked) by the one intake process that writes it."""


class FolderInUse(ConfigError):
    """Another intake process holds the uploads folder: a deployment mistake, said at start in one line."""


def hold_uploads_folder(folder: Path) -> int:
    """Take the uploads folder for this process (the lock goes with the process); the descriptor to keep open.

    Uploads are locked per upload in memory, so two processes on one folder
    could write one upload at once: the second one is refused at start.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / OWNER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FolderInUse(f"another dp3-intake is using {folder} (one intake per uploads folder)") from None
    return fd


class UploadRecord(BaseModel):
    """What the intake knows of one upload beyond tus: who sent it and what was declared."""

    uid: str
    device: str
    owner: str
    filename: str
    sha256: str
    size: int
    captured_at: str | None = None
    created_at: float


class DoneRecord(BaseModel):
    path: str
    written: bool


Progress = Callable[[UploadRecord, int], None]
"""Called after each durable offset update with the new offset."""


class DurableStorage(LocalFileStorage):
    """The uploads folder: tus data and info files plus the intake's records."""

    def __init__(
        self,
        files_dir: Path,
        *,
        expiry_days: float,
        lock_wait: float = 30.0,
        on_progress: Progress | None = None,
    ) -> None:
        super().__init__(str(files_dir))
        self.root = Path(self.files_dir)
        self.expiry_days = expiry_days
        self.lock_wait = lock_wait
        self.on_progress = on_progress
        self._files: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}

    # --- records ---------------------------------------------------------------

    def record_path(self, uid: str) -> Path:
        return Path(self._path(uid) + ".dp3")

    def done_path(self, uid: str) -> Path:
        return Path(self._path(uid) + ".done")

    def write_record(self, record: UploadRecord) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.record_path(record.uid), record.model_dump_json().encode())

    def read_record(self, uid: str) -> UploadRecord | None:
        try:
            return UploadRecord.model_validate_json(self.record_path(uid).read_bytes())
        except (OSError, ValueError):
            return None

    def write_done(self, uid: str, done: DoneRecord) -> None:
        atomic_write_bytes(self.done_path(uid), done.model_dump_json().encode())

    def read_done(self, uid: str) -> DoneRecord | None:
        try:
            return DoneRecord.model_validate_json(self.done_path(uid).read_bytes())
        except (OSError, ValueError):
            return None

    def records(self) -> list[UploadRecord]:
        """Every upload's record (a few hundred at most: one per photo in flight)."""
        if not self.root.is_dir():
            return []
        found = []
        for name in os.listdir(self.root):
            if name.endswith(".dp3") and (record := self.read_record(name[: -len(".dp3")])) is not None:
                found.append(record)
        return found

    def offset(self, uid: str) -> int:
        try:
            return int(json.loads(Path(self._info_path(uid)).read_text())["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def drop_data(self, uid: str) -> None:
        """Delete a placed upload's bytes; its records stay until expiry."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(uid))

    # --- the tus backend ---------------------------------------------------------

    async def exists(self, uid: str) -> bool:
        return await asyncio.to_thread(lambda: os.path.exists(self._path(uid)) or self.done_path(uid).exists())

    async def append(self, uid: str, chunk: bytes) -> None:
        pending = self._pending[uid]
        pending.extend(chunk)
        if len(pending) >= WRITE_EVERY:
            data = bytes(pending)
            pending.clear()
            await asyncio.to_thread(self._write, uid, data, False)

    async def flush(self, uid: str) -> None:
        data = bytes(self._pending.pop(uid, b""))
        await asyncio.to_thread(self._write, uid, data, True)

    def _write(self, uid: str, data: bytes, sync: bool) -> None:
        fd = self._files.get(uid)
        if fd is None:
            if not data:
                return  # nothing written in this request: nothing to sync (and no file to re-create)
            fd = os.open(self._path(uid), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._files[uid] = fd
        write_all(fd, data)
        metrics.BYTES.inc(len(data))
        if sync:
            os.fsync(fd)
            os.close(self._files.pop(uid))

    async def write_info(self, uid: str, data: dict[str, Any]) -> None:
        data = {**data, "expires": formatdate(time.time() + self.expiry_days * 86400, usegmt=True)}
        # tuspyserver's HEAD answers 400 for an upload without ``filetype`` metadata, which the
        # contract does not ask of a device: give every upload the generic one.
        data["metadata"] = {"filetype": "application/octet-stream", **(data.get("metadata") or {})}
        await super().write_info(uid, data)
        await asyncio.to_thread(fsync_dir, self.root)
        record = self.read_record(uid)
        if record is not None and self.on_progress is not None:
            self.on_progress(record, int(data.get("offset") or 0))

    async def delete(self, uid: str) -> None:
        await super().delete(uid)
        fd = self._files.pop(uid, None)
        if fd is not None:
            os.close(fd)
        for path in (self.record_path(uid), self.done_path(uid)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    @contextlib.asynccontextmanager
    async def lock(self, uid: str) -> AsyncIterator[None]:  # type: ignore[override] # the base declares the same thing loosely
        """The upload's one writer: waits at most ``lock_wait`` seconds (TimeoutError: tuspyserver's 503)."""
        guard = self._locks.setdefault(uid, asyncio.Lock())
        self._lock_users[uid] = self._lock_users.get(uid, 0) + 1
        try:
            async with asyncio.timeout(self.lock_wait):
                await guard.acquire()
            try:
                # Whatever an earlier request on this upload left in memory (one refused mid-body
                # leaves its buffer and file open) was never acknowledged: it must not be appended.
                self._pending.pop(uid, None)
                fd = self._files.pop(uid, None)
                if fd is not None:
                    os.close(fd)
                await asyncio.to_thread(self._trim, uid)
                yield
            finally:
                guard.release()
        finally:
            self._lock_users[uid] -= 1
            if not self._lock_users[uid]:
                del self._lock_users[uid], self._locks[uid]

    async def settle(self, uid: str) -> None:
        """Wait until no request is writing ``uid`` (at most ``lock_wait`` seconds; TimeoutError past that).

        A HEAD waits here before it reads the offset, as tusd's does: answered
        while a PATCH whose link died is still taking in its last bytes (the
        laptop gave up on it, its kernel did not), the offset would be stale, and
        the laptop's next PATCH would carry a whole chunk over the link only to be
        refused with 409 once that earlier PATCH moved the offset.
        """
        async with self.lock(uid):
            pass

    def _trim(self, uid: str) -> None:
        """Make the data file and the recorded offset agree, before any byte is appended.

        Bytes past the offset were never acknowledged: cut. An offset past the
        bytes (tuspyserver records one after an unexpected error without
        flushing) is brought back to what is on disk, so the client resends.
        """
        if self.done_path(uid).exists():
            return
        info_path = Path(self._info_path(uid))
        try:
            info = json.loads(info_path.read_text())
            offset = int(info["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        try:
            size = os.path.getsize(self._path(uid))
        except FileNotFoundError:
            size = 0
        if size > offset:
            os.truncate(self._path(uid), offset)
            with open(self._path(uid), "rb+") as stream:
                os.fsync(stream.fileno())
        elif size < offset:
            atomic_write_bytes(info_path, json.dumps({**info, "offset": size}).encode())

    # --- housekeeping ------------------------------------------------------------

    def last_activity(self, uid: str) -> float:
        """When the upload last changed (its info or record file's mtime)."""
        times = []
        for path in (Path(self._info_path(uid)), self.record_path(uid), self.done_path(uid)):
            with contextlib.suppress(OSError):
                times.append(path.stat().st_mtime)
        return max(times, default=0.0)

    def uids(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {name.split(".", 1)[0] for name in os.listdir(self.root) if len(name.split(".", 1)[0]) == 32}


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
