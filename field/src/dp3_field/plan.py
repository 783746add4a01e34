"""What the agent does next, when it tries again, and when it may delete. Pure: values in, a decision out.

The order (issue 19):

1. every pending preview, newest day first (within a day, in the order the
   photos were taken), so the whole latest day is visible within minutes;
2. a due deletion (``--free-space`` only, see :func:`may_delete`);
3. the due receipt questions for originals that reached the head node, all
   in one request (:class:`AskReceipts`): one round trip a minute however
   many photos wait for their receipt;
4. the originals, one at a time, oldest first. An original in the middle of
   its upload is simply the oldest pending one: it resumes from the head
   node's offset. A preview that appears meanwhile goes first, after the
   chunk in flight.

A photo's two halves have their own states (:class:`PreviewState`,
:class:`OriginalState`); the queue (:mod:`dp3_field.queue`) stores them and
the loop (:mod:`dp3_field.agent`) carries the steps out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class PreviewState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    NONE = "none"
    """No preview could be made (the render refused the file): the original still goes."""


class OriginalState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    """This agent uploaded every byte and the intake took the upload: the only state that may be freed."""
    ALREADY = "already"
    """The head node had these bytes before this agent sent them (it said "already have it"): never freed."""
    REFUSED = "refused"
    """The head node refused the photo for good (too large, a bad name): kept, and said on the status page."""


@dataclass(frozen=True)
class Photo:
    """One photo in the queue, as the decisions see it."""

    id: int
    path: str
    name: str
    sha256: str
    size: int
    day: str
    """The capture day, ``YYYY-MM-DD`` (site time), for "newest day first"."""
    taken: float
    """Capture time in Unix seconds (EXIF, else the file's mtime), for "oldest first"."""
    preview: PreviewState
    original: OriginalState
    offset: int = 0
    """Bytes of the original the head node acknowledged (for the status; the head node's offset is the truth)."""
    archived: bool = False
    """A receipt said: a verified copy in every store."""
    receipt_asked_at: float | None = None
    deleted: bool = False


@dataclass(frozen=True)
class SendPreview:
    photo: Photo


@dataclass(frozen=True)
class FreeSpace:
    photo: Photo


RECEIPTS_PER_QUESTION = 200
"""The most photos one receipt question names: the intake's limit (``dp3_intake.rules.RECEIPTS_PER_REQUEST``)."""


@dataclass(frozen=True)
class AskReceipts:
    photos: tuple[Photo, ...]


@dataclass(frozen=True)
class SendOriginal:
    photo: Photo


@dataclass(frozen=True)
class Idle:
    """Nothing to send now."""


Step = SendPreview | FreeSpace | AskReceipts | SendOriginal | Idle


def preview_order(photo: Photo) -> tuple[str, float, int]:
    # Newest day first: the day is negated by sorting on its complement below.
    return (_descending(photo.day), photo.taken, photo.id)


def original_order(photo: Photo) -> tuple[float, int]:
    return (photo.taken, photo.id)


def _descending(day: str) -> str:
    # YYYY-MM-DD digits mapped to 9-d sort in reverse, "-" kept: a plain string key for a descending sort.
    return day.translate(str.maketrans("0123456789", "9876543210"))


def receipt_due(photo: Photo, now: float, every: float) -> bool:
    """An original on the head node whose archiving is not yet confirmed, not asked about for ``every`` seconds."""
    if photo.original not in (OriginalState.SENT, OriginalState.ALREADY) or photo.archived:
        return False
    return photo.receipt_asked_at is None or now - photo.receipt_asked_at >= every


def may_delete(photo: Photo, free_space: bool) -> bool:
    """Whether the agent may *start* freeing this photo's local original (then :func:`still_the_same_bytes`).

    Only with ``--free-space``; only an original this agent sent itself
    (never one the head node already had, nor one it refused); only after
    a receipt said it is archived, a verified copy in every store.
    """
    return free_space and photo.original == OriginalState.SENT and photo.archived and not photo.deleted


def still_the_same_bytes(photo: Photo, sha256_now: str | None) -> bool:
    """The last check before deleting: the local file, hashed again just now, is the photo that was archived."""
    return sha256_now is not None and sha256_now == photo.sha256


def next_step(photos: Iterable[Photo], *, now: float, free_space: bool, receipt_every: float) -> Step:
    """The one thing to do next (see the module docstring for the order)."""
    photos = list(photos)
    previews = [photo for photo in photos if photo.preview == PreviewState.PENDING and not photo.deleted]
    if previews:
        return SendPreview(min(previews, key=preview_order))
    for photo in sorted(photos, key=original_order):
        if may_delete(photo, free_space):
            return FreeSpace(photo)
    due = [photo for photo in sorted(photos, key=original_order) if receipt_due(photo, now, receipt_every)]
    if due:
        return AskReceipts(tuple(due[:RECEIPTS_PER_QUESTION]))
    originals = [photo for photo in photos if photo.original == OriginalState.PENDING and not photo.deleted]
    if originals:
        return SendOriginal(min(originals, key=original_order))
    return Idle()


def backoff_seconds(failures: int, *, base: float = 1.0, cap: float = 60.0, jitter: float = 0.0) -> float:
    """How long to wait after ``failures`` failed tries in a row: 1, 2, 4, ... seconds, at most ``cap``.

    ``jitter`` in [0, 1) stretches a delay below the cap by up to a quarter,
    so laptops that lost the same link do not all come back in one second.
    At the cap the delay is exactly ``cap``: the status can say "trying
    again every minute" and mean it.
    """
    if failures <= 0:
        return 0.0
    delay = base * 2 ** min(failures - 1, 30) * (1.0 + 0.25 * jitter)
    return float(min(cap, delay))
