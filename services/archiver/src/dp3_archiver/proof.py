"""Proofs of verified bytes that outlive the read that made them, and the rule for trusting one later.

Invariant 1 asks that at deletion time every store's copy, read back from the
store, has the inbox file's sha256. The archiver reads every copy back from
the device right after writing it (:meth:`~dp3_archiver.stores.Store.ensure_copy`)
and hashes the inbox file while it copies it. Reading all of it again at
collection, moments later, proves nothing new unless a file could have changed
in between, and what can change a file through the file system shows in its
identity: a read whose file kept its identity throughout, and began after its
last change had settled, gives a :class:`dp3.copies.ReadProof` (that module
says why).

What is left is a write that bypasses the file system (to the raw block
device, or on the file server behind a network store) and the media decaying
under a file; the periodic fixity audit is the guard for those, and a proof
is trusted only for :data:`PROOF_SECONDS`, and only by the process that read:
it is kept here in memory, never taken from an event, a file or another
process. docs/archiver.md gives the full argument.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from dp3.copies import Identity, ReadProof

PROOF_SECONDS = 600.0
"""How long a read-back stands in for a new one: far longer than a photo waits between archive and
collection, short enough that decay of the media under a copy is a matter for the fixity audit."""

LEDGER_SIZE = 4096
"""Proofs kept per store: a few minutes of photos at the head node's rate; older ones are read again."""


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
