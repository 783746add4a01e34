#!/usr/bin/env python3
"""The render task: one photo in; a thumbnail, a web version and meta.json out.

Two use it, hence its place in ``libs/``: the dispatcher ships this file to
Work Queue workers, and the field agent (``dp3-field``) imports :func:`render`
to make a photo's preview on the photographer's laptop, so the preview a
gallery shows first is the same web version a worker makes later.

This file is shipped to Work Queue workers as a cached input file, with
``dp3_formats.py`` (:mod:`dp3.formats`, the exit statuses and format rules it
shares with the dispatcher and the scanner) beside it, and run there as
``python3 render_task.py [--max-pixels N] [--memory-mb M] [--seconds S]
INPUT OUTDIR``. A cluster node
offers the Python its administrators installed, so the script needs only the
standard library and Pillow (pillow-heif, when present, adds HEIC/HEIF): Debian
bookworm's ``python3`` + ``python3-pil`` (Pillow 9.4) is enough. Hence no dp3
import, and no Pillow API newer than 8.0 without a fallback. Annotations are
quoted rather than postponed (``from __future__ import annotations``), so that
an old Python still parses the file and reaches the version check below, which
turns "Python too old" into exit 20 instead of a SyntaxError.

Exit status is the contract with the dispatcher (``dp3_dispatcher.verify``)::

    0   ok: OUTDIR/thumbnail.jpg, OUTDIR/web.jpg, OUTDIR/meta.json
    10  corrupt_image       the bytes are not a decodable image
    11  unsupported_format  an image, but not one DP3 renders
    12  too_large           width*height above --max-pixels, seen in the header; or
                            decoding it needs more than --memory-mb (predicted from
                            the header before decoding, or hit while decoding)
    13  empty_file          zero bytes
    14  render_crashed      the render process died (a signal) on this photo
    15  render_timeout      the photo took longer than --seconds to render
    20  worker_environment  this worker cannot render (Python/Pillow missing or old)
    21  worker_environment  this worker cannot decode this photo's format (HEIC
                            without pillow-heif): another worker may
    1   render_failed       anything else (a bug, a full disk): worth a retry

On a non-zero exit, stdout carries one JSON line ``{"kind", "message"}`` and no
artifact file is left in OUTDIR.

Limits per photo: photos are rendered in a child process (forked after
Pillow is imported) whose address space is capped at ``--memory-mb``
(RLIMIT_AS) and whose timer ends it after ``--seconds`` on one photo. A
batch's photos share one such child while they render; a photo that fails
there, or on which the child dies, is rendered again in a child of its own,
and that child's verdict is the photo's (:func:`render_each`). A photo that
exhausts memory, hangs or crashes the decoder therefore fails alone, with its
own kind, and the batch goes on.

Batch mode, ``python3 render_task.py [--max-pixels N] --batch RESULTS.tar
INPUT...``, renders several photos in one process: starting Python and
importing Pillow costs more than rendering a camera photo at 1/8 scale, so a
backlog is sent to workers a few photos per task. RESULTS.tar holds, for the
i-th input, ``i/thumbnail.jpg``, ``i/web.jpg``, ``i/meta.json`` or
``i/failure.json`` (``{"status", "kind", "message"}``, the single-photo exit
status and line above). The exit status is 0 when the batch ran (each photo's
outcome is in the tar), 20 when this worker cannot render at all.

Speed: a 24-megapixel JPEG is decoded by libjpeg at 1/8 scale in the DCT
domain (``draft``), never at full size; only that small image is resized,
rotated and encoded, and the thumbnail is made from the web version. The
sha256 of the bytes runs in a thread meanwhile (hashlib releases the GIL), and
the resize is split into row bands across threads (Pillow releases the GIL
while it resamples), so a worker with an idle core finishes a photo sooner.
"""

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import time
import typing
import warnings
from typing import Any

if __name__ == "__main__" and os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    # Run as a script under ``python3 -I`` (or -P), the script's own folder is not on the path.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:  # on a worker: the copy of dp3.formats shipped beside this file, first, so nothing else can shadow it
    import dp3_formats as formats  # type: ignore[import-not-found]
except ImportError:  # imported as part of the dispatcher's package
    from dp3 import formats

try:
    import resource
except ImportError:  # not a POSIX system: no address-space limit (workers are Linux)
    resource = None  # type: ignore[assignment]

MIN_PYTHON = (3, 7)
MIN_PILLOW = (8, 0)

EXIT_OK: int = formats.EXIT_OK
EXIT_RENDER_FAILED: int = formats.EXIT_RENDER_FAILED
EXIT_CORRUPT_IMAGE: int = formats.EXIT_CORRUPT_IMAGE
EXIT_UNSUPPORTED_FORMAT: int = formats.EXIT_UNSUPPORTED_FORMAT
EXIT_TOO_LARGE: int = formats.EXIT_TOO_LARGE
EXIT_EMPTY_FILE: int = formats.EXIT_EMPTY_FILE
EXIT_RENDER_CRASHED: int = formats.EXIT_RENDER_CRASHED
EXIT_RENDER_TIMEOUT: int = formats.EXIT_RENDER_TIMEOUT
EXIT_WORKER_ENVIRONMENT: int = formats.EXIT_WORKER_ENVIRONMENT
EXIT_MISSING_DECODER: int = formats.EXIT_MISSING_DECODER
KIND_BY_EXIT: "dict[int, str]" = formats.KIND_BY_EXIT
HEIF_BRANDS: "frozenset[bytes]" = formats.HEIF_BRANDS

THUMBNAIL_NAME = "thumbnail.jpg"
WEB_NAME = "web.jpg"
META_NAME = "meta.json"
ARTIFACT_NAMES = (THUMBNAIL_NAME, WEB_NAME, META_NAME)
FAILURE_NAME = "failure.json"  # in batch mode, instead of the artifacts of a photo that failed

THUMBNAIL_BOX = (120, 90)
WEB_BOX = (640, 480)
JPEG_QUALITY = 85
DEFAULT_MAX_PIXELS = 200_000_000
DEFAULT_MEMORY_MB = 1024
DEFAULT_SECONDS = 600

