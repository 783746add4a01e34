"""Photos that are costly to decode, written by the test (small files, big decodes): issue 14 item 4.

Flat content keeps the files small; what a decode costs depends on the header
(size, mode, progressive or not), not on the pixels.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from PIL import Image


def gray16_png(path: Path, size: tuple[int, int]) -> Path:
    """A 16-bit greyscale PNG (Pillow mode I;16)."""
    Image.new("I;16", size, 40000).save(path, "PNG")
    return path


def progressive_jpeg(path: Path, size: tuple[int, int], mode: str = "RGB") -> Path:
    """A progressive JPEG (libjpeg keeps every DCT coefficient of it in memory, at any scale); RGB or CMYK."""
    colour = (200, 120, 40) if mode == "RGB" else (10, 80, 200, 5)
    Image.new(mode, size, colour).save(path, "JPEG", progressive=True, quality=90)
    return path


def tiff(path: Path, size: tuple[int, int]) -> Path:
    """An LZW-compressed RGB TIFF."""
    Image.new("RGB", size, (30, 160, 90)).save(path, "TIFF", compression="tiff_lzw")
    return path


def heic(path: Path, size: tuple[int, int]) -> Path:
    import pillow_heif

    pillow_heif.register_heif_opener()
    Image.new("RGB", size, (90, 30, 160)).save(path, "HEIF", quality=50)
    return path


def webp(path: Path, size: tuple[int, int], mode: str = "RGB") -> Path:
    """A lossy WebP (RGB, or RGBA with an alpha plane): libwebp allocates its canvases when Pillow opens it."""
    colour = (200, 60, 90) if mode == "RGB" else (200, 60, 90, 128)
    Image.new(mode, size, colour).save(path, "WEBP", quality=50)
    return path


def rgba_png(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGBA", size, (10, 20, 30, 128)).save(path, "PNG")
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_png(path: Path, size: tuple[int, int], *, bits: int = 8, paeth: bool = True) -> Path:
    """A greyscale PNG of zeros, written row by row: a few hundred KB that take seconds to decode.

    Every row uses the Paeth filter (the costliest to undo); ``bits=16`` makes
    it a 16-bit PNG, which Pillow holds as I;16 and converts through 32 bits.
    """
    width, height = size
    compressor = zlib.compressobj(6)
    row = (b"\x04" if paeth else b"\x00") + b"\x00" * (width * bits // 8)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bits, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))
    return path
