"""The schema of a render's ``meta.json``: every key, its type and its range, and no other key.

``meta.json`` comes from a worker, so it is untrusted input: a worker that
passed the password check can still be buggy or compromised. What the schema
accepts travels in ``Processed`` into the sidecars and the catalog, so it
must be what the render task writes, within bounds a BSON document, a
database index and a web page can hold: a ``width`` of 2**72 would pass
``isinstance(int)`` and then fail every catalog batch it landed in.

The bounds are those the render task itself produces (``render_task.py``):
pixel sides within the pixel limit, artifacts within their boxes, the EXIF
subset's texts as ``as_text`` cuts them, numbers finite and within
``render_task.NUMBER_LIMIT``, dates as ``exif_datetime`` writes them. Pure
logic; :func:`parse_meta` raises :class:`InvalidMeta` with a sentence that
names the field.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from dp3 import formats, render_task

META_BYTES_LIMIT = 64 * 1024
"""A real meta.json is under 2 KiB; the schema's string limits keep a valid one far below this."""

SIZE_LIMIT = 2**53
"""Bytes of an original: beyond any photo, and exact in JSON and BSON."""

RENDER_SECONDS_LIMIT = 7 * 86400.0
TEXT_LIMIT = render_task.TEXT_LIMIT
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_OFFSET = re.compile(r"[+-]\d{2}:\d{2}")


class InvalidMeta(ValueError):
    """meta.json breaks the schema; the message names the field and what is wrong.

    A ``ValueError`` (not a :class:`dp3.errors.DP3Error`): it is a bad value, caught
    by the verifier and turned into the attempt's reason.
    """


Check = Callable[[str, object], None]


