"""What a finished render task means: a classified failure, or artifacts that hold up.

A completed task is not a processed photo: a worker can exit 0 and still leave
a truncated JPEG, a web version of another photo, or a meta.json for other
bytes. This module is pure logic over the task's exit status, its output and
the files it left; the dispatcher decides what to do with the answer
(``permanent`` kinds fail the photo, the rest are retried on another worker).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from dp3 import formats, render_task
from dp3.events import ErrorKind
from dp3_dispatcher import artifact_meta

# The render task's own table (dp3.formats, shipped to the workers with it), as ErrorKinds. Exit 1 is
# left to the generic rule below: it is also how python3 itself ends on an uncaught traceback.
_KIND_BY_EXIT: dict[int, ErrorKind] = {
    status: ErrorKind(kind) for status, kind in formats.KIND_BY_EXIT.items() if status != formats.EXIT_RENDER_FAILED
}
_SHELL_CANNOT_EXECUTE = 126
_SHELL_NOT_FOUND = 127

_PERMANENT = frozenset(
    {ErrorKind.CORRUPT_IMAGE, ErrorKind.UNSUPPORTED_FORMAT, ErrorKind.TOO_LARGE, ErrorKind.EMPTY_FILE}
)
_MESSAGE_LIMIT = 500


def classify_exit(return_code: int, stdout: str) -> tuple[ErrorKind, str]:
    """The error kind and a sentence for a render task that exited ``return_code``.

    The task prints one JSON line ``{"kind", "message"}`` when it fails on
    purpose; its message is used when present. 126/127 come from the worker's
    shell: python3 itself is missing or cannot run.
    """
    message = _task_message(stdout)
    if return_code in _KIND_BY_EXIT:
        kind = _KIND_BY_EXIT[return_code]
        return kind, message or f"the render task exited {return_code} ({kind.value})"
    if return_code in (_SHELL_CANNOT_EXECUTE, _SHELL_NOT_FOUND):
        detail = _last_line(stdout)
        return ErrorKind.WORKER_ENVIRONMENT, (
            f"python3 cannot be run on this worker (shell exit {return_code})" + (f": {detail}" if detail else "")
        )
    detail = message or _last_line(stdout) or "no output"
    return ErrorKind.RENDER_FAILED, f"the render task exited {return_code}: {detail}"


def permanent(kind: ErrorKind) -> bool:
    """True when the photo itself is the problem: rendering it again anywhere gives the same answer."""
    return kind in _PERMANENT


def _task_message(stdout: str) -> str:
    """The ``message`` of the task's JSON line (the last one that parses), or ''."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and isinstance(report.get("message"), str):
            return str(report["message"])[:_MESSAGE_LIMIT]
    return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:_MESSAGE_LIMIT] if lines else ""


@dataclass(frozen=True)
class Verification:
    """The verdict on one task's artifacts; ``reason`` says what is wrong when not ``ok``."""

    ok: bool
    reason: str
    meta: dict[str, Any] | None


class _Rejected(Exception):
    """One failed check, with the reason; internal to :func:`verify_render`."""


def verify_render(
    thumbnail: Path, web: Path, meta: Path, expected_sha256: str, *, max_pixels: int = render_task.DEFAULT_MAX_PIXELS
) -> Verification:
    """Check a render's three files against each other, the meta.json schema and the ``Detected`` sha256."""
    try:
        content = _read_meta(meta, expected_sha256, max_pixels)
        original = (content["width"], content["height"])
        for path, box, role in (
            (thumbnail, render_task.THUMBNAIL_BOX, "thumbnail"),
            (web, render_task.WEB_BOX, "web"),
        ):
            size = _received_jpeg_size(path, role, content[role]["sha256"])
            _check_geometry(size, original, box, role)
            recorded = (content[role]["width"], content[role]["height"])
            if size != recorded:
                raise _Rejected(f"{role} {path.name} is {_dims(size)} but meta.json says {_dims(recorded)}")
    except _Rejected as rejected:
        return Verification(ok=False, reason=str(rejected), meta=None)
    return Verification(ok=True, reason="", meta=content)


def _read_meta(path: Path, expected_sha256: str, max_pixels: int) -> dict[str, Any]:
    try:
        content = artifact_meta.parse_meta(path.read_bytes(), max_pixels=max_pixels)
    except FileNotFoundError:
        raise _Rejected(f"meta.json is missing ({path.name})") from None
    except OSError as exc:
        raise _Rejected(f"meta.json cannot be read: {exc}") from None
    except artifact_meta.InvalidMeta as exc:
        raise _Rejected(f"meta.json {exc}") from None
    sha256 = content["sha256"]
    if sha256 != expected_sha256:
        raise _Rejected(
            f"meta.json sha256 {sha256[:12]}... differs from the detected {expected_sha256[:12]}...: "
            "the worker rendered other bytes"
        )
    return content


def _received_jpeg_size(path: Path, role: str, written_sha256: str) -> tuple[int, int]:
    """The size of the JPEG the worker wrote, byte for byte, or _Rejected.

    The sha256 the render task took of the bytes libjpeg gave it (meta.json)
    proves more than a decode on the head node did, for a hundredth of its CPU:
    a truncated file, and a bit flipped in transit or on a disk, which a decode
    passes as long as the entropy-coded data still parses. What is left to read
    here is the header: the format and the size.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _Rejected(f"{role} {path.name} is missing") from None
    except IsADirectoryError:
        raise _Rejected(f"{role} {path.name} is missing (a folder is in its place)") from None
    except OSError as exc:
        raise _Rejected(f"{role} {path.name} cannot be read: {exc}") from None
    received = hashlib.sha256(data).hexdigest()
    if received != written_sha256:
        raise _Rejected(
            f"{role} {path.name} is not the file the worker wrote: sha256 {received[:12]}..., "
            f"meta.json says {written_sha256[:12]}... ({len(data)} bytes received)"
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise _Rejected(f"{role} {path.name} is {image.format}, not JPEG")
            return image.size
    except _Rejected:
        raise
    except Exception as exc:  # noqa: BLE001 -- Pillow raises many types for damaged files
        raise _Rejected(f"{role} {path.name} is not a readable JPEG ({type(exc).__name__}: {exc})") from None


def _check_geometry(size: tuple[int, int], original: tuple[int, int], box: tuple[int, int], role: str) -> None:
    """Within the box, filling it as the task does, with the original's upright aspect.

    Each side is rounded to whole pixels (and the thumbnail is made from the
    web version), so a side may be off by one pixel from the exact scale:
    ``|w*H - h*W| <= W + H`` is that tolerance.
    """
    width, height = size
    if width > box[0] or height > box[1]:
        raise _Rejected(f"{role} is {_dims(size)}, larger than {_dims(box)}")
    if abs(width * original[1] - height * original[0]) > original[0] + original[1]:
        raise _Rejected(f"{role} is {_dims(size)}, not the aspect of the upright original {_dims(original)}")
    expected = render_task.fit_within(original[0], original[1], box)
    if abs(width - expected[0]) > 1 or abs(height - expected[1]) > 1:
        raise _Rejected(f"{role} is {_dims(size)}, expected {_dims(expected)} for a {_dims(original)} original")


def _dims(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
