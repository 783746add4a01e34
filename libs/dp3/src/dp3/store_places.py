"""Are the configured stores distinct places? (invariant 9)

Two stores that are one physical place under two names (the same folder
written twice or spelt differently, a symlink, a bind mount of the other store
or of a folder inside it, one store nested inside another, or a store marker
copied from one store into the other) would let the archiver verify "two"
copies that are one file, and then delete the original. So every user of the
stores (the archiver before it archives and again right before it deletes an
original, ``dp3 stores init``, the portal) asks :func:`aliases` first and
refuses to go on while it names a pair.

A store's *place* is gathered by :func:`place_of` (a handful of system calls,
cheap enough to run before every deletion) and compared by the pure
:func:`aliases`:

* the root's device and inode (``stat``, which follows symlinks and sees
  through bind mounts of the root itself);
* the root's real path (``realpath``): one real path inside another;
* where the root lies inside its file system, from ``/proc/self/mountinfo``
  and the mount id of an open descriptor: a bind mount of a folder inside
  another store, or of a folder that contains it, shares the device but not
  the path, so real paths alone cannot see it;
* the store marker's id (``dp3 stores init`` writes a random one): a marker
  copied into another store, or the same network share mounted twice;
* for a root on an overlay mount, the folders it is layered from (its lower
  and upper folders, from the mount's options): an overlay over another
  store shows that store's files as its own, with another device number, so
  neither the inode nor a copy's identity gives it away, and its own marker
  in the upper folder hides the other's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dp3.layout import STORE_MARKER

MOUNTINFO = Path("/proc/self/mountinfo")
MARKER_READ_LIMIT = 64 * 1024
_OCTAL = re.compile(rb"\\([0-7]{3})")


@dataclass(frozen=True)
class StorePlace:
    """Where one configured store root really is."""

    label: str  # as configured
    device: int
    inode: int
    real_path: str
    filesystem: str | None = None  # "major:minor" of the mount holding the root (None: unknown)
    path_in_filesystem: str | None = None  # the root's path inside that file system
    marker_id: str | None = None  # None: no marker, or an empty one
    layers: tuple[str, ...] = ()  # an overlay root: the real paths of the folders it is made of


@dataclass(frozen=True)
class Alias:
    """Two configured stores that are not distinct places, and why."""

    first: str
    second: str
    reason: str  # same_folder, nested, same_marker
    detail: str

    def line(self) -> str:
        """The one-line refusal an operator reads (log, ``dp3 stores``, status page)."""
        return (
            f"stores {self.first} and {self.second} are not distinct places ({self.detail}); "
            "nothing is archived or collected until every store is a place of its own"
        )


def _inside(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


FolderCheck = Callable[[StorePlace, str, StorePlace], bool]
"""``(outer, folder, inner)``: is ``inner``'s root the folder ``folder`` of ``outer``'s, as the files say?"""


def aliases(places: Sequence[StorePlace], is_folder_of: FolderCheck | None = None) -> list[Alias]:
    """Every pair of places that are one place, in configuration order. Pure (but for ``is_folder_of``).

    ``is_folder_of`` confirms what the mount table says (one root a folder of
    the other's file system), which a network file system can get wrong: NFS
    shows ``/`` as the root of every mount, so a sub-export ``srv:/e/a`` and a
    folder ``b`` of ``srv:/e`` would read as nested. None: the table is trusted.
    """
    found: list[Alias] = []
    for i, a in enumerate(places):
        for b in places[i + 1 :]:
            alias = _alias(a, b, is_folder_of)
            if alias is not None:
                found.append(alias)
    return found


def _alias(a: StorePlace, b: StorePlace, is_folder_of: FolderCheck | None = None) -> Alias | None:
    if (a.device, a.inode) == (b.device, b.inode):
        return Alias(a.label, b.label, "same_folder", f"both are the folder {a.real_path}")
    for outer, inner in ((a, b), (b, a)):
        if _inside(outer.real_path, inner.real_path):
            return Alias(a.label, b.label, "nested", f"{inner.label} lies inside {outer.label}")
    # Equal paths inside one file system with different inodes mean the mount table cannot
    # place these roots (e.g. two NFS exports sharing a superblock both show "/"): no verdict.
    if a.filesystem is not None and a.filesystem == b.filesystem and a.path_in_filesystem != b.path_in_filesystem:
        for outer, inner in ((a, b), (b, a)):
            assert outer.path_in_filesystem is not None and inner.path_in_filesystem is not None
            if _inside(outer.path_in_filesystem, inner.path_in_filesystem):
                folder = os.path.relpath(inner.path_in_filesystem, outer.path_in_filesystem)
                if is_folder_of is not None and not is_folder_of(outer, folder, inner):
                    continue
                detail = f"{inner.label} is the folder {folder!r} of {outer.label} mounted under a second name"
                return Alias(a.label, b.label, "nested", detail)
    for over, under in ((a, b), (b, a)):
        for layer in over.layers:
            if _inside(layer, under.real_path) or _inside(under.real_path, layer):
                detail = f"{over.label} is an overlay made of {layer}, which is or holds {under.label}"
                return Alias(a.label, b.label, "nested", detail)
    if a.marker_id is not None and a.marker_id == b.marker_id:
        return Alias(a.label, b.label, "same_marker", f"both carry store marker id {a.marker_id}")
    return None


def marker_id(body: bytes) -> str | None:
    """The marker's ``id``; a marker from before ids counts by its bytes (an empty one has none)."""
    if not body.strip():
        return None
    with contextlib.suppress(ValueError, AttributeError):
        found = json.loads(body).get("id")
        if isinstance(found, str) and found:
            return found
    return "sha256:" + hashlib.sha256(body).hexdigest()[:16]


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \ooo (octal); every other byte is as it is.
    raw = _OCTAL.sub(lambda match: bytes([int(match.group(1), 8)]), os.fsencode(field))
    return os.fsdecode(raw)


def read_mount_table() -> str | None:
    """``/proc/self/mountinfo`` as ``os`` strings: mount points are names, any bytes (a share at ``caf\\xe9``)."""
    try:
        return os.fsdecode(MOUNTINFO.read_bytes())
    except OSError:
        return None  # not Linux, or no /proc: device, inode, real paths and markers still count


@dataclass(frozen=True)
class _Mount:
    filesystem: str  # major:minor
    root: str  # the mount's root inside the file system
    point: str
    layers: tuple[str, ...]  # an overlay's lower and upper folders, as given at mount time


_LAYER_OPTIONS = ("lowerdir", "lowerdir+", "upperdir", "datadir+")


def _overlay_layers(fstype: str, options: str) -> tuple[str, ...]:
    """The folders an overlay mount is made of, from its super options (``lowerdir=/x:/y,upperdir=/z``)."""
    if fstype != "overlay":
        return ()
    layers: list[str] = []
    for option in options.split(","):  # a comma inside a path is written \054 (octal)
        key, _, value = option.partition("=")
        if key in _LAYER_OPTIONS and value:
            # lowerdir lists folders split by ':'; a ':' inside one is written '\:'.
            parts = re.split(r"(?<!\\):", value) if key == "lowerdir" else [value]
            # Only absolute paths can be compared with the stores' real paths.
            layers += [found for part in parts if (found := _unescape(part).replace("\\:", ":")).startswith("/")]
    return tuple(layers)


def _mount_of(fd: int, table: str | None) -> _Mount | None:
    """The mount holding ``fd`` (from the mount table)."""
    if table is None:
        return None
    try:
        fdinfo = Path(f"/proc/self/fdinfo/{fd}").read_text()
        mount_id = next(line.split()[1] for line in fdinfo.splitlines() if line.startswith("mnt_id:"))
    except (OSError, StopIteration, IndexError):
        return None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0] == mount_id:
            tail = fields[fields.index("-", 6) + 1 :] if "-" in fields[6:] else []
            layers = _overlay_layers(tail[0], tail[2]) if len(tail) >= 3 else ()
            return _Mount(fields[2], _unescape(fields[3]), _unescape(fields[4]), layers)
    return None


