from __future__ import annotations

from pathlib import Path

import pytest

from dp3_scanner.filetype import has_photo_extension, sniff_format


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("a.jpg", True),
        ("a.JPG", True),
        ("a.Jpeg", True),
        ("a.png", True),
        ("a.TIF", True),
        ("a.tiff", True),
        ("a.HEIC", True),
        ("a.heif", True),
        ("a.txt", False),
        ("a.mov", False),
        ("jpg", False),
        ("a.jpg.zip", False),
    ],
)
def test_extensions_are_case_insensitive(name: str, accepted: bool) -> None:
    assert has_photo_extension(name) is accepted


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("jpg/gps/DSCN0010.jpg", "jpeg"),
        ("tiff/Arbitro.tiff", "tiff"),
        ("heic/IMG_5195.HEIC", "heif"),
        ("heic/samplefilehub.heif", "heif"),
        ("tiff/README", None),
    ],
)
def test_content_sniffing_on_real_files(corpus: Path, relative: str, expected: str | None) -> None:
    assert sniff_format((corpus / relative).read_bytes()[:32]) == expected


def test_png_and_garbage() -> None:
    assert sniff_format(b"\x89PNG\r\n\x1a\n\x00\x00") == "png"
    assert sniff_format(b"") is None
    assert sniff_format(b"\x00\x00\x00\x18ftypmp42") is None  # a video, not a photo
