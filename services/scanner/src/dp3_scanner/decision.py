"""What the scanner does with a file that has finished uploading. Pure: plain values in, one action out.

The scanner (:meth:`dp3_scanner.scanner.Scanner._handle_finished`) opens the
file, asks, and carries the answer out. It asks at three moments, because each
answer decides whether the next, costlier I/O happens at all (an ignored or
held file is never hashed; an id is taken only for bytes that stayed put):

:func:`on_open` (the file is open; its first and last bytes are read):

1. The file open is not the one the loop saw finish (replaced between the
   ``lstat`` and the ``open``): :class:`ConsiderAgain` with its new stat.
2. A name without a photo extension whose first bytes are no photo's
   either: :class:`Ignore`, ``unsupported_type``.
3. A JPEG or PNG that stops before its end marker, not held before, while
   ``DP3_INCOMPLETE_SECONDS`` is longer than ``DP3_STABLE_SECONDS``:
   :class:`Hold` it for ``DP3_INCOMPLETE_SECONDS`` in all, once (a stalled
   upload looks finished; a truly truncated file is read after the hold, and
   fails as corrupt in the render).
4. Otherwise :class:`Read` it: hash it and date it.

:func:`on_read` (it was hashed):

5. Its stat moved, or fewer or more bytes were read than its size, while it
   was read: not finished after all, :class:`ConsiderAgain` with the new stat.
   Otherwise None: go on.

:func:`on_hashed` (the index said what it knows of these bytes and this path):

6. The event is :func:`dp3_scanner.outcome.decide`'s: ``Failed`` /
   ``no_owner`` in the inbox root, ``Duplicate`` of an archived photo whose
   original was collected or which has another id, else ``Detected``.
7. Same bytes as the last event for this path and the same status (the file
   was touched, or copied over itself): nothing new to say,
   :class:`RefreshKey` only.
8. Otherwise :class:`Emit` the event.
"""

from __future__ import annotations

from dataclasses import dataclass

from dp3.events import JournalEntry
from dp3_scanner.filetype import has_photo_extension
from dp3_scanner.index import ArchivedPhoto, FileKey, SeenFile
from dp3_scanner.names import IgnoreReason
from dp3_scanner.outcome import Upload, decide


@dataclass(frozen=True)
class Opened:
    """What the scanner knows of a finished file once it is open, before hashing it."""

    name: str
    key: FileKey
    """The stat the loop saw rest."""
    key_at_open: FileKey
    """The stat of the file actually opened."""
    sniffed: str | None
    """The photo format its first bytes announce (:func:`dp3_scanner.filetype.sniff_format`)."""
    lacks_end_marker: bool
    """A JPEG or PNG without its end marker (:func:`dp3_scanner.filetype.lacks_end_marker`)."""
    held_seconds: float = 0.0
    """The longer rest it was already given (0: never held)."""


@dataclass(frozen=True)
class HoldLimits:
    stable_seconds: float
    incomplete_seconds: float


@dataclass(frozen=True)
class ConsiderAgain:
    """Not finished after all: watch it again from this stat."""

    key: FileKey


@dataclass(frozen=True)
class Ignore:
    reason: IgnoreReason


@dataclass(frozen=True)
class Hold:
    """Let it rest ``seconds`` in all (from when its state was first seen) before it counts as finished."""

    seconds: float


@dataclass(frozen=True)
class Read:
    """Hash and date it, then ask :func:`on_read` and :func:`on_hashed`."""


@dataclass(frozen=True)
class RefreshKey:
    """Nothing new to say: remember only the file's new stat."""

    key: FileKey


@dataclass(frozen=True)
class Emit:
    """Publish ``entry``, then record it for the path."""

    entry: JournalEntry


Action = ConsiderAgain | Ignore | Hold | Read | RefreshKey | Emit


def on_open(opened: Opened, limits: HoldLimits) -> ConsiderAgain | Ignore | Hold | Read:
    """Rules 1-4: whether an open, finished file is read at all."""
    if opened.key_at_open != opened.key:
        return ConsiderAgain(opened.key_at_open)
    if not has_photo_extension(opened.name) and opened.sniffed is None:
        return Ignore(IgnoreReason.UNSUPPORTED_TYPE)
    hold = limits.incomplete_seconds
    if opened.lacks_end_marker and opened.held_seconds < hold and hold > limits.stable_seconds:
        return Hold(hold)
    return Read()


def on_read(key: FileKey, key_after: FileKey, size_read: int) -> ConsiderAgain | None:
    """Rule 5: ConsiderAgain if the file changed while it was read, else None."""
    if key_after != key or size_read != key[0]:
        return ConsiderAgain(key_after)
    return None


def on_hashed(
    upload: Upload, key: FileKey, archived: ArchivedPhoto | None, assigned_id: str, previous: SeenFile | None
) -> RefreshKey | Emit:
    """Rules 6-8: the event for a read upload, or nothing new to say.

    ``archived`` is the index's record of these bytes, ``assigned_id`` the id the
    index gave them, ``previous`` the index's record of this path.
    """
    entry = decide(upload, archived, assigned_id)
    if (
        previous is not None
        and previous.sha256 == upload.sha256
        and previous.event is not None
        and JournalEntry.from_json(previous.event).status == entry.status
    ):
        return RefreshKey(key)
    return Emit(entry)