def place_of(root: Path, mount_table: str | None = None) -> StorePlace | None:
    """The place of one store root; None if it cannot be opened (down: its own check reports that).

    ``mount_table``: ``/proc/self/mountinfo`` as read once for all the stores compared.
    """
    label = str(root)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        real = os.path.realpath(root)
        filesystem = in_filesystem = None
        layers: tuple[str, ...] = ()
        mount = _mount_of(fd, mount_table)
        if mount is not None and _inside(mount.point, real):
            rest = os.path.relpath(real, mount.point)
            filesystem = mount.filesystem
            in_filesystem = os.path.normpath(os.path.join(mount.root, rest))
            layers = tuple(os.path.normpath(os.path.join(os.path.realpath(layer), rest)) for layer in mount.layers)
        identity = None
        with contextlib.suppress(OSError):
            marker = os.open(STORE_MARKER, os.O_RDONLY | os.O_NONBLOCK, dir_fd=fd)
            try:
                identity = marker_id(os.read(marker, MARKER_READ_LIMIT))
            finally:
                os.close(marker)
        return StorePlace(label, info.st_dev, info.st_ino, real, filesystem, in_filesystem, identity, layers)
    finally:
        os.close(fd)


def is_folder_of(outer: StorePlace, folder: str, inner: StorePlace) -> bool:
    """Whether ``outer``'s root holds ``folder`` and it is ``inner``'s root (same device and inode).

    In doubt (it cannot be looked at but exists), the mount table's word stands: two
    stores wrongly refused stall the pipeline, one wrongly accepted can lose an original.
    """
    try:
        found = os.stat(os.path.join(outer.real_path, folder))
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return (found.st_dev, found.st_ino) == (inner.device, inner.inode)


def check_distinct(roots: Sequence[Path], mount_table: str | None = None) -> list[Alias]:
    """Gather every root's place and compare them (roots that cannot be opened are left out).

    ``mount_table``: ``/proc/self/mountinfo``'s text, read now if not given.
    """
    table = read_mount_table() if mount_table is None else mount_table
    places = [place for place in (place_of(root, table) for root in roots) if place is not None]
    return aliases(places, is_folder_of)
