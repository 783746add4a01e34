"""Image-format contracts shared by the scanner, the dispatcher and the render task on a worker.

One definition each of: the HEIF brands DP3 takes for a photo, the rule for
reading an EXIF ``DateTimeOriginal`` / ``OffsetTimeOriginal`` (and the time
zone of one without an offset, :func:`capture_moment`), the render
task's exit statuses with the failure kind each one means, and the keys of
the ``meta.json`` it writes (which the dispatcher verifies and the portal
folds into the catalog).

This file is shipped to Work Queue workers beside ``render_task.py`` (as
``dp3_formats.py``, byte for byte: the dispatcher sends this very file), so it
keeps to the standard library and to Python 3.7: no dp3 import, quoted
annotations, nothing newer than 3.7's stdlib.
"""

import datetime
import re
import typing

HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})
"""ISO-BMFF major brands (bytes 8-12 after ``ftyp``) of HEIF/HEIC still images and sequences."""


def is_heif(head: bytes) -> bool:
    """The first bytes of a file announce a HEIF/HEIC image."""
    return len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


# ---------------------------------------------------------------- EXIF dates

EARLIEST_YEAR = 1826
"""The oldest surviving photograph; an earlier DateTimeOriginal is a broken clock."""
LATEST_YEAR = 2199
"""A later DateTimeOriginal is an unset or broken camera clock (the meta.json schema's bound too; and far
from datetime's end, where a site zone would overflow)."""
LATEST_OFFSET_MINUTES = 14 * 60
"""UTC+14 is the furthest zone on Earth; a larger OffsetTimeOriginal is garbage."""

_DATETIME = re.compile(r"\s*(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"\s*([+-])(\d{2}):?(\d{2})\s*$")


def exif_tag(ifd0: "typing.Mapping[int, object]", exif_ifd: "typing.Mapping[int, object]", tag: int) -> object:
    """A date tag's value: from the Exif sub-IFD, where EXIF puts it, else from IFD0, where some writers do.

    Where to look is part of the rule: a photo dated from IFD0 by one reader and by its mtime by the
    other would get two capture times.
    """
    return exif_ifd[tag] if tag in exif_ifd else ifd0.get(tag)


def exif_text(value: object) -> "str | None":
    """The text of an EXIF string tag (str or bytes, NUL-padded, a one-element list), else None."""
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 ") or None


def exif_local_datetime(value: object) -> "datetime.datetime | None":
    """``2008:05:30 15:56:01`` -> a naive local datetime; missing, a placeholder or absurd -> None."""
    text = exif_text(value)
    match = _DATETIME.match(text) if text else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(group) for group in match.groups())
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        return None
    try:
        return datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def exif_offset_minutes(value: object) -> "int | None":
    """``+02:00`` (or ``+0200``) -> 120; absent or beyond +-14 h -> None."""
    text = exif_text(value)
    match = _OFFSET.match(text) if text else None
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    total = int(hours) * 60 + int(minutes)
    if total > LATEST_OFFSET_MINUTES:
        return None
    return -total if sign == "-" else total


def capture_moment(
    local: "datetime.datetime", offset_minutes: "int | None", site_zone: "datetime.tzinfo"
) -> "datetime.datetime":
    """When a photo was taken: its EXIF local time at its own offset, else in the site's zone.

    The one rule for a capture time without an offset: it is the site's wall
    clock (``DP3_TIMEZONE``), for the scanner (``dp3_scanner.capture_time``)
    and for the field agent's preview (``dp3_field.preview``) alike.
    """
    if offset_minutes is not None:
        return local.replace(tzinfo=datetime.timezone(datetime.timedelta(minutes=offset_minutes)))
    return local.replace(tzinfo=site_zone)


def offset_text(minutes: int) -> str:
    """120 -> ``+02:00``: how meta.json writes an offset."""
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# ---------------------------------------------------------------- render task exit statuses

EXIT_OK = 0
EXIT_RENDER_FAILED = 1
EXIT_CORRUPT_IMAGE = 10
EXIT_UNSUPPORTED_FORMAT = 11
EXIT_TOO_LARGE = 12
EXIT_EMPTY_FILE = 13
EXIT_RENDER_CRASHED = 14
EXIT_RENDER_TIMEOUT = 15
EXIT_WORKER_ENVIRONMENT = 20
EXIT_MISSING_DECODER = 21

KIND_BY_EXIT = {
    EXIT_RENDER_FAILED: "render_failed",
    EXIT_CORRUPT_IMAGE: "corrupt_image",
    EXIT_UNSUPPORTED_FORMAT: "unsupported_format",
    EXIT_TOO_LARGE: "too_large",
    EXIT_EMPTY_FILE: "empty_file",
    EXIT_RENDER_CRASHED: "render_crashed",
    EXIT_RENDER_TIMEOUT: "render_timeout",
    EXIT_WORKER_ENVIRONMENT: "worker_environment",
    EXIT_MISSING_DECODER: "worker_environment",
}
"""The failure kind (``dp3.events.ErrorKind`` value) of each non-zero exit status of the render task."""


# ---------------------------------------------------------------- meta.json keys

META_EXIF = "exif"
"""The key of the EXIF subset in meta.json."""
META_KEYS = ("sha256", "size", "format", "width", "height", "thumbnail", "web", META_EXIF, "render_seconds")
"""Every key of meta.json, and no other (the dispatcher's schema refuses any other)."""

EXIF_MODEL = "model"
"""The camera model in the EXIF subset: the gallery's camera filter."""
EXIF_GPS = "gps"
"""The position in the EXIF subset: ``{"latitude", "longitude"}``."""
EXIF_KEYS = (
    "make",
    EXIF_MODEL,
    "lens",
    "datetime_original",
    "offset_time_original",
    "exposure_time",
    "f_number",
    "iso",
    "focal_length",
    "orientation",
    EXIF_GPS,
)
"""Every key of meta.json's EXIF subset, and no other."""