EXIF_KEYS: "tuple[str, ...]" = formats.EXIF_KEYS
# Bounds of the EXIF subset, shared with the dispatcher's meta.json schema (artifact_meta.py):
# what is outside them is reported as absent, so an honest render always passes the schema.
TEXT_LIMIT = 200
NUMBER_LIMIT = 2**53  # exact in JSON, BSON and JavaScript
META_KEYS: "tuple[str, ...]" = formats.META_KEYS

# Formats Pillow decodes that DP3 renders. Anything else Pillow happens to open
# (EPS runs Ghostscript, PDF, PSD, ICO...) is refused as unsupported_format.
RENDERED_FORMATS = ("JPEG", "MPO", "PNG", "TIFF", "HEIF", "WEBP", "BMP", "GIF")
DRAFTABLE_FORMATS = ("JPEG", "MPO")

# EXIF tag numbers (not Pillow's ExifTags enums, which Pillow 8 lacks).
TAG_ORIENTATION = 0x0112
TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_EXIF_IFD = 0x8769
TAG_GPS_IFD = 0x8825
TAG_EXPOSURE_TIME = 0x829A
TAG_F_NUMBER = 0x829D
TAG_ISO = 0x8827
TAG_DATETIME_ORIGINAL = 0x9003
TAG_OFFSET_TIME_ORIGINAL = 0x9011
TAG_FOCAL_LENGTH = 0x920A
TAG_LENS_MODEL = 0xA434
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE, GPS_ALTITUDE_REF, GPS_ALTITUDE = 1, 2, 3, 4, 5, 6

try:
    import PIL
    from PIL import Image

    PILLOW_IMPORT_ERROR = ""
    LANCZOS = getattr(Image, "Resampling", Image).LANCZOS  # Image.LANCZOS before Pillow 9.1
except Exception as exc:  # noqa: BLE001 -- ImportError, or a broken install failing in _imaging
    PILLOW_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"


class RenderError(Exception):
    """A classified failure: the exit status and a sentence a person can act on.

    Not a :class:`dp3.errors.DP3Error`: this file runs on workers, which have the
    standard library and Pillow only (and ``dp3_formats.py``, shipped beside it).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def environment_problem() -> "str | None":
    """Why this worker cannot render at all, or None. Checked before touching the photo."""
    if sys.version_info < MIN_PYTHON:
        found = ".".join(str(part) for part in sys.version_info[:3])
        wanted = ".".join(str(part) for part in MIN_PYTHON)
        return f"python3 on this worker is {found}; the render task needs Python >= {wanted}"
    if PILLOW_IMPORT_ERROR:
        return (
            f"Pillow cannot be imported on this worker ({PILLOW_IMPORT_ERROR}); "
            "install python3-pil (Debian) or 'pip install Pillow' for the workers' python3"
        )
    version = pillow_version()
    if version < MIN_PILLOW:
        wanted = ".".join(str(part) for part in MIN_PILLOW)
        return f"Pillow {PIL.__version__} on this worker is too old; the render task needs Pillow >= {wanted}"
    from PIL import features

    if not features.check_codec("jpg"):
        return "Pillow on this worker was built without JPEG support (libjpeg); install a complete Pillow"
    return None


def pillow_version() -> "tuple[int, ...]":
    parts = []
    for piece in PIL.__version__.split(".")[:2]:
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


# ---------------------------------------------------------------- geometry


def fit_within(width: int, height: int, box: "tuple[int, int]") -> "tuple[int, int]":
    """The size of a ``width`` x ``height`` image scaled to fit ``box``, aspect kept, never enlarged."""
    scale = min(box[0] / width, box[1] / height, 1.0)
    return (
        min(box[0], max(1, round(width * scale))),
        min(box[1], max(1, round(height * scale))),
    )


def swaps_axes(orientation: int) -> bool:
    """Orientations 5-8 turn the stored image by a quarter: width and height swap."""
    return orientation in (5, 6, 7, 8)


def transpose_method(orientation: int) -> "int | None":
    """Pillow's transpose operation that makes a stored image with this EXIF orientation upright."""
    ops = getattr(Image, "Transpose", Image)
    return {
        2: ops.FLIP_LEFT_RIGHT,
        3: ops.ROTATE_180,
        4: ops.FLIP_TOP_BOTTOM,
        5: ops.TRANSPOSE,
        6: ops.ROTATE_270,
        7: ops.TRANSVERSE,
        8: ops.ROTATE_90,
    }.get(orientation)


# ---------------------------------------------------------------- EXIF subset


def as_float(value: Any) -> "float | None":
    """A finite float from an EXIF number (IFDRational, int, (num, den) pair), else None."""
    try:
        if isinstance(value, tuple) and len(value) == 2 and all(isinstance(part, int) for part in value):
            number = value[0] / value[1]
        elif isinstance(value, (tuple, list)) and len(value) == 1:
            return as_float(value[0])
        else:
            number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) and abs(number) <= NUMBER_LIMIT else None


def as_int(value: Any) -> "int | None":
    if isinstance(value, (tuple, list)):
        return as_int(value[0]) if value else None
    number = as_float(value)
    if number is None or abs(number) > NUMBER_LIMIT:
        return None
    return int(number)


