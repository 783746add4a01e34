"""Which files are photos DP3 takes: by extension or by content, case-insensitive.

A file with a photo extension is accepted whatever its bytes (the render then
classifies a non-image, and the original is archived). A file with another or
no extension is accepted when its first bytes are those of a JPEG, PNG, TIFF or
HEIC/HEIF. Anything else is ignored.

A JPEG or PNG that stops before its end marker is most likely an upload that
stalled mid-file (a sync client writing in place over a slow link), so the
scanner waits longer for it (:func:`lacks_end_marker`).
"""

from __future__ import annotations

import os

from dp3.formats import HEIF_BRANDS, is_heif

__all__ = ["HEIF_BRANDS", "has_photo_extension", "lacks_end_marker", "sniff_format"]

ACCEPTED_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".heic", ".heif", ".hif"})
SNIFF_BYTES = 32
TAIL_BYTES = 32
"""How far from the end an end marker may sit: some cameras pad a JPEG after its EOI."""
_END_MARKERS = {"jpeg": b"\xff\xd9", "png": b"IEND\xaeB`\x82"}


def has_photo_extension(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in ACCEPTED_EXTENSIONS


def sniff_format(head: bytes) -> str | None:
    """The photo format the first bytes announce (``jpeg``, ``png``, ``tiff``, ``heif``), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    if is_heif(head):
        return "heif"
    return None


def lacks_end_marker(head: bytes, tail: bytes) -> bool:
    """True for a JPEG or PNG whose last ``TAIL_BYTES`` hold no end marker: it looks cut off.

    Only formats with an end marker are judged; for the others (TIFF, HEIF)
    there is nothing cheap to look at, and False is returned.
    """
    marker = _END_MARKERS.get(sniff_format(head) or "")
    return marker is not None and marker not in tail[-TAIL_BYTES:]
