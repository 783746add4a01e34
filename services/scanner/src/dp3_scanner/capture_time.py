"""When a photo was taken: EXIF DateTimeOriginal, else the file's mtime.

DateTimeOriginal is a local wall-clock time without a zone. With
OffsetTimeOriginal (EXIF 2.31) it is exact; without it, it is read in the
site's zone (``DP3_TIMEZONE``). Anything unreadable, absent or absurd falls
back to the mtime: camera firmware and editors write every kind of garbage
into EXIF (empty strings, ``0000:00:00``, wrong types, truncated IFDs), and a
bad tag must never stop a photo, let alone the scanner.
"""

from __future__ import annotations

import enum
import logging
import struct
import warnings
import zoneinfo
from dataclasses import dataclass
from typing import BinaryIO

import exifread
from PIL import ExifTags, Image

from dp3.formats import capture_moment, exif_local_datetime, exif_offset_minutes, exif_tag

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
    source = TimeSource.EXIF_SITE_ZONE if minutes is None else TimeSource.EXIF_OFFSET
    return CaptureTime(int(capture_moment(local, minutes, zone).timestamp()), source)


_TIFF_ORDER = {b"II*\x00": "<", b"MM\x00*": ">"}
_ASCII, _LONG, _IFD = 2, 4, 13
EXIF_IFD_POINTER = 0x8769


class _Unclear(Exception):
    """The EXIF block is not plain enough to read two tags from it directly: let Pillow read all of it.

    Private control flow, never out of this module: not a :class:`dp3.errors.DP3Error`.
    """


def exif_date_tags(exif: bytes) -> tuple[str | None, str | None]:
    """DateTimeOriginal and OffsetTimeOriginal from a JPEG's APP1 Exif block, as Pillow would give them.

    Reads just the two IFDs' entry tables and the two ASCII values, where
    Pillow's ``getexif().get_ifd(Exif)`` decodes every tag of both IFDs (tens
    of rationals, the maker note): about a millisecond per photo in the
    scanner. Raises :class:`_Unclear` for anything it does not read exactly
    as Pillow does (another byte order mark, a tag of another type, a value
    outside the block, a truncated table): the caller then asks Pillow.
    """
    if not exif.startswith(b"Exif\x00\x00"):
        raise _Unclear("no Exif header")
    tiff = exif[6:]
    order = _TIFF_ORDER.get(tiff[:4])
    if order is None:
        raise _Unclear("no TIFF header")
    try:
        (ifd0_at,) = struct.unpack_from(order + "I", tiff, 4)
        ifd0 = _entries(tiff, ifd0_at, order)
        pointer = ifd0.get(EXIF_IFD_POINTER)
        sub: dict[int, tuple[int, int, bytes]] = {}
        if pointer is not None:
            kind, count, field = pointer
            if kind not in (_LONG, _IFD) or count != 1:
                raise _Unclear("odd Exif IFD pointer")
            sub = _entries(tiff, struct.unpack(order + "I", field)[0], order)
    except struct.error as exc:
        raise _Unclear(str(exc)) from exc
    found = [sub[tag] if tag in sub else ifd0.get(tag) for tag in (DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL)]
    return _ascii(tiff, found[0], order), _ascii(tiff, found[1], order)


def _entries(tiff: bytes, at: int, order: str) -> dict[int, tuple[int, int, bytes]]:
    """One IFD's entries: tag -> (type, count, the 4-byte value-or-offset field); a later duplicate wins."""
    (count,) = struct.unpack_from(order + "H", tiff, at)
    if at + 2 + 12 * count > len(tiff):
        raise _Unclear("IFD runs past the block")
    entries = {}
    for index in range(count):
        tag, kind, n = struct.unpack_from(order + "HHI", tiff, at + 2 + 12 * index)
        entries[tag] = (kind, n, tiff[at + 10 + 12 * index : at + 14 + 12 * index])
    return entries


def _ascii(tiff: bytes, entry: tuple[int, int, bytes] | None, order: str) -> str | None:
    if entry is None:
        return None
    kind, count, field = entry
    if kind != _ASCII:
        raise _Unclear("a date tag of another type")
    if count <= 4:
        data = field[:count]
    else:
        (offset,) = struct.unpack(order + "I", field)
        if offset + count > len(tiff):
            raise _Unclear("a value outside the block")
        data = tiff[offset : offset + count]
    if data.endswith(b"\x00"):  # what Pillow's ASCII loader does
        data = data[:-1]
    return data.decode("latin-1", "replace")


def read_exif_time(stream: BinaryIO, zone: zoneinfo.ZoneInfo) -> CaptureTime | None:
    """The EXIF capture time of the image in ``stream``, or None; never raises.

    Pillow first (a JPEG's two date tags read straight from its Exif block:
    :func:`exif_date_tags`); if Pillow refuses the file (a decompression-bomb
    header, a truncated image, an odd container), exifread, which only parses tags.
    """
    start = stream.tell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning, corrupt-EXIF warnings: we only read tags
            with Image.open(stream) as image:
                block = image.info.get("exif") if image.format == "JPEG" else None
                raw: object
                offset: object
                try:
                    if not isinstance(block, bytes):
                        raise _Unclear("not a JPEG with an Exif block")
                    raw, offset = exif_date_tags(block)
                except _Unclear:
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
