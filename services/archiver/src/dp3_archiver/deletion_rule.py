"""The deletion rule (invariant 1), small and alone so it can be read in one go.

An inbox original is deleted only if

* every configured store returned, read back just now (or provably unchanged
  since this process read it back), a copy whose sha256 equals the archived
  sha256 (:func:`dp3.copies.all_verified`, the rule the intake's receipts
  apply to their own read-backs), and
* the inbox file has that sha256 at deletion time: hashed now, or it is
  provably the file this process hashed with that sha256 while copying it
  into the stores (``hashed``: same device, inode, size, mtime and ctime, see
  :mod:`dp3_archiver.proof`), and it is still that very file right before the
  unlink (an in-place rewrite that puts the old mtime back with ``touch -r``
  or ``os.utime`` still moves the ctime, which no user call can set), and
* its path is a plain path inside the inbox: no ``..``, no symlink anywhere on
  the way, not a symlink itself, a regular file.

Otherwise nothing is deleted. A user who replaced the file keeps the new one;
it is detected as a new upload.
"""

from __future__ import annotations

import enum
import os
import stat
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from dp3.copies import ReadProof, all_verified, identity_of
from dp3.files import OutsideRoot, event_path_under, fsync_dir, sha256_stream
from dp3_archiver.proof import still_proven


class Deletion(enum.Enum):
    DELETED = "deleted"  # it was the archived bytes, now gone from the inbox
    ABSENT = "absent"  # no file there (collected before, or removed by the user)
    CHANGED = "changed"  # other bytes now: left in place
    NOT_VERIFIED = "not_verified"  # some store has no verified copy: left in place
    REFUSED = "refused"  # not a plain regular file inside the inbox: never touched


def same_file(before: os.stat_result, now: os.stat_result) -> bool:
    """Still the file that was hashed: not replaced (device, inode) and not written since (size, mtime, ctime)."""
    return identity_of(before) == identity_of(now)


def collect_original(
    inbox: Path,
    path: Path,
    archived_sha256: str,
    read_back: Mapping[str, str | None],
    stores: Sequence[str],
    *,
    hashed: ReadProof | None = None,
) -> Deletion:
    """Apply the rule. ``read_back`` maps each store to the sha256 of its copy as verified (None: none).

    ``hashed``: this process's earlier whole read of the inbox file, which
    stands for hashing it again if the file is provably unchanged since.
    """
    if not all_verified(read_back, stores, archived_sha256):
        return Deletion.NOT_VERIFIED
    try:
        path = event_path_under(inbox, path)
    except OutsideRoot:
        return Deletion.REFUSED
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return Deletion.ABSENT
    except OSError:
        return Deletion.REFUSED  # a symlink (ELOOP), or unreadable: leave it
    before = os.fstat(fd)
    if not stat.S_ISREG(before.st_mode):
        os.close(fd)
        return Deletion.REFUSED
    proven = hashed is not None and hashed.path == os.fspath(path)
    if proven and still_proven(hashed, archived_sha256, identity_of(before), time.monotonic()):
        os.close(fd)
    else:
        with os.fdopen(fd, "rb") as stream:
            sha256, _size = sha256_stream(stream)
        if sha256 != archived_sha256:
            return Deletion.CHANGED
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return Deletion.ABSENT
    if not same_file(before, now):
        return Deletion.CHANGED  # replaced or rewritten while we hashed it
    os.unlink(path)
    fsync_dir(path.parent)
    return Deletion.DELETED
