from __future__ import annotations

from pathlib import Path

import pytest

from dp3_scanner.filetype import SNIFF_BYTES, TAIL_BYTES, has_photo_extension, lacks_end_marker, sniff_format


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


def _whole_jpegs_and_pngs(corpus: Path) -> list[Path]:
    return [
        path
        for path in sorted(corpus.rglob("*"))
        if path.is_file() and "invalid" not in path.parts and path.suffix.lower() in {".jpg", ".jpeg", ".png"}
    ]


def test_no_whole_corpus_jpeg_or_png_looks_cut_off(corpus: Path) -> None:
    paths = _whole_jpegs_and_pngs(corpus)
    assert len(paths) > 50
    cut_off = [str(p) for p in paths if lacks_end_marker(*_head_and_tail(p.read_bytes()))]
    assert cut_off == []


def test_every_corpus_jpeg_or_png_cut_in_half_looks_cut_off(corpus: Path) -> None:
    halves = [path.read_bytes()[: path.stat().st_size // 2] for path in _whole_jpegs_and_pngs(corpus)]
    assert [i for i, half in enumerate(halves) if not lacks_end_marker(*_head_and_tail(half))] == []


def test_formats_without_an_end_marker_are_never_judged_cut_off() -> None:
    assert not lacks_end_marker(b"II*\x00" + b"\x00" * 28, b"\x00" * 32)
    assert not lacks_end_marker(b"not an image at all", b"...")


def _head_and_tail(data: bytes) -> tuple[bytes, bytes]:
    return data[:SNIFF_BYTES], data[-TAIL_BYTES:]