def as_text(value: Any, limit: int = TEXT_LIMIT) -> "str | None":
    """Printable text from an EXIF string (str or bytes, NUL-padded, any encoding), else None."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    text = "".join(char for char in value if char.isprintable()).strip()
    return text[:limit] or None


def exif_datetime(value: Any) -> "str | None":
    """``2008:05:30 15:56:01`` -> ``2008-05-30T15:56:01``; a placeholder or garbage -> None.

    The rule is :mod:`dp3.formats`' own, so the scanner dates the photo by the same reading.
    """
    moment = formats.exif_local_datetime(value)
    return None if moment is None else moment.isoformat()


def exif_offset(value: Any) -> "str | None":
    """``+02:00`` or ``+0200`` -> ``+02:00``; garbage or beyond +-14 h -> None."""
    minutes = formats.exif_offset_minutes(value)
    return None if minutes is None else formats.offset_text(minutes)


def degrees(value: Any, reference: Any, negative: str) -> "float | None":
    """Degrees, minutes, seconds plus N/S or E/W -> signed decimal degrees."""
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 3:
        return None
    parts = [as_float(part) for part in value]
    if any(part is None for part in parts):
        return None
    total = 0.0
    for index, part in enumerate(parts):
        total += (part or 0.0) / 60**index
    if (as_text(reference) or "").upper().startswith(negative):
        total = -total
    return round(total, 7)


def gps_position(gps: "dict[int, Any]") -> "dict[str, float | None] | None":
    latitude = degrees(gps.get(GPS_LATITUDE), gps.get(GPS_LATITUDE_REF), "S")
    longitude = degrees(gps.get(GPS_LONGITUDE), gps.get(GPS_LONGITUDE_REF), "W")
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return None
    altitude = as_float(gps.get(GPS_ALTITUDE))
    reference = gps.get(GPS_ALTITUDE_REF)
    if altitude is not None and (reference == 1 or reference == b"\x01"):
        altitude = -altitude
    return {
        "latitude": latitude,
        "longitude": longitude,
        "altitude": None if altitude is None else round(altitude, 3),
    }


def xmp_packet(image: Any) -> Any:
    """The XMP packet: ``info["xmp"]``, or for a JPEG under Pillow < 10 its APP1 segment."""
    if "xmp" in image.info:
        return image.info["xmp"]
    for marker, content in getattr(image, "applist", []):
        if marker == "APP1" and content.startswith(b"http://ns.adobe.com/xap/1.0/\x00"):
            return content
    return None


def xmp_orientation(xmp: Any) -> "int | None":
    """``tiff:Orientation`` from an XMP packet: recent Pillows fall back to it, older ones do not."""
    if isinstance(xmp, bytes):
        xmp = xmp.decode("utf-8", errors="replace")
    match = re.search(r'tiff:Orientation(?:="|>)([1-8])', xmp) if isinstance(xmp, str) else None
    return int(match.group(1)) if match else None


def read_ifd(exif: Any, tag: int) -> "dict[int, Any]":
    try:
        ifd = exif.get_ifd(tag)
    except Exception:  # noqa: BLE001 -- odd EXIF must never fail the render
        return {}
    return dict(ifd) if isinstance(ifd, dict) else {}


def read_exif(image: Any) -> "tuple[dict[str, Any], int]":
    """The EXIF subset a researcher wants, JSON-safe, and the orientation (1 when absent or invalid)."""
    try:
        exif = image.getexif()
        base = dict(exif)
    except Exception:  # noqa: BLE001 -- a malformed EXIF block: render the pixels, report no EXIF
        return dict.fromkeys(EXIF_KEYS), 1
    details = read_ifd(exif, TAG_EXIF_IFD)

    def tag(number: int) -> Any:
        return formats.exif_tag(base, details, number)

    orientation = as_int(base.get(TAG_ORIENTATION, xmp_orientation(xmp_packet(image))))
    if orientation not in range(1, 9):
        orientation = None
    exposure = as_float(tag(TAG_EXPOSURE_TIME))
    f_number = as_float(tag(TAG_F_NUMBER))
    focal = as_float(tag(TAG_FOCAL_LENGTH))
    gps = read_ifd(exif, TAG_GPS_IFD)
    subset = {
        "make": as_text(base.get(TAG_MAKE)),
        "model": as_text(base.get(TAG_MODEL)),
        "lens": as_text(tag(TAG_LENS_MODEL)),
        "datetime_original": exif_datetime(tag(TAG_DATETIME_ORIGINAL)),
        "offset_time_original": exif_offset(tag(TAG_OFFSET_TIME_ORIGINAL)),
        "exposure_time": None if exposure is None else round(exposure, 9),
        "f_number": None if f_number is None else round(f_number, 3),
        "iso": as_int(tag(TAG_ISO)),
        "focal_length": None if focal is None else round(focal, 3),
        "orientation": orientation,
        "gps": gps_position(gps) if gps else None,
    }
    return subset, orientation or 1


# ---------------------------------------------------------------- decoding


def sniff_unsupported(head: bytes) -> "str | None":
    """What to tell a person about bytes in a format Pillow here cannot open, or None (then: corrupt)."""
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", errors="replace")
        if head[8:12] in HEIF_BRANDS:
            return (
                f"a HEIF/HEIC image (brand {brand}) and this worker has no pillow-heif to decode it: "
                "install pillow-heif on the workers, or convert the photo to JPEG"
            )
        if brand in ("avif", "avis"):
            return "an AVIF image, which DP3 does not render: convert it to JPEG"
        return f"an ISO media file (brand {brand}), e.g. a video, not a photo DP3 renders"
    if head[:4] == b"RIFF":
        return "a RIFF file (WebP this worker cannot decode, or audio/video): convert it to JPEG"
    if head[:4] == b"%PDF":
        return "a PDF document, not a photo: export the image as JPEG"
    return None


def decoder_present(head: bytes) -> bool:
    """This worker has the decoder for a HEIF or WebP file (checked once one failed to open).

    Then a failure to open it is the file's damage, not a format this worker cannot read.
    """
    if formats.is_heif(head):
        return True  # open_image registered pillow-heif, or it would be a missing decoder
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        from PIL import features

        return bool(features.check("webp"))
    return False


def open_image(data: bytes) -> Any:
    """Open (header only), or raise RenderError with the kind."""
    head = data[:16]
    heif_decoder = True
    if head[4:8] == b"ftyp":
        # Imported only for HEIF-family files (it costs time).
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except Exception:  # noqa: BLE001 -- absent or broken: this worker cannot decode HEIF
            heif_decoder = False
    try:
        image = Image.open(io.BytesIO(data))
        if image.format in DRAFTABLE_FORMATS:
            # The whole file in one feed: in 64 KB pieces libjpeg suspends and resumes
            # about a hundred times for a camera JPEG (3 % of the decode here).
            image.decodermaxblock = max(getattr(image, "decodermaxblock", 0), len(data))
    except Image.DecompressionBombError as exc:
        raise RenderError(EXIT_TOO_LARGE, f"refused before decoding: {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- Pillow's plugins raise many types for bad bytes
        what = sniff_unsupported(head)
        if formats.is_heif(head) and not heif_decoder:
            raise RenderError(EXIT_MISSING_DECODER, what or "") from None  # the worker's lack, not the photo's
        if what and not decoder_present(head):
            raise RenderError(EXIT_UNSUPPORTED_FORMAT, what) from None
        # Here a decoder for the format is present and refused the bytes: the file is damaged.
        if isinstance(exc, PIL.UnidentifiedImageError) and not decoder_present(head):
            reason = f"its content is not an image format Pillow knows (it starts with {head[:8]!r})"
        else:
            reason = f"its header is damaged ({type(exc).__name__}: {exc})"
        raise RenderError(EXIT_CORRUPT_IMAGE, f"not a readable image: {reason}; re-export or re-upload it") from None
    if image.format not in RENDERED_FORMATS:
        raise RenderError(
            EXIT_UNSUPPORTED_FORMAT,
            f"{image.format} images are not rendered (DP3 renders {', '.join(RENDERED_FORMATS)}): convert it to JPEG",
        )
    return image


def check_pixels(image: Any, max_pixels: int) -> None:
    check_size(image.size, max_pixels)


def check_size(size: "tuple[int, int]", max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise RenderError(EXIT_CORRUPT_IMAGE, f"the header claims a {width}x{height} image; re-export it")
    if width * height > max_pixels:
        raise RenderError(
            EXIT_TOO_LARGE,
            f"{width}x{height} = {width * height} pixels is above the limit of {max_pixels} "
            "(DP3_MAX_PIXELS); it was not decoded: downscale it, or raise the limit if it is genuine",
        )


# ---------------------------------------------------------------- memory, predicted from the header

MB = 1024 * 1024
THREAD_ALLOWANCE_BYTES = 16 * MB
"""Address space the resize thread takes: its stack (malloc arenas are shared, :func:`share_malloc_arena`)."""
HEIF_DECODER_BYTES_PER_PIXEL = 8
"""libheif's YUV planes plus pillow-heif's RGB(A) buffer, both alive while Pillow copies the pixels."""
WEBP_DECODER_BYTES_PER_PIXEL = 13
"""Pillow opens a WebP through libwebp's animation decoder, which allocates two RGBA canvases (8 bytes a
pixel) when the file is *opened*; loading copies the frame out of them (4 more), and lossy alpha is a
plane of its own (1). Hence :func:`check_webp_before_open`."""
TIFF_DECODER_BYTES_PER_PIXEL = 4
"""libtiff may read a strip- or tile-ordered image through a whole RGBA raster."""


def stored_bytes_per_pixel(mode: str) -> int:
    """Pillow's in-memory size of one pixel: 1 for L/P/1, 2 for 16-bit grey, else 32 bits (RGB too)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def conversion_bytes_per_pixel(mode: str, transparent_palette: bool) -> int:
    """What :func:`decode_web` holds beside the decoded pixels at full size, per pixel, before it resizes."""
    if mode in ("RGB", "L", "CMYK"):
        return 0
    if mode in ("RGBA", "LA"):
        return 4  # the resize premultiplies alpha into a full-size copy
    if mode in ("PA",) or (mode == "P" and transparent_palette):
        return 8  # an RGBA copy, then the RGB image it is pasted on
    if mode.startswith("I"):
        return 8  # a 32-bit copy, then point()'s 32-bit result
    if mode == "F":
        return 5
    return 4  # convert("RGB")


