"""A photo's copies in the stores: where they are, how they are read back, and when they are enough.

The archiver's collector deletes an inbox original only when every configured
store holds a verified copy (invariant 1, end-to-end numcopies as git-annex
does it); the intake's receipt tells a field laptop it may free its copy on
exactly the same condition. Both locate a copy, read it back and apply the
rule through this module, so the two answers cannot drift apart.

A read-back also says whether it proves the file as it is afterwards
(:class:`ReadProof`): what can change a file's bytes through the file system
shows in its identity ``(device, inode, size, mtime_ns, ctime_ns)``:

* replaced, restored, re-created, renamed over: another inode (or device);
* written in place, truncated, extended, by ``write``, ``O_DIRECT``, or a
  shared mapping (whose first write after each writeback moves the times):
  the ctime moves;
* the mtime put back (``touch -r``, ``os.utime``): the ctime moves, and no
  system call sets a ctime;
* a store unmounted and another file system mounted there: another device.

Timestamps have a granularity: on file systems without fine-grained
timestamps a write within the same clock tick as the last change leaves the
ctime as it was (the "racy" case git knows). A read therefore proves the file
only if it began at least :data:`SETTLE_NS` after the file's ctime
(:func:`settled`), so any later write lands in a later tick and moves it.

Whether and for how long such a proof may stand in for a new read is the
archiver's rule (``dp3_archiver.proof``), for its own reads only: a proof
never crosses a process, so the intake's receipt reads every copy back itself.
docs/archiver.md gives the full argument.
"""

from __future__ import annotations

import hashlib
import os
import time
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from dp3 import layout
from dp3.files import CHUNK

SETTLE_NS = max(2 * int(time.clock_getres(getattr(time, "CLOCK_REALTIME_COARSE", time.CLOCK_REALTIME)) * 1e9), 10**7)
"""Two ticks of the kernel's coarse clock (which stamps file times), at least 10 ms."""


class Identity(NamedTuple):
    """What changes when a file's bytes change by any system call (see the module docstring)."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


def identity_of(info: os.stat_result) -> Identity:
    return Identity(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def settled(identity: Identity, read_started_ns: int) -> bool:
    """A read that began at ``read_started_ns`` (wall clock) can prove the file: its last change is ticks older."""
    return read_started_ns - identity.ctime_ns >= SETTLE_NS


def settle_wait(identity: Identity, now_ns: int) -> float | None:
    """Seconds to wait before reading so that the read can prove the file; None if no short wait does.

    A ctime further in the future than one settling period comes from a file
    server whose clock is ahead of ours: waiting for it proves nothing.
    """
    wait_ns = identity.ctime_ns + SETTLE_NS - now_ns
    if wait_ns <= 0:
        return 0.0
    if wait_ns > SETTLE_NS:
        return None
    return wait_ns / 1e9


@dataclass(frozen=True)
class ReadProof:
    """A whole file read and hashed, unchanged from before the read began to after it ended."""

    path: str
    sha256: str
    identity: Identity
    read_at: float  # time.monotonic() when the read ended


def proof_of_read(path: Path, sha256: str, before: Identity, after: Identity, started_ns: int) -> ReadProof | None:
    """The proof a whole read of ``path`` gives, or None: the file changed while read, or too recently before."""
    if before != after or not settled(before, started_ns):
        return None
    return ReadProof(os.fspath(path), sha256, before, time.monotonic())


@dataclass(frozen=True)
class CopyRead:
    """A copy as read back from the storage: its bytes' sha256 and size, which file it is, and a proof if any."""

    sha256: str
    size: int
    device: int
    inode: int
    proof: ReadProof | None = None  # set when the read proves the file as it was afterwards


def one_file(copies: Mapping[str, CopyRead | None]) -> tuple[str, str] | None:
    """The first two stores whose copies are one file (same device and inode), or None.

    Two such "copies" are one copy under two names (a bind mount the mount table
    did not show, a hard link across stores): the collector refuses to delete
    the original on them, and a receipt counts them once (invariant 9).
    """
    seen: dict[tuple[int, int], str] = {}
    for label, copy in copies.items():
        if copy is None:
            continue
        other = seen.setdefault((copy.device, copy.inode), label)
        if other != label:
            return other, label
    return None


def read_uncached(path: Path, *, settle: bool = False) -> CopyRead:
    """sha256 and size of ``path`` read from the storage, not from the page cache (no symlinks), and its proof.

    ``settle``: if the file changed within the last clock ticks, wait those few
    milliseconds before reading, so that the read can prove the file (see
    :func:`settled`); a fresh copy always has.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        before = identity_of(os.fstat(fd))
        if settle and (wait := settle_wait(before, time.time_ns())):
            time.sleep(wait)
        started = time.time_ns()
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        digest = hashlib.sha256()
        size = 0
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
            size += len(chunk)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        sha256 = digest.hexdigest()
        proof = proof_of_read(path, sha256, before, identity_of(os.fstat(fd)), started)
        return CopyRead(sha256, size, before.device, before.inode, proof)
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
    (None: no copy), or as this process's own unexpired proof of that read
    shows it (the archiver's collector, ``dp3_archiver.proof``). No configured
    store means no verified copy: never True.
    """
    return bool(stores) and all(read_back.get(store) == sha256 for store in stores)
