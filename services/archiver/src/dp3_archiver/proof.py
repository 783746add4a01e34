"""Proofs of verified bytes that outlive the read that made them, and the rule for trusting one later.

Invariant 1 asks that at deletion time every store's copy, read back from the
store, has the inbox file's sha256. The archiver reads every copy back from
the device right after writing it (:meth:`~dp3_archiver.stores.Store.ensure_copy`)
and hashes the inbox file while it copies it. Reading all of it again at
collection, moments later, proves nothing new unless a file could have changed
in between; what can change a file is visible in its identity
``(device, inode, size, mtime_ns, ctime_ns)``:

* replaced, restored, re-created, renamed over: another inode (or device);
* written in place, truncated, extended, by ``write``, ``O_DIRECT``, or a
  shared mapping (whose first write after each writeback moves the times):
  the ctime moves;
* the mtime put back (``touch -r``, ``os.utime``): the ctime moves, and no
  system call sets a ctime;
* a store unmounted and another file system mounted there: another device.

What is left is a write that bypasses the file system (to the raw block
device, or on the file server behind a network store) and the media decaying
under a file; the periodic fixity audit is the guard for those, and a proof
is trusted only for :data:`PROOF_SECONDS`. docs/archiver.md gives the full
argument.

Timestamps have a granularity: on file systems without fine-grained
timestamps a write within the same clock tick as the last change leaves the
ctime as it was (the "racy" case git knows). A proof is therefore taken only
from a read that began at least :data:`SETTLE_NS` after the file's ctime
(:func:`settled`), so any later write lands in a later tick and moves it.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

PROOF_SECONDS = 600.0
"""How long a read-back stands in for a new one: far longer than a photo waits between archive and
collection, short enough that decay of the media under a copy is a matter for the fixity audit."""

SETTLE_NS = max(2 * int(time.clock_getres(getattr(time, "CLOCK_REALTIME_COARSE", time.CLOCK_REALTIME)) * 1e9), 10**7)
"""Two ticks of the kernel's coarse clock (which stamps file times), at least 10 ms."""

LEDGER_SIZE = 4096
"""Proofs kept per store: a few minutes of photos at the head node's rate; older ones are read again."""


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


@dataclass(frozen=True)
class CopyProof:
    """A store copy verified by reading it back, and the file its bytes were copied from, if read in the copy."""

    copy: ReadProof
    source: ReadProof | None


def still_proven(proof: ReadProof | None, sha256: str, now: Identity | None, monotonic_now: float) -> bool:
    """Whether ``proof`` shows, without reading again, that the file is ``sha256`` now (its identity ``now``)."""
    return (
        proof is not None
        and now is not None
        and proof.sha256 == sha256
        and proof.identity == now
        and 0.0 <= monotonic_now - proof.read_at <= PROOF_SECONDS
    )


class Ledger:
    """One store's latest copy proofs, by the copy's path; bounded, safe across the archiver's threads.

    Only this process's own read-backs go in: a proof is never taken from an
    event, a file or another process, so a replica that did not verify a copy
    reads it again.
    """

    def __init__(self, size: int = LEDGER_SIZE) -> None:
        self._size = size
        self._proofs: OrderedDict[str, CopyProof] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, proof: CopyProof) -> None:
        with self._lock:
            self._proofs[proof.copy.path] = proof
            self._proofs.move_to_end(proof.copy.path)
            while len(self._proofs) > self._size:
                self._proofs.popitem(last=False)

    def get(self, path: str) -> CopyProof | None:
        with self._lock:
            return self._proofs.get(path)

    def forget(self, path: str) -> None:
        with self._lock:
            self._proofs.pop(path, None)