def progressive_coefficient_bytes(size: "tuple[int, int]", layers: "list[Any]") -> int:
    """A progressive JPEG's DCT coefficients, which libjpeg keeps for the whole image at any scale.

    Each component holds 64 16-bit coefficients per 8x8 block of its own
    (subsampled) plane, padded to whole MCUs.
    """
    width, height = size
    factors = [(int(layer[1]) or 1, int(layer[2]) or 1) for layer in layers] or [(1, 1)] * 3
    h_max = max(h for h, _ in factors)
    v_max = max(v for _, v in factors)
    mcus_wide = -(-width // (8 * h_max))
    mcus_high = -(-height // (8 * v_max))
    blocks = sum(mcus_wide * h * mcus_high * v for h, v in factors)
    return blocks * 64 * 2


def decode_cost_bytes(
    image_format: str,
    mode: str,
    stored: "tuple[int, int]",
    decoded: "tuple[int, int]",
    target: "tuple[int, int]",
    progressive: bool = False,
    layers: "list[Any] | None" = None,
    transparent_palette: bool = False,
) -> int:
    """Address space the decode and resize of an image will take, from its header alone.

    ``stored`` is the size in the file, ``decoded`` the size the decoder
    produces (smaller for a JPEG decoded at reduced scale), ``target`` the web
    version's size. Errs high: a photo predicted to fit must not run out of
    memory on the way, or it would fail as a crash rather than as ``too_large``.
    """
    pixels = decoded[0] * decoded[1]
    cost = pixels * (stored_bytes_per_pixel(mode) + conversion_bytes_per_pixel(mode, transparent_palette))
    if image_format in DRAFTABLE_FORMATS and progressive:
        cost += progressive_coefficient_bytes(stored, layers or [])
    elif image_format == "HEIF":
        cost += pixels * HEIF_DECODER_BYTES_PER_PIXEL
    elif image_format == "WEBP":
        cost += pixels * WEBP_DECODER_BYTES_PER_PIXEL
    elif image_format == "TIFF":
        cost += pixels * TIFF_DECODER_BYTES_PER_PIXEL
    # The resize: a box reduction first (reducing_gap=3), then two Lanczos passes.
    factor = max(1, int(min(decoded[0] / max(1, target[0]), decoded[1] / max(1, target[1])) / 3.0))
    reduced_height = -(-decoded[1] // factor)
    cost += (-(-decoded[0] // factor)) * reduced_height * 4 + target[0] * reduced_height * 4
    return cost + THREAD_ALLOWANCE_BYTES


def address_space_bytes() -> "int | None":
    """This process's mapped address space now (what RLIMIT_AS counts), or None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            pages = int(handle.read().split()[0])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def memory_message(memory_bytes: int, needed: "int | None" = None) -> str:
    """Why a photo did not fit the memory of a render, naming the settings that decide it."""
    limit = memory_bytes // MB
    need = "" if needed is None else f" (about {-(-needed // MB)} MB predicted from its header)"
    return (
        f"decoding it needs more memory than the {limit} MB a render may use{need}: "
        "raise DP3_TASK_MEMORY_MB for the workers, or lower DP3_MAX_PIXELS so that such photos are refused by size"
    )


def check_memory(image: Any, stored: "tuple[int, int]", target: "tuple[int, int]", memory_bytes: "int | None") -> None:
    """Refuse, before decoding, an image whose predicted decode does not fit the memory left."""
    if memory_bytes is None:
        return
    needed = decode_cost_bytes(
        image.format,
        image.mode,
        stored,
        image.size,
        target,
        progressive=bool(image.info.get("progressive") or image.info.get("progression")),
        layers=list(getattr(image, "layer", None) or []),
        transparent_palette="transparency" in image.info,
    )
    refuse_beyond(f"{image.width}x{image.height} {image.format} ({image.mode})", needed, memory_bytes)


def refuse_beyond(what: str, needed: int, memory_bytes: int) -> None:
    """too_large when ``needed`` more bytes do not fit the address space left under ``memory_bytes``."""
    used = address_space_bytes()
    if used is None:
        return  # no prediction here; the address-space limit still holds
    if used + needed > memory_bytes:
        raise RenderError(EXIT_TOO_LARGE, f"{what}: " + memory_message(memory_bytes, needed) + "; it was not decoded")


def webp_header(data: bytes) -> "tuple[tuple[int, int], bool] | None":
    """(canvas size, has alpha) from a WebP file's first chunk header, or None for anything else.

    The fields Pillow's WebP plugin reads for its own bomb check (``VP8 ``, ``VP8L``, ``VP8X``).
    """
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return (width, height), False
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1), bool(bits >> 28 & 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return (width, height), bool(data[20] & 0x10)
    return None


def check_webp_before_open(data: bytes, max_pixels: int, memory_bytes: "int | None") -> None:
    """Refuse a WebP too large by pixels or memory from its header, before Pillow opens it.

    Opening is where libwebp allocates its canvases: a large WebP would fail
    there under the address-space limit, and look like a file this worker
    cannot decode (unsupported_format), not a photo over a limit.
    """
    header = webp_header(data)
    if header is None:
        return
    size, alpha = header
    check_size(size, max_pixels)
    if memory_bytes is None:
        return
    mode = "RGBA" if alpha else "RGB"
    needed = decode_cost_bytes("WEBP", mode, size, size, fit_within(size[0], size[1], WEB_BOX))
    refuse_beyond(f"{size[0]}x{size[1]} WEBP ({mode})", needed, memory_bytes)


def is_out_of_memory(exc: BaseException) -> bool:
    """A MemoryError, or a decoder's own out-of-memory status (Pillow's ``decoder error -9``)."""
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def flatten(image: Any) -> Any:
    """RGB, L or CMYK pixels: transparency composed on white, 16-bit and palette images to 8 bits.

    The image's ``info`` (its ICC profile) is kept for :func:`to_srgb`.
    """
    info = image.info
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in info):
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba.getchannel("A"))
    elif image.mode.startswith("I") or image.mode == "F":
        # 16-bit samples scale down by 256; 32-bit integer or float ones by their own maximum.
        high = image.getextrema()[1]
        scale = 1 / 256 if image.mode.startswith("I;16") else (255 / high if high > 255 else 1.0)
        image = (image if image.mode == "F" else image.convert("I")).point(lambda value: value * scale).convert("L")
    elif image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    image.info = info
    return image


def to_srgb(image: Any) -> Any:
    """RGB pixels in the sRGB space: the embedded ICC profile, if any, converted."""
    image = flatten(image)
    icc = image.info.get("icc_profile")
    if icc:
        converted = icc_to_srgb(image, icc)
        if converted is not None:
            return converted
    return image if image.mode == "RGB" else image.convert("RGB")


def icc_to_srgb(image: Any, icc: bytes) -> Any:
    """The image converted from its embedded profile to sRGB, or None (no ImageCms, odd profile)."""
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if image.mode == "RGB" and "srgb" in (ImageCms.getProfileDescription(source) or "").lower():
            return image
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:  # noqa: BLE001 -- a broken or mismatched profile: keep the pixels as they are
        return None


def decode_web(image: Any, orientation: int, memory_bytes: "int | None" = None) -> Any:
    """Decode just enough of ``image`` to make the upright, sRGB web version.

    With ``memory_bytes`` (the render's address-space limit), a JPEG whose
    decode at reduced scale is predicted not to fit is refused as too_large
    before decoding (other formats were checked by :func:`render`).
    """
    stored_width, stored_height = image.size
    swapped = swaps_axes(orientation)
    upright = (stored_height, stored_width) if swapped else (stored_width, stored_height)
    web_width, web_height = fit_within(upright[0], upright[1], WEB_BOX)
    target = (web_height, web_width) if swapped else (web_width, web_height)
    try:
        if image.format in DRAFTABLE_FORMATS:
            image.draft("RGB", target)  # libjpeg scales by 1/2, 1/4 or 1/8 while decoding
            check_memory(image, (stored_width, stored_height), target, memory_bytes)  # others: in render()
        image.load()
    except RenderError:
        raise
    except Exception as exc:  # noqa: BLE001 -- decoders raise many types
        if is_out_of_memory(exc) and memory_bytes is not None:
            raise RenderError(EXIT_TOO_LARGE, memory_message(memory_bytes)) from None
        if is_out_of_memory(exc):
            raise RenderError(EXIT_RENDER_FAILED, "the worker ran out of memory decoding the image") from None
        raise_damaged(exc)
    # The pixels are in memory from here on: an exception below is not the photo's fault,
    # except a pixel mode Pillow cannot convert, or memory running out.
    try:
        return finish_web(image, orientation, target)
    except MemoryError:
        if memory_bytes is None:
            raise
        raise RenderError(EXIT_TOO_LARGE, memory_message(memory_bytes)) from None


def raise_damaged(exc: BaseException) -> "typing.NoReturn":
    """Truncated data, bad Huffman tables, broken TIFF strips...: the photo's fault."""
    raise RenderError(
        EXIT_CORRUPT_IMAGE, f"the image data is damaged ({type(exc).__name__}: {exc}); re-export or re-upload it"
    ) from None


def finish_web(image: Any, orientation: int, target: "tuple[int, int]") -> Any:
    """The decoded pixels -> the upright sRGB web version of size ``target``."""
    try:
        if image.mode not in ("RGB", "L", "CMYK", "RGBA", "LA"):
            image = flatten(image)  # resize needs these modes for a filtered result
    except ValueError as exc:
        raise RenderError(EXIT_UNSUPPORTED_FORMAT, f"pixel mode {image.mode} cannot be rendered ({exc})") from None
    if image.size != target:
        info = image.info
        # Lanczos even for the last 10 %: bicubic saved 3 ms of 130 and cost 0.4 dB (2026-11-25).
        image = resize_in_bands(image, target, reducing_gap=3.0)
        image.info = info
    image = to_srgb(image)
    method = transpose_method(orientation)
    return image if method is None else image.transpose(method)


# ---------------------------------------------------------------- threads


class Background(threading.Thread):
    """One call run in a thread; :meth:`result` waits for it and returns its value or raises its exception.

    Worth it only around calls that release the GIL for long: hashlib on a large
    buffer, Pillow's resampling.
    """

    def __init__(self, call: Any, *args: Any) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.args = args
        self.value: Any = None
        self.error: BaseException | None = None  # not evaluated in a function: parses on old Pythons
        self.start()

    def run(self) -> None:
        try:
            self.value = self.call(*self.args)
        except BaseException as exc:  # noqa: BLE001 -- handed to the thread that waits for the result
            self.error = exc

    def result(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


RESIZE_BANDS = 2
MIN_BAND_ROWS = 64  # below this a thread costs more than it saves
# Pillow resizes RGBA and LA by converting the whole source to premultiplied alpha
# first: per band, that would be done once per thread. Those stay in one piece.
BANDED_MODES = ("RGB", "L", "CMYK")


def resize_in_bands(image: Any, size: "tuple[int, int]", reducing_gap: float) -> Any:
    """``image.resize(size, LANCZOS)``, its output rows split into bands resampled in parallel.

    Each band resamples its own ``box`` of the source, and Pillow's filter reads
    source rows beyond a box's edge, so the bands join without a seam; pixels
    may differ from a single resize by a few levels (a band's filter weights
    round a little differently), far below what the JPEG encode changes.
    """
    width, height = size
    bands = min(RESIZE_BANDS, height // MIN_BAND_ROWS)
    if bands < 2 or image.mode not in BANDED_MODES:
        return image.resize(size, LANCZOS, reducing_gap=reducing_gap)
    image.load()  # before the threads: both read the same pixels
    scale = image.height / height
    edges = [height * band // bands for band in range(bands + 1)]

    def band(top: int, bottom: int) -> Any:
        box = (0, top * scale, image.width, bottom * scale)
        return image.resize((width, bottom - top), LANCZOS, box=box, reducing_gap=reducing_gap)

    # (No zip(strict=) nor itertools.pairwise: this file runs on Python 3.7.)
    others = [Background(band, edges[index], edges[index + 1]) for index in range(1, bands)]
    pieces = [band(edges[0], edges[1])] + [other.result() for other in others]
    output = Image.new(pieces[0].mode, size)
    for index, piece in enumerate(pieces):
        output.paste(piece, (0, edges[index]))
    return output


# ---------------------------------------------------------------- output


def save_jpeg(image: Any, path: str, progressive: bool) -> str:
    """Encode ``image`` as a JPEG at ``path``; the sha256 of the bytes written.

    The sha256 goes into meta.json, so the dispatcher can prove that the file it
    received is the one libjpeg wrote here, byte for byte, without decoding it
    on the head node (``dp3_dispatcher.verify``).
    """
    encoded = io.BytesIO()
    image.save(encoded, "JPEG", quality=JPEG_QUALITY, progressive=progressive)
    data = encoded.getvalue()
    # No fsync: a worker's sandbox is disposable (a lost worker means a re-run task);
    # the dispatcher makes the staging copy durable.
    with open(path, "wb") as handle:
        handle.write(data)
    return sha256_hex(data)


def remove_artifacts(outdir: str) -> None:
    """No artifact may survive a failed run: a half-written set must never look like a result."""
    for name in ARTIFACT_NAMES:
        for candidate in (name, f".{name}.tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(outdir, candidate))


def sha256_hex(data: bytes) -> str:
    # One call: the GIL is released for the whole buffer and taken back once.
    return hashlib.sha256(data).hexdigest()


def render(
    source: str, outdir: str, max_pixels: int = DEFAULT_MAX_PIXELS, memory_bytes: "int | None" = None
) -> "dict[str, Any]":
    """Render ``source`` into ``outdir``; returns meta.json's content. Raises RenderError.

    ``memory_bytes``: the address-space limit this process runs under, if any;
    a decode predicted not to fit it is refused before it starts.
    """
    started = time.perf_counter()
    with open(source, "rb") as handle:
        data = handle.read()
    if not data:
        raise RenderError(EXIT_EMPTY_FILE, "the file is empty (0 bytes): the upload did not finish; upload it again")
    hasher = Background(sha256_hex, data)
    Image.MAX_IMAGE_PIXELS = None  # check_pixels() below is the guard, with a message that names the limit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning, odd-EXIF warnings: decided on here
        check_webp_before_open(data, max_pixels, memory_bytes)
        image = open_image(data)
        check_pixels(image, max_pixels)
        if image.format not in DRAFTABLE_FORMATS and image.format != "WEBP":  # WebP: checked before it opened
            # Before the EXIF: Pillow decodes a whole PNG to look for an eXIf chunk after its pixels.
            # (A JPEG is checked in decode_web, at the scale libjpeg will decode it.)
            stored_size = image.size
            check_memory(image, stored_size, fit_within(stored_size[0], stored_size[1], WEB_BOX), memory_bytes)
        exif, orientation = read_exif(image)
        image_format = image.format
        stored = image.size
        web = decode_web(image, orientation, memory_bytes)
    # reducing_gap: a 2x2 box reduction first, then Lanczos; 3x faster, PSNR still about 50 dB.
    thumbnail = web.resize(fit_within(web.width, web.height, THUMBNAIL_BOX), LANCZOS, reducing_gap=2.0)
    os.makedirs(outdir, exist_ok=True)
    # (Encoding the web version in a thread beside the thumbnail saved nothing: measured 2026-11-29.)
    thumbnail_sha256 = save_jpeg(thumbnail, os.path.join(outdir, f".{THUMBNAIL_NAME}.tmp"), progressive=False)
    web_sha256 = save_jpeg(web, os.path.join(outdir, f".{WEB_NAME}.tmp"), progressive=True)
    width, height = (stored[1], stored[0]) if swaps_axes(orientation) else stored
    meta = {
        "sha256": hasher.result(),
        "size": len(data),
        "format": image_format,
        "width": width,
        "height": height,
        "thumbnail": {"width": thumbnail.width, "height": thumbnail.height, "sha256": thumbnail_sha256},
        "web": {"width": web.width, "height": web.height, "sha256": web_sha256},
        "exif": exif,
        "render_seconds": round(time.perf_counter() - started, 4),
    }
    meta_temp = os.path.join(outdir, f".{META_NAME}.tmp")
    with open(meta_temp, "w", encoding="utf-8") as handle:
        json.dump(meta, handle, allow_nan=False, ensure_ascii=False, sort_keys=True)
    # meta.json last: its presence says the set is complete.
    for name in ARTIFACT_NAMES:
        os.replace(os.path.join(outdir, f".{name}.tmp"), os.path.join(outdir, name))
    return meta


# ---------------------------------------------------------------- command line


def fail(status: int, message: str) -> int:
    print(json.dumps({"kind": KIND_BY_EXIT[status], "message": message}, ensure_ascii=False), flush=True)
    return status


class Limits:
    """What one photo's render may take: pixels (from the header), address space, wall-clock seconds."""

    def __init__(self, max_pixels: int, memory_mb: "int | None", seconds: "int | None") -> None:
        self.max_pixels = max_pixels
        self.memory_mb = memory_mb
        self.seconds = seconds

    @property
    def memory_bytes(self) -> "int | None":
        return None if self.memory_mb is None else self.memory_mb * MB


def render_one(source: str, outdir: str, limits: "Limits | int") -> "tuple[int, str]":
    """Render one photo in this process; (exit status, message). Leaves no artifact behind on failure."""
    if not isinstance(limits, Limits):
        limits = Limits(limits, None, None)
    try:
        render(source, outdir, limits.max_pixels, limits.memory_bytes)
    except RenderError as exc:
        remove_artifacts(outdir)
        return exc.status, exc.message
    except MemoryError:
        remove_artifacts(outdir)
        if limits.memory_bytes is None:
            return EXIT_RENDER_FAILED, "the worker ran out of memory rendering the image"
        return EXIT_TOO_LARGE, memory_message(limits.memory_bytes)
    except Exception as exc:  # noqa: BLE001 -- a bug or a full disk: not the photo's fault, so retryable
        remove_artifacts(outdir)
        return EXIT_RENDER_FAILED, f"the render task failed on this worker: {type(exc).__name__}: {exc}"
    return EXIT_OK, ""


M_ARENA_MAX = -8  # glibc's mallopt() parameter number


def share_malloc_arena() -> None:
    """Keep glibc from reserving 64 MB of address space per thread for a malloc arena of its own.

    Under RLIMIT_AS each such reservation counts as if used: the hashing thread
    alone would take 72 MB of the limit. Our threads barely allocate (hashlib
    and Pillow's resampler work in place), so one shared arena costs nothing.
    Done in the parent, so every forked child inherits it.
    """
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError, ImportError):  # not glibc: nothing to tune
        pass


def cap_memory(limits: Limits) -> None:
    """In the child: cap its address space (once: it holds for every photo the child renders)."""
    if limits.memory_bytes is not None and resource is not None:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = limits.memory_bytes if hard == resource.RLIM_INFINITY else min(limits.memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def arm_timer(limits: Limits) -> None:
    """In the child, before each photo: SIGALRM's default action ends it after ``limits.seconds``."""
    if limits.seconds is not None:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(limits.seconds)


def ended_by_signal(number: int, limits: Limits) -> "tuple[int, str]":
    """The verdict on a photo whose render process was killed by signal ``number``."""
    if number == signal.SIGALRM and limits.seconds is not None:
        return EXIT_RENDER_TIMEOUT, (
            f"rendering it took longer than the {limits.seconds} s a photo may take (DP3_TASK_MAX_SECONDS), "
            "so it was stopped: raise DP3_TASK_MAX_SECONDS if such photos are genuine"
        )
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    hint = (
        "; with DP3_TASK_MEMORY_MB set, the kernel's OOM killer may have ended it" if number == signal.SIGKILL else ""
    )
    return EXIT_RENDER_CRASHED, f"the render process died of {name} while rendering this photo{hint}"


def warm_up() -> None:
    """Import, once in the parent, what every render would otherwise import again in its own child.

    Pillow loads its format plugins and ImageCms on first use; in a forked
    child that first use is every photo's (measured: 16 small JPEGs went from
    0.2 s to 0.7 s before this).
    """
    with contextlib.suppress(Exception):  # a missing optional module is the render's concern, not this one's
        Image.preinit()
        from PIL import ImageCms, TiffImagePlugin, WebPImagePlugin  # noqa: F401

        ImageCms.createProfile("sRGB")


def fork_reporting() -> "tuple[int, int]":
    """Fork a render child with a pipe back: ``(0, write end)`` in the child, ``(pid, read end)`` in the parent."""
    sys.stdout.flush()  # else what is buffered would be written twice, once by each process
    sys.stderr.flush()
    reader, writer = os.pipe()
    pid = os.fork()
    os.close(reader if pid == 0 else writer)
    return pid, writer if pid == 0 else reader


def send_report(writer: int, status: int, message: str) -> None:
    """In a render child: one photo's verdict, one JSON line, through the pipe to the parent."""
    payload = (json.dumps({"status": status, "message": message}, ensure_ascii=False) + "\n").encode("utf-8")
    while payload:
        payload = payload[os.write(writer, payload) :]


def read_report(report: bytes) -> "tuple[int, str] | None":
    """A verdict :func:`send_report` wrote, or None for anything else (a child that died mid-write)."""
    try:
        verdict = json.loads(report.decode("utf-8"))
        return int(verdict["status"]), str(verdict["message"])
    except (ValueError, KeyError, TypeError):
        return None


def death_verdict(wait_status: int, limits: Limits) -> "tuple[int, str]":
    """The verdict on the photo a render child was on when it ended without reporting one."""
    if os.WIFSIGNALED(wait_status):
        return ended_by_signal(os.WTERMSIG(wait_status), limits)
    return EXIT_RENDER_CRASHED, f"the render process ended without a verdict (wait status {wait_status})"


def render_isolated(source: str, outdir: str, limits: Limits) -> "tuple[int, str]":
    """Render one photo in a forked child under ``limits``; (exit status, message), whatever the child does.

    The child reports its verdict through a pipe; a child that dies without one
    (a signal: the timer, a decoder's segfault, the OOM killer) is judged by its
    wait status. Either way nothing of a failed photo is left in ``outdir``.
    """
    if not hasattr(os, "fork"):
        return render_one(source, outdir, limits)
    pid, pipe_end = fork_reporting()
    if pid == 0:  # the child: never returns
        try:
            cap_memory(limits)
            arm_timer(limits)
            send_report(pipe_end, *render_one(source, outdir, limits))
        finally:
            os._exit(0)
    with os.fdopen(pipe_end, "rb") as pipe:
        report = pipe.read()
    _pid, wait_status = os.waitpid(pid, 0)
    verdict = None if os.WIFSIGNALED(wait_status) else read_report(report)
    if verdict is None:
        remove_artifacts(outdir)
        return death_verdict(wait_status, limits)
    return verdict


def render_in_one_child(
    sources: "list[str]", outdirs: "list[str]", limits: Limits
) -> "typing.Iterator[tuple[int, int, str]]":
    """The batch's fast path: photos rendered one after another in a single forked child, up to the first failure.

    Yields ``(index, exit status, message)`` for each photo the child reported,
    in order, as it reports it. The child stops after the first photo that
    failed; when it dies instead (a signal), the photo it was on is yielded with
    the verdict of its death (:func:`ended_by_signal`). Either way the caller
    goes on after the last index yielded. The child's limits are one photo's:
    its address space capped once, its timer re-armed for each photo.
    """
    pid, pipe_end = fork_reporting()
    if pid == 0:  # the child: never returns
        try:
            cap_memory(limits)
            for index in range(len(sources)):  # (no zip(strict=): this file runs on Python 3.7)
                arm_timer(limits)
                status, message = render_one(sources[index], outdirs[index], limits)
                signal.alarm(0)
                send_report(pipe_end, status, message)
                if status != EXIT_OK:
                    break
        finally:
            os._exit(0)
    reported, failed, ended = 0, False, False
    try:
        with os.fdopen(pipe_end, "rb") as pipe:
            for line in pipe:
                verdict = read_report(line)
                if verdict is None:
                    break  # a garbled report: judged as a death below
                status, message = verdict
                yield reported, status, message
                reported, failed = reported + 1, status != EXIT_OK
        _pid, wait_status = os.waitpid(pid, 0)
        ended = True
    finally:
        if not ended:  # the caller stopped listening (an exception): the child must not outlive the batch
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    if reported < len(sources) and not failed:
        remove_artifacts(outdirs[reported])
        yield (reported, *death_verdict(wait_status, limits))


def render_each(sources: "list[str]", outdirs: "list[str]", limits: Limits) -> "typing.Iterator[tuple[int, int, str]]":
    """Every photo's verdict, in order: fast where photos render, each failure judged by a child of its own.

    The photos go through one shared child (:func:`render_in_one_child`): a
    forked child per photo costs its fresh memory, about a quarter of a 12 MP
    render here (docs/render.md, "Limits per photo"). But no failure is decided
    there. A photo the shared child failed, or died on, is rendered again in a
    child of its own (:func:`render_isolated`), whose verdict is the photo's,
    so a photo's outcome never depends on the photos before it (a heap left
    fragmented, an address space nearly used, a decoder's state), and the rest
    of the batch goes on in a new shared child. The one exception is the timer:
    a photo that ran out of time in the shared child had the whole limit to
    itself, so it is not given a second one.
    """
    if not hasattr(os, "fork"):  # not a POSIX system (workers are Linux): one photo after another, in process
        for index in range(len(sources)):
            yield (index, *render_isolated(sources[index], outdirs[index], limits))
        return
    done = 0
    while done < len(sources):
        first = done
        for offset, status, message in render_in_one_child(sources[first:], outdirs[first:], limits):
            index = first + offset
            if status not in (EXIT_OK, EXIT_RENDER_TIMEOUT):
                status, message = render_isolated(sources[index], outdirs[index], limits)
            yield index, status, message
            done = index + 1


def render_batch(sources: "list[str]", results: str, limits: "Limits | int") -> None:
    """Render every source (:func:`render_each`); write each one's artifacts or failure into the tar ``results``."""
    if not isinstance(limits, Limits):
        limits = Limits(limits, None, None)
    scratch = tempfile.mkdtemp(prefix="dp3-batch-", dir=os.path.dirname(os.path.abspath(results)))
    outdirs = [os.path.join(scratch, str(index)) for index in range(len(sources))]
    try:
        with tarfile.open(results + ".tmp", "w", format=tarfile.PAX_FORMAT) as archive:
            for index, status, message in render_each(sources, outdirs, limits):
                outdir = outdirs[index]
                if status != EXIT_OK:
                    os.makedirs(outdir, exist_ok=True)
                    failure = {"status": status, "kind": KIND_BY_EXIT[status], "message": message}
                    with open(os.path.join(outdir, FAILURE_NAME), "w", encoding="utf-8") as handle:
                        json.dump(failure, handle, ensure_ascii=False)
                archive.add(outdir, arcname=str(index))
        os.replace(results + ".tmp", results)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description="Render a thumbnail, a web version and meta.json for a photo.")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    parser.add_argument("--memory-mb", type=int, default=None, help="address-space limit of each photo's render")
    parser.add_argument("--seconds", type=int, default=None, help="wall-clock limit of each photo's render")
    parser.add_argument("--batch", metavar="RESULTS", help="render every INPUT, results into this tar file")
    parser.add_argument("paths", nargs="+", help="INPUT OUTDIR, or with --batch: INPUT...")
    args = parser.parse_args(argv)
    if not args.batch and len(args.paths) != 2:
        parser.error("expected INPUT OUTDIR (or --batch RESULTS INPUT...)")
    problem = environment_problem()
    if problem:
        return fail(EXIT_WORKER_ENVIRONMENT, problem)
    limits = Limits(args.max_pixels, args.memory_mb, args.seconds)
    if limits.memory_mb is not None:
        share_malloc_arena()
    warm_up()
    if args.batch:
        try:
            render_batch(args.paths, args.batch, limits)
        except Exception as exc:  # noqa: BLE001 -- the tar could not be written: retry the batch
            return fail(EXIT_RENDER_FAILED, f"the batch failed on this worker: {type(exc).__name__}: {exc}")
        return EXIT_OK
    status, message = render_isolated(args.paths[0], args.paths[1], limits)
    return fail(status, message) if status != EXIT_OK else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
