"""When a photo was taken: EXIF DateTimeOriginal, else the file's mtime.

DateTimeOriginal is a local wall-clock time without a zone. With
OffsetTimeOriginal (EXIF 2.31) it is exact; without it, it is read in the
site's zone (``DP3_TIMEZONE``). Anything unreadable, absent or absurd falls
back to the mtime: camera firmware and editors write every kind of garbage
into EXIF (empty strings, ``0000:00:00``, wrong types, truncated IFDs), and a
bad tag must never stop a photo, let alone the scanner.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import warnings
import zoneinfo
from dataclasses import dataclass
from typing import BinaryIO

import exifread
from PIL import ExifTags, Image

from dp3.formats import exif_local_datetime, exif_offset_minutes, exif_tag

log = logging.getLogger(__name__)
logging.getLogger("exifread").setLevel(logging.ERROR)  # it warns about every odd IFD; we fall back anyway

try:  # HEIC/HEIF support is optional: without it HEIC photos are dated by mtime
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is installed in every DP3 environment
    pass

DATE_TIME_ORIGINAL = 0x9003
OFFSET_TIME_ORIGINAL = 0x9011


class TimeSource(enum.StrEnum):
    EXIF_OFFSET = "exif_offset"  # DateTimeOriginal + OffsetTimeOriginal
    EXIF_SITE_ZONE = "exif_site_zone"  # DateTimeOriginal read in DP3_TIMEZONE
    MTIME = "mtime"  # no usable EXIF date


@dataclass(frozen=True)
class CaptureTime:
    seconds: int
    source: TimeSource


def parse_exif_datetime(raw: object, offset: object, zone: zoneinfo.ZoneInfo) -> CaptureTime | None:
    """Unix seconds from the two EXIF strings, or None when the date is missing or absurd.

    The rule for reading them is :mod:`dp3.formats`' (the render task on a
    worker reads meta.json's date with the same one).
    """
    local = exif_local_datetime(raw)
    if local is None:
        return None
    minutes = exif_offset_minutes(offset)
    if minutes is not None:
        aware = local.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes)))
        return CaptureTime(int(aware.timestamp()), TimeSource.EXIF_OFFSET)
    return CaptureTime(int(local.replace(tzinfo=zone).timestamp()), TimeSource.EXIF_SITE_ZONE)


def read_exif_time(stream: BinaryIO, zone: zoneinfo.ZoneInfo) -> CaptureTime | None:
    """The EXIF capture time of the image in ``stream``, or None; never raises.

    Pillow first; if Pillow refuses the file (a decompression-bomb header, a
    truncated image, an odd container), exifread, which only parses tags.
    """
    start = stream.tell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning, corrupt-EXIF warnings: we only read tags
            with Image.open(stream) as image:
                exif = image.getexif()
                ifd = exif.get_ifd(ExifTags.IFD.Exif)
                raw, offset = exif_tag(exif, ifd, DATE_TIME_ORIGINAL), exif_tag(exif, ifd, OFFSET_TIME_ORIGINAL)
        return parse_exif_datetime(raw, offset, zone)
    except Exception as exc:  # noqa: BLE001 - any malformed file falls back, by design
        log.debug("Pillow read no EXIF capture time: %r", exc)
    try:
        stream.seek(start)
        tags = exifread.process_file(stream, details=False, stop_tag="OffsetTimeOriginal")
        # exifread names a tag by its IFD: the Exif sub-IFD first, then IFD0 ("Image"), as exif_tag does.
        raw_tag = tags.get("EXIF DateTimeOriginal") or tags.get("Image DateTimeOriginal")
        offset_tag = tags.get("EXIF OffsetTimeOriginal") or tags.get("Image OffsetTimeOriginal")
        return parse_exif_datetime(
            raw_tag.values if raw_tag is not None else None,
            offset_tag.values if offset_tag is not None else None,
            zone,
        )
    except Exception as exc:  # noqa: BLE001 - any malformed file falls back to the mtime, by design
        log.debug("exifread read no EXIF capture time: %r", exc)
        return None


def capture_time(stream: BinaryIO, mtime_ns: int, zone: zoneinfo.ZoneInfo) -> CaptureTime:
    """EXIF DateTimeOriginal (with its offset, or in ``zone``), else the mtime in Unix seconds."""
    found = read_exif_time(stream, zone)
    if found is not None:
        return found
    return CaptureTime(mtime_ns // 1_000_000_000, TimeSource.MTIME)
