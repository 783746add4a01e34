"""A small archiver site on disk for tests: inbox, staging, initialised stores, and photos in them."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from dp3 import layout
from dp3.events import ErrorInfo, ErrorKind, JournalEntry, Status, make_photo_id, path_fields
from dp3.filenames import escape_os
from dp3_archiver.stores import Store

OWNER = "JAEGER-NICHOLAS"
CAPTURE = 1355517208  # 2012-12-14 UTC
DATE = "2012-12-14"


@dataclass
class Site:
    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def store_roots(self) -> list[Path]:
        return [self.root / "archive-a", self.root / "archive-b"]

    def stores(self, reserve_bytes: int = 0) -> list[Store]:
        return [Store(root, reserve_bytes=reserve_bytes) for root in self.store_roots]

    @classmethod
    def create(cls, root: Path, *, init: bool = True) -> Site:
        site = cls(root)
        for folder in (site.inbox, site.staging, *site.store_roots):
            folder.mkdir(parents=True, exist_ok=True)
        if init:
            for store in site.stores():
                store.init()
        return site

    def photo(
        self,
        name: str = "DSC00372.JPG",
        *,
        data: bytes | None = None,
        capture: int = CAPTURE,
        owner: str = OWNER,
        staged: bool = True,
        sub: str = "",
        photo_id: str | None = None,
    ) -> JournalEntry:
        """Put an original in the inbox (and its artifacts in staging); the Processed event for it."""
        data = secrets.token_bytes(2048) if data is None else data
        folder = self.inbox / owner / sub if sub else self.inbox / owner
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        photo_id = photo_id or make_photo_id(owner, capture, name)
        if staged:
            stage = layout.staging_dir(self.staging, photo_id)
            stage.mkdir(parents=True, exist_ok=True)
            (stage / layout.thumbnail_name(photo_id)).write_bytes(b"thumb:" + data[:64])
            (stage / layout.web_name(photo_id)).write_bytes(b"web:" + data[:256])
            meta = {"width": 10, "sha256": hashlib.sha256(data).hexdigest()}  # as the render task writes it
            (stage / layout.META_NAME).write_text(json.dumps(meta))
        return JournalEntry(
            id=photo_id,
            status=Status.PROCESSED,
            datetime=capture,
            owner=escape_os(owner),
            **path_fields(str(path)),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            service="dispatcher",
            meta={"width": 10},
        )


def failed(entry: JournalEntry, kind: ErrorKind, stage: str = "render") -> JournalEntry:
    return entry.next(
        Status.FAILED, service="dispatcher", meta=None, error=ErrorInfo(stage=stage, kind=kind, message="x")
    )


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every file under ``root``: a write shows up as a change."""
    result = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            stat = os.stat(Path(folder) / name)
            result[str(Path(folder) / name)] = (stat.st_ino, stat.st_mtime_ns)
    return result
