"""A photo's copies in the stores: where they are, how they are read back, and when they are enough.

The archiver's collector deletes an inbox original only when every configured
store holds a verified copy (invariant 1, end-to-end numcopies as git-annex
does it); the intake's receipt tells a field laptop it may free its copy on
exactly the same condition. Both locate a copy, read it back and apply the
rule through this module, so the two answers cannot drift apart.
"""

from __future__ import annotations

import hashlib
import os
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dp3 import layout
from dp3.files import CHUNK


@dataclass(frozen=True)
class CopyRead:
    """A copy as read back from the storage: its bytes' sha256 and size, and which file it is."""

    sha256: str
    size: int
    device: int
    inode: int


def read_uncached(path: Path) -> CopyRead:
    """sha256 and size of ``path`` read from the storage, not from the page cache (no symlinks)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        digest = hashlib.sha256()
        size = 0
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
            size += len(chunk)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return CopyRead(digest.hexdigest(), size, info.st_dev, info.st_ino)
    finally:
        os.close(fd)


def store_folder(root: Path, archives: Sequence[str], capture_time: int, zone: zoneinfo.ZoneInfo) -> Path:
    """The date folder of a photo in the store at ``root``: the one its events name, else its capture day's."""
    for folder in archives:
        if Path(folder).parent == root:
            return Path(folder)
    return root / layout.date_folder(capture_time, zone)


def all_verified(read_back: Mapping[str, str | None], stores: Sequence[str], sha256: str) -> bool:
    """The collection rule's first half: every configured store returned a copy with ``sha256``.

    ``read_back`` maps each store's label to the sha256 of its copy as just read
    (None: no copy). No configured store means no verified copy: never True.
    """
    return bool(stores) and all(read_back.get(store) == sha256 for store in stores)