def parse_meta(raw: bytes, *, max_pixels: int) -> dict[str, Any]:
    """meta.json's bytes as a dict that holds to the schema, or :class:`InvalidMeta`."""
    if len(raw) > META_BYTES_LIMIT:
        raise InvalidMeta(f"is {len(raw)} bytes, more than the {META_BYTES_LIMIT} a render writes")
    try:
        content = json.loads(raw, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except InvalidMeta:
        raise
    except ValueError as exc:  # also UnicodeDecodeError, and ints of more than 4300 digits
        raise InvalidMeta(f"is not valid JSON: {exc}") from None
    check_meta(content, max_pixels=max_pixels)
    return content  # type: ignore[no-any-return]  # check_meta proved it is a dict


def check_meta(content: object, *, max_pixels: int) -> None:
    """Raise :class:`InvalidMeta` unless ``content`` is exactly what a render of at most ``max_pixels`` writes."""
    meta = _exact_keys("meta.json", content, render_task.META_KEYS)
    _sha256("sha256", meta["sha256"])
    _integer("size", meta["size"], 1, SIZE_LIMIT)
    if meta["format"] not in render_task.RENDERED_FORMATS:
        raise InvalidMeta(f"format is not one DP3 renders: {_shown(meta['format'])}")
    _integer("width", meta["width"], 1, max_pixels)
    _integer("height", meta["height"], 1, max_pixels)
    if meta["width"] * meta["height"] > max_pixels:
        raise InvalidMeta(f"width x height {meta['width']}x{meta['height']} is more than DP3_MAX_PIXELS {max_pixels}")
    for role, box in (("thumbnail", render_task.THUMBNAIL_BOX), ("web", render_task.WEB_BOX)):
        artifact = _exact_keys(role, meta[role], ("width", "height", "sha256"))
        _integer(f"{role}.width", artifact["width"], 1, box[0])
        _integer(f"{role}.height", artifact["height"], 1, box[1])
        _sha256(f"{role}.sha256", artifact["sha256"])
    _number("render_seconds", meta["render_seconds"], 0.0, RENDER_SECONDS_LIMIT)
    _check_exif(meta["exif"])


_EXIF_CHECKS: Mapping[str, Check] = {
    "make": lambda name, value: _text(name, value),
    "model": lambda name, value: _text(name, value),
    "lens": lambda name, value: _text(name, value),
    "datetime_original": lambda name, value: _datetime(name, value),
    "offset_time_original": lambda name, value: _pattern(name, value, _OFFSET),
    "exposure_time": lambda name, value: _number(name, value, -render_task.NUMBER_LIMIT, render_task.NUMBER_LIMIT),
    "f_number": lambda name, value: _number(name, value, -render_task.NUMBER_LIMIT, render_task.NUMBER_LIMIT),
    "iso": lambda name, value: _integer(name, value, -render_task.NUMBER_LIMIT, render_task.NUMBER_LIMIT),
    "focal_length": lambda name, value: _number(name, value, -render_task.NUMBER_LIMIT, render_task.NUMBER_LIMIT),
    "orientation": lambda name, value: _integer(name, value, 1, 8),
    "gps": lambda name, value: _gps(name, value),
}


def _check_exif(value: object) -> None:
    exif = _exact_keys("exif", value, render_task.EXIF_KEYS)
    for key, check in _EXIF_CHECKS.items():
        if exif[key] is not None:  # every EXIF field may be absent from the photo
            check(f"exif.{key}", exif[key])


def _gps(name: str, value: object) -> None:
    gps = _exact_keys(name, value, ("latitude", "longitude", "altitude"))
    _number(f"{name}.latitude", gps["latitude"], -90.0, 90.0)
    _number(f"{name}.longitude", gps["longitude"], -180.0, 180.0)
    if gps["altitude"] is not None:
        _number(f"{name}.altitude", gps["altitude"], -render_task.NUMBER_LIMIT, render_task.NUMBER_LIMIT)


def _exact_keys(name: str, value: object, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidMeta(f"{name} is not a JSON object: {_shown(value)}")
    missing = [key for key in keys if key not in value]
    if missing:
        raise InvalidMeta(f"{name} lacks {', '.join(missing)}")
    extra = sorted(str(key) for key in value if key not in keys)
    if extra:
        raise InvalidMeta(f"{name} has keys a render does not write: {_shown(', '.join(extra))}")
    return value


def _integer(name: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass: true is not a width.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidMeta(f"{name} is not an integer: {_shown(value)}")
    if not low <= value <= high:
        raise InvalidMeta(f"{name} {_shown(value)} is outside {low}..{high}")


def _number(name: str, value: object, low: float, high: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidMeta(f"{name} is not a number: {_shown(value)}")
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidMeta(f"{name} {_shown(value)} is outside {low:g}..{high:g}")


def _text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidMeta(f"{name} is not a string: {_shown(value)}")
    if not 0 < len(value) <= TEXT_LIMIT or not value.isprintable():
        raise InvalidMeta(f"{name} is not 1..{TEXT_LIMIT} printable characters: {_shown(value)}")


def _pattern(name: str, value: object, pattern: re.Pattern[str]) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidMeta(f"{name} is not of the form {pattern.pattern}: {_shown(value)}")


def _datetime(name: str, value: object) -> None:
    _pattern(name, value, _DATETIME)
    assert isinstance(value, str)
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidMeta(f"{name} is not a date and time: {_shown(value)}") from None
    low, high = formats.EARLIEST_YEAR, formats.LATEST_YEAR
    if not low <= moment.year <= high:
        raise InvalidMeta(f"{name} {value} is outside the years {low}..{high}")


def _sha256(name: str, value: object) -> None:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise InvalidMeta(f"{name} is not a sha256: {_shown(value)}")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; which one a reader sees must not be a matter of luck.
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise InvalidMeta(f"has a key twice: {_shown(sorted({k for k in keys if keys.count(k) > 1}))}")
    return dict(pairs)


def _no_constant(constant: str) -> float:
    raise InvalidMeta(f"holds {constant}, which is not a JSON number")


def _shown(value: object) -> str:
    """A value for a message: its repr, cut short (a forged value may be megabytes)."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits
        return f"an integer of {value.bit_length() if isinstance(value, int) else '?'} bits"
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"
