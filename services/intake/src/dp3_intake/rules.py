"""The intake's decisions, as pure functions: what an upload declares, what a name may be, what to do next.

The HTTP and file code (:mod:`dp3_intake.uploads`, :mod:`dp3_intake.placement`)
only carries these out, so every refusal in docs/field-uploads.md can be read
(and tested) here in one place.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

from dp3 import filenames
from dp3.inbox_names import name_ignore_reason
from dp3_intake.errors import IntakeError

SHA256 = re.compile(r"[0-9a-f]{64}")
PREVIEW_MAX_BYTES = 1024 * 1024
RECEIPTS_PER_REQUEST = 200
"""The most sha256s one ``POST /api/receipts`` asks about: a card's day in one round trip, a bounded answer."""


@dataclass(frozen=True)
class Declared:
    """What a device declares about an original before sending it."""

    owner: str
    filename: str
    sha256: str
    size: int
    captured_at: str | None = None


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file in ``inbox/<owner>/``, or None."""
    if not name:
        return "the name is empty"
    if "/" in name or "\\" in name:
        return "the name has a path separator; send the file's base name"
    if name in (".", "..") or ".." in name.split("."):
        return "the name has a '..' component"
    if "\0" in name or any(ord(char) < 0x20 for char in name):
        return "the name has a NUL or control character"
    if len(name.encode("utf-8", "surrogateescape")) > filenames.NAME_MAX:
        return f"the name is longer than {filenames.NAME_MAX} bytes"
    reason = name_ignore_reason(name)
    if reason is not None:
        return f"the scanner ignores such names ({reason.value}): rename the file"
    return None


def _check_sha256(value: str) -> str:
    if not SHA256.fullmatch(value):
        raise IntakeError(400, "bad_sha256", "sha256 must be 64 lower-case hex digits")
    return value


def check_owner_and_name(owner: str, name: str, device_owner: str) -> None:
    """Raise the contract's error for an owner other than the token's, or a bad file name."""
    if owner != device_owner:
        raise IntakeError(403, "wrong_owner", f"this device may write only to {device_owner}'s folder")
    problem = name_problem(name)
    if problem is not None:
        raise IntakeError(400, "bad_name", problem)


def check_captured_at(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        raise IntakeError(400, "bad_metadata", "captured_at must be an ISO 8601 time") from None
    return value


def declared_upload(metadata: dict[str, str], length: int | None, device_owner: str, max_bytes: int) -> Declared:
    """The creation request's declaration, checked; raises :class:`IntakeError` with the contract's code."""
    if length is None:
        raise IntakeError(400, "no_length", "declare the file's size in Upload-Length (deferred lengths are refused)")
    missing = [key for key in ("owner", "filename", "sha256") if not metadata.get(key)]
    if missing:
        raise IntakeError(400, "bad_metadata", f"Upload-Metadata lacks {', '.join(missing)}")
    owner, name = metadata["owner"], metadata["filename"]
    check_owner_and_name(owner, name, device_owner)
    sha256 = _check_sha256(metadata["sha256"])
    if length > max_bytes:
        raise IntakeError(413, "too_large", f"{length} bytes declared; this intake takes at most {max_bytes}")
    return Declared(owner, name, sha256, length, check_captured_at(metadata.get("captured_at")))


def check_preview_sha256(value: str) -> str:
    return _check_sha256(value)


def receipt_question(body: object) -> list[str]:
    """The sha256s a ``POST /api/receipts`` body asks about, each once, in the order asked.

    One question for every photo a device has sent: over a dig site's link a
    round trip per photo per minute would take a share of the link that grows
    with the day's photos (docs/field-uploads.md).
    """
    asked = body.get("sha256") if isinstance(body, dict) else None
    if not isinstance(asked, list) or not all(isinstance(value, str) for value in asked):
        raise IntakeError(400, "bad_request", 'send {"sha256": ["<64 hex digits>", ...]}')
    if len(asked) > RECEIPTS_PER_REQUEST:
        raise IntakeError(413, "too_large", f"ask about at most {RECEIPTS_PER_REQUEST} photos per request")
    return list(dict.fromkeys(_check_sha256(value) for value in asked))


class Placement(enum.Enum):
    """What to do with a verified upload, given what its inbox name holds now."""

    WRITE = "write"  # the name is free: place it there
    ALREADY_THERE = "already_there"  # the same bytes are there: place nothing
    TAKEN = "taken"  # other bytes hold the name: use the tagged name


def placement(existing_sha256: str | None, sha256: str) -> Placement:
    if existing_sha256 is None:
        return Placement.WRITE
    return Placement.ALREADY_THERE if existing_sha256 == sha256 else Placement.TAKEN


def tagged_name(name: str, sha256: str) -> str:
    """``<stem>~<sha12><ext>``: where other bytes go when the name is taken (the scanner's disambiguation)."""
    return filenames.tagged(name, sha256[:12], filenames.NAME_MAX)


def is_expired(last_activity: float, now: float, expiry_days: float) -> bool:
    """Whether a partial upload untouched since ``last_activity`` (Unix time) is past its expiry."""
    return now - last_activity > expiry_days * 86400


def progress_due(last_sent: float | None, now: float, every: float, *, complete: bool) -> bool:
    """Whether to publish ``photo.uploading`` now: at most once per ``every`` seconds, and always at completion."""
    return complete or last_sent is None or now - last_sent >= every
