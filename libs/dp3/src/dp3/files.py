"""File primitives the invariants rest on: streaming hashes, atomic writes, safe paths.

An atomic write is: a temporary file in the same folder, fsync, rename over
the final name, fsync of the folder. After a crash at any point the final
name holds either the old content or the whole new one, never a torn file,
and once the call returns the new name survives a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dp3.filenames import NAME_MAX, head_within

CHUNK = 1 << 20  # 1 MiB: large enough for throughput, small enough for memory
TEMP_PREFIX = ".dp3-tmp-"
"""Temporary files start with this, so scanners and audits can skip and reap them."""


def sha256_stream(stream: BinaryIO) -> tuple[str, int]:
    """Hex sha256 and byte count of everything left in ``stream``."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
"""Absent on Windows, where the field agent runs too: there a symlink is refused by ``lstat`` first."""


def sha256_file(path: Path, *, follow_symlinks: bool = False) -> tuple[str, int]:
    """Hex sha256 and size of a file, read in chunks; refuses symlinks unless asked."""
    if not follow_symlinks and not _NOFOLLOW and os.path.islink(path):
        raise OSError(errno.ELOOP, "a symlink is not followed", str(path))
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | (0 if follow_symlinks else _NOFOLLOW)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as stream:
        return sha256_stream(stream)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` to ``fd``: ``os.write`` may write fewer than it was given."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new name in ``directory`` durable."""
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows (the field agent's laptops): a folder cannot be opened to fsync; NTFS journals renames
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(final: Path) -> Path:
    """A fresh temporary name beside ``final``, within 255 bytes (cut by bytes, never inside a character)."""
    prefix = f"{TEMP_PREFIX}{secrets.token_hex(6)}-"
    return final.with_name(prefix + head_within(final.name, NAME_MAX - len(prefix)))


@contextlib.contextmanager
def atomic_writer(final: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``final``; on success it replaces ``final`` durably.

    The file is created with ``mode`` (less the umask), so it is never readable
    by more people than that, not even for a moment. On an exception the
    temporary file is removed and ``final`` is untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(final)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    fsync_dir(final.parent)


def atomic_write_bytes(final: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``final`` atomically and durably."""
    with atomic_writer(final, mode=mode) as stream:
        stream.write(data)


def event_path_under(root: Path, path: str | Path) -> Path:
    """The file an event or a record names below ``root``, as a plain path; raises :class:`OutsideRoot`.

    The one rule every service applies to a path another service wrote (an
    entry's ``fs_path``, a record's store folder): it must be absolute and,
    once normalised lexically, strictly below ``root``; no component below
    ``root`` may be a symlink. Relative paths are refused: no event carries
    one, and which folder they would mean depends on who reads them. The
    path's exact bytes (``surrogateescape`` str) are kept as they are.
    """
    base = Path(os.path.abspath(root))
    candidate = Path(os.path.normpath(path))
    if not candidate.is_absolute() or candidate == base or not is_within(base, candidate):
        raise OutsideRoot(f"{os.fsdecode(path)!r} is not inside {base}")
    return path_under(base, candidate.relative_to(base))


SECRET_MODE = 0o600


def write_secret(final: Path, data: bytes) -> None:
    """Write a file that holds a secret (a key, a password, a configuration with one): created 0600, atomically."""
    atomic_write_bytes(final, data, mode=SECRET_MODE)


def atomic_copy(source: Path, final: Path) -> tuple[str, int]:
    """Copy ``source`` to ``final`` atomically; returns sha256 and size of the bytes copied.

    The source is opened without following symlinks.
    """
    digest = hashlib.sha256()
    size = 0
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as src, atomic_writer(final) as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class OutsideRoot(ValueError):
    """A path that would leave its root, or pass through a symlink.

    A ``ValueError``, not a :class:`dp3.errors.DP3Error`: callers catch it as a bad value.
    """


def path_under(root: Path, relative: str | Path) -> Path:
    """``root / relative``, refusing absolute parts, ``..`` and symlinked components.

    Used wherever a name from an event or a request meets the file system, so
    that nothing outside the root is ever read, followed or deleted.
    """
    rel = Path(relative)
    if rel.is_absolute() or any(part in ("..", "") for part in rel.parts) or not rel.parts:
        raise OutsideRoot(f"{str(relative)!r} is not a plain relative path")
    candidate = root
    for part in rel.parts:
        candidate = candidate / part
        if candidate.is_symlink():
            raise OutsideRoot(f"{candidate} is a symlink")
    return candidate


def is_within(root: Path, path: Path) -> bool:
    """True if ``path`` is ``root`` or below it, lexically (no symlink resolution)."""
    try:
        Path(os.path.normpath(path)).relative_to(os.path.normpath(root))
    except ValueError:
        return False
    return True


SECRET_MODE = 0o600


def ensure_secret_file(path: Path) -> bool:
    """Create ``path`` holding a new random secret, readable by its owner alone; True if created.

    An existing file is kept as it is (the secret must survive restarts).
    The file is 0600 from its first byte (no chmod after the write, when
    another user could already have read it), and it appears whole or not at
    all: written under a temporary name, then linked to ``path``, which fails
    rather than overwrite a secret another process created meanwhile.
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(secrets.token_urlsafe(32).encode())
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    fsync_dir(path.parent)
    return True
