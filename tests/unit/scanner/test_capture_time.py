"""Capture time: EXIF with offset, else in the site zone, else mtime; never raises (item 5)."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import warnings
import zoneinfo
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from dp3.formats import exif_tag
from dp3_scanner import capture_time as capture_time_module
from dp3_scanner.capture_time import (
    DATE_TIME_ORIGINAL,
    OFFSET_TIME_ORIGINAL,
    CaptureTime,
    TimeSource,
    capture_time,
    parse_exif_datetime,
    read_exif_time,
)

UTC = zoneinfo.ZoneInfo("UTC")
JERUSALEM = zoneinfo.ZoneInfo("Asia/Jerusalem")


def test_the_offset_wins_over_the_site_zone() -> None:
    found = parse_exif_datetime("2012:12:14 22:33:28", "+02:00", UTC)
    assert found == CaptureTime(1355517208, TimeSource.EXIF_OFFSET)


def test_without_an_offset_the_site_zone_is_used() -> None:
    assert parse_exif_datetime("2012:12:14 22:33:28", None, JERUSALEM) == CaptureTime(
        1355517208, TimeSource.EXIF_SITE_ZONE
    )
    assert parse_exif_datetime(b"2012:12:14 20:33:28\x00", b"", UTC) == CaptureTime(
        1355517208, TimeSource.EXIF_SITE_ZONE
    )


@pytest.mark.parametrize(
    "raw",
    ["", "    ", "0000:00:00 00:00:00", "2012:13:45 99:99:99", "garbage", 42, None, b"\xff\xfe", "1066:10:14 09:00:00"],
)
def test_absent_or_absurd_dates_give_none(raw: object) -> None:
    assert parse_exif_datetime(raw, None, UTC) is None


def test_a_bad_offset_falls_back_to_the_site_zone() -> None:
    assert parse_exif_datetime("2012:12:14 22:33:28", "+99:00", JERUSALEM) == CaptureTime(
        1355517208, TimeSource.EXIF_SITE_ZONE
    )


def test_real_photos(corpus: Path) -> None:
    with (corpus / "jpg/mobile/HMD_Nokia_8.3_5G.jpg").open("rb") as stream:
        assert capture_time(stream, 0, UTC).source == TimeSource.EXIF_OFFSET
    with (corpus / "jpg/gps/DSCN0010.jpg").open("rb") as stream:
        assert capture_time(stream, 0, UTC) == CaptureTime(1224692919, TimeSource.EXIF_SITE_ZONE)
    with (corpus / "jpg/xmp/no_exif.jpg").open("rb") as stream:
        assert capture_time(stream, 1_500_000_000_123_456_789, UTC) == CaptureTime(1500000000, TimeSource.MTIME)
    with (corpus / "heic/IMG_5195.HEIC").open("rb") as stream:
        assert capture_time(stream, 0, UTC).source != TimeSource.MTIME


def _every_file(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file())


@pytest.mark.parametrize("folder", ["jpg/tests", "jpg/invalid"])
def test_every_parser_crasher_and_broken_file_yields_a_time(corpus: Path, folder: str) -> None:
    files = _every_file(corpus / folder)
    assert len(files) >= 7
    for path in files:
        mtime_ns = os.stat(path).st_mtime_ns
        with path.open("rb") as stream:
            found = capture_time(stream, mtime_ns, UTC)
        assert isinstance(found.seconds, int), path
        if found.source == TimeSource.MTIME:
            assert found.seconds == mtime_ns // 1_000_000_000
        else:
            assert 0 < found.seconds < 2_000_000_000, path


def test_the_parser_crashers_that_carry_a_date_give_it(corpus: Path) -> None:
    with (corpus / "jpg/tests/87_OSError.jpg").open("rb") as stream:
        assert capture_time(stream, 0, UTC) == CaptureTime(1134571187, TimeSource.EXIF_SITE_ZONE)
    with (corpus / "jpg/tests/36-memory_error.jpg").open("rb") as stream:
        assert capture_time(stream, 0, UTC).source == TimeSource.EXIF_SITE_ZONE


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff", b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*", b"\x00" * 100])
def test_truncated_or_empty_bytes_fall_back_to_mtime(data: bytes) -> None:
    assert capture_time(io.BytesIO(data), 7_000_000_000, UTC) == CaptureTime(7, TimeSource.MTIME)


def _with_huge_dimensions(jpeg: bytes) -> bytes:
    """The same JPEG whose frame header claims 65000 x 65000 pixels (Pillow's bomb guard refuses it)."""
    data = bytearray(jpeg)
    at = 2
    while data[at + 1] not in (0xC0, 0xC1, 0xC2):
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    data[at + 5 : at + 9] = (65000).to_bytes(2, "big") * 2
    return bytes(data)


def test_a_decompression_bomb_header_still_gives_its_exif_date(corpus: Path) -> None:
    bomb = _with_huge_dimensions((corpus / "jpg/gps/DSCN0010.jpg").read_bytes())
    assert capture_time(io.BytesIO(bomb), 0, UTC) == CaptureTime(1224692919, TimeSource.EXIF_SITE_ZONE)


def _pillow_date_tags(path: Path) -> tuple[object, object]:
    """The two date tags as the scanner read them before issue 17: Pillow decoding both IFDs."""
    with Image.open(path) as image:
        exif = image.getexif()
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
        return exif_tag(exif, ifd, DATE_TIME_ORIGINAL), exif_tag(exif, ifd, OFFSET_TIME_ORIGINAL)


def _exif_block(path: Path) -> object:
    with Image.open(path) as image:
        return image.info.get("exif") if image.format == "JPEG" else None


def test_the_direct_read_of_the_date_tags_agrees_with_pillow_on_every_corpus_jpeg(corpus: Path) -> None:
    answered = 0
    for path in sorted(p for p in corpus.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                block = _exif_block(path)
                expected = _pillow_date_tags(path)
            except Exception:  # noqa: S112 - a file Pillow refuses goes to exifread either way
                continue
            if not isinstance(block, bytes):
                continue
            try:
                got = capture_time_module.exif_date_tags(block)
            except capture_time_module._Unclear:
                continue  # Pillow reads it, as before
        assert got == expected, path
        answered += 1
    assert answered >= 40  # the direct read is the common case, not the exception


def test_a_jpegs_capture_time_takes_a_few_hundred_python_calls_not_thousands(corpus: Path) -> None:
    data = (corpus / "jpg" / "mobile" / "HMD_Nokia_8.3_5G.jpg").read_bytes()
    read_exif_time(io.BytesIO(data), UTC)  # imports and caches warmed
    profiler = cProfile.Profile()
    profiler.enable()
    found = read_exif_time(io.BytesIO(data), UTC)
    profiler.disable()
    assert found is not None and found.source is not TimeSource.MTIME
    calls = pstats.Stats(profiler).total_calls  # type: ignore[attr-defined]
    assert calls < 800, calls  # decoding every tag of both IFDs with Pillow took about 1,140 (447 now)
