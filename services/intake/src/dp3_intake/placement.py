"""Putting a verified upload into ``inbox/<owner>/``: atomically, durably, and never twice.

The bytes are copied from the upload under a temporary dot-name the scanner
ignores (:data:`dp3.files.TEMP_PREFIX`) while being hashed; only when the hash
is the declared sha256 is the copy fsynced and given its final name with a
hard link (``link`` never replaces a file, so two placements racing for a name
cannot clobber each other), and the folder fsynced. What the name already
holds decides the rest (:func:`dp3_intake.rules.placement`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from dp3 import filenames
from dp3.files import CHUNK, fsync_dir, path_under, sha256_file, temp_path_for, write_all
from dp3_intake.rules import Placement, placement, tagged_name

log = logging.getLogger(__name__)


class ChecksumMismatch(Exception):
    """The upload's bytes do not hash to the declared sha256.

    Not a :class:`dp3.errors.DP3Error`: it is an answer to one request, turned into an HTTP
    response by the app, and never leaves the service.
    """

    def __init__(self, got: str) -> None:
        super().__init__(f"the bytes hash to {got[:12]}...")
        self.got = got


@dataclass(frozen=True)
class Placed:
    path: Path
    written: bool
    """False: the same bytes were already there, nothing was written."""


def _copy_hashed(source: Path, temp: Path) -> str:
    digest = hashlib.sha256()
    src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        dst = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            while chunk := os.read(src, CHUNK):
                digest.update(chunk)
                write_all(dst, chunk)
            os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return digest.hexdigest()


def _existing_sha256(path: Path) -> str | None:
    try:
        return sha256_file(path)[0]
    except FileNotFoundError:
        return None


def owner_folder(inbox: Path, owner: str) -> Path:
    """``inbox/<owner>``, created (and made durable) if missing; never through a symlink."""
    folder = path_under(inbox, owner)
    if not folder.is_dir():
        folder.mkdir(parents=False, exist_ok=True)
        fsync_dir(inbox)
    return folder


def place(inbox: Path, owner: str, name: str, source: Path, sha256: str) -> Placed:
    """Place ``source`` as ``inbox/<owner>/<name>`` (or its tagged name); raises ChecksumMismatch.

    The caller serialises placements within the process; the hard link keeps
    separate processes from overwriting each other's files.
    """
    folder = owner_folder(inbox, owner)
    candidates = (name, tagged_name(name, sha256), filenames.tagged(name, sha256, filenames.NAME_MAX))
    temp: Path | None = None
    try:
        index = 0
        while index < len(candidates):
            final = folder / candidates[index]
            decision = placement(_existing_sha256(final), sha256)
            if decision is Placement.ALREADY_THERE:
                return Placed(final, written=False)
            if decision is Placement.TAKEN:
                index += 1
                continue
            if temp is None:
                temp = temp_path_for(final)
                got = _copy_hashed(source, temp)
                if got != sha256:
                    raise ChecksumMismatch(got)
            try:
                os.link(temp, final)
            except FileExistsError:
                continue  # another writer took the name since the check: look at what it holds
            fsync_dir(folder)
            return Placed(final, written=True)
        raise FileExistsError(f"every name for {name} in {folder} holds other bytes")
    finally:
        if temp is not None:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
