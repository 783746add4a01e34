"""The journal entry: the one message every DP3 service speaks.

Every event on the broker is a journal entry. It keeps the six fields of the
2012 seed (``status, datetime, archives, owner, path, id``) with their
meaning, so an old journal line still parses, and adds what the system needs
to be idempotent and auditable (``sha256, size, event_id, at, service,
error``) plus a few stage-to-stage facts (``meta``, ``duplicate_of``,
``upload_finished_at``, ``attempt``).

Consumers are idempotent by ``(id, status)``; ``event_id`` identifies one
publication, so a redelivered message can be recognised as such.

Names are bytes (invariant 6). ``path``, ``owner`` and ``id`` are always
valid Unicode that JSON, SQLite and MongoDB take: the escaped form of
:mod:`dp3.filenames` (``caf%E9.jpg`` for the Latin-1 bytes ``caf\\xe9.jpg``),
which is the name itself for every valid UTF-8 name without control
characters. When escaping changed the path, ``path_bytes`` carries the
original path's exact bytes (standard base64), and :attr:`JournalEntry.fs_path`
is what a service opens: the one path the file system knows. Entries without
``path_bytes`` (every plain name, and every journal line written before it
existed) mean ``path`` exactly.

The id is ``{owner}_{datetime}_{basename}`` (:func:`make_photo_id`) over
the escaped owner and basename, shortened to :data:`ID_MAX` bytes
when needed (head, ``~n`` + a 12-hex hash of the whole id, extension), so every
name derived from it fits NAME_MAX. Two different files never share an id:
the scanner gives a second file (other bytes) whose id is taken the id
``<stem>~<first 12 hex of its sha256><extension>`` (:func:`disambiguated_id`).
The same bytes at two paths may share an id: they are one photo, and the
second is recorded as its duplicate.

Field uploads (docs/field-uploads.md) extend the brief's contract with two
statuses the intake publishes *before* a photo enters the pipeline:

* ``Previewed`` (``photo.previewed``): a field device sent a photo's preview
  ahead of its original. ``id`` is ``preview:<sha256>`` (:func:`preview_id`),
  never a pipeline id; ``sha256``, ``size``, ``owner``, ``path`` (the name the
  original will have) and ``datetime`` are what the device declared, and
  ``meta`` is ``{"preview": "<path under DP3_PREVIEWS>"}``.
* ``Uploading`` (``photo.uploading``): how much of that original has arrived,
  ``meta`` ``{"offset": int, "length": int}``; throttled by the intake.

Neither is a pipeline stage: no stage queue binds them (only the portal's
``photo.#`` sees them), and a photo in either state never counts as detected,
archived or collected anywhere (:attr:`Status.is_pipeline` is False). The
portal joins them to the photo's pipeline record by ``sha256``: once the
scanner's ``Detected`` for those bytes arrives, that is the photo's one record.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import os
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dp3 import filenames

EXCHANGE = "dp3.journal"
"""The durable topic exchange every event is published to."""


class Status(enum.StrEnum):
    """Where a photo stands. The pipeline's statuses come first, in its order.

    ``Previewed`` and ``Uploading`` come last: they are announcements of a field
    upload before the original reaches the inbox, not stages (see the module
    docstring), and were added after the first six, which keep their places.
    """

    DETECTED = "Detected"
    PROCESSED = "Processed"
    ARCHIVED = "Archived"
    COLLECTED = "Collected"
    FAILED = "Failed"
    DUPLICATE = "Duplicate"
    PREVIEWED = "Previewed"
    UPLOADING = "Uploading"

    @property
    def routing_key(self) -> str:
        """``photo.<status>`` in lower case, as bound on the topic exchange."""
        return f"photo.{self.value.lower()}"

    @property
    def is_pipeline(self) -> bool:
        """Whether this status is a pipeline stage's outcome (False for the field-upload announcements)."""
        return self not in FIELD_UPLOAD_STATUSES


FIELD_UPLOAD_STATUSES = frozenset({Status.PREVIEWED, Status.UPLOADING})
"""The intake's announcements: never a stage's input, never counted as a photo in the pipeline."""
PIPELINE_STATUSES = tuple(status for status in Status if status.is_pipeline)
"""The six statuses of the brief, in the pipeline's order: what counts, folds and metrics of photos iterate."""

PIPELINE_RANK = {
    Status.DETECTED: 0,
    Status.PROCESSED: 1,
    Status.FAILED: 1,
    Status.DUPLICATE: 1,
    Status.ARCHIVED: 2,
    Status.COLLECTED: 3,
}
"""How far along each pipeline status puts a photo: a later event of a lower rank (a redelivered
``Detected`` after ``Archived``) never moves a record back. ``Failed`` and ``Duplicate`` end where
``Processed`` stands: each is the dispatcher's or the scanner's last word on the photo."""

PREVIEW_ID_PREFIX = "preview:"


def preview_id(sha256: str) -> str:
    """The journal id of a photo known only by its preview: ``preview:<sha256>``."""
    return f"{PREVIEW_ID_PREFIX}{sha256}"


class ErrorKind(enum.StrEnum):
    """The small, fixed set of reasons a photo can fail; each tells a user what to do."""

    CORRUPT_IMAGE = "corrupt_image"  # the bytes are not a decodable image: re-export it
    UNSUPPORTED_FORMAT = "unsupported_format"  # not a format DP3 renders
    TOO_LARGE = "too_large"  # above DP3_MAX_PIXELS, or its decode does not fit DP3_TASK_MEMORY_MB
    EMPTY_FILE = "empty_file"  # zero bytes: the upload never happened
    NO_OWNER = "no_owner"  # dropped in the inbox root: move it into your FIRST-LAST folder
    UNREADABLE = "unreadable"  # permissions or I/O error reading the original
    WORKER_ENVIRONMENT = "worker_environment"  # a worker lacks Python or an imaging library
    RENDER_FAILED = "render_failed"  # the task kept producing invalid artifacts
    RENDER_CRASHED = "render_crashed"  # the render process died on this photo (rendered alone), every attempt
    RENDER_TIMEOUT = "render_timeout"  # this photo's render took longer than DP3_TASK_MAX_SECONDS, every attempt
    ARCHIVE_UNAVAILABLE = "archive_unavailable"  # a store is down, read-only or full
    SOURCE_CHANGED = "source_changed"  # the inbox file changed or vanished before it was archived
    BAD_NAME = "bad_name"  # a store refused the file's name (too long for it, bytes it refuses): rename it


class ErrorInfo(BaseModel):
    """Why a photo failed: which stage, which kind, and a sentence for a person."""

    model_config = ConfigDict(frozen=True)

    stage: str
    kind: ErrorKind
    message: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JournalEntry(BaseModel):
    """One journal entry, i.e. one event on ``dp3.journal``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # The seed's fields.
    id: str
    status: Status
    datetime: int = Field(description="capture time, Unix seconds")
    archives: list[str] = Field(default_factory=list)
    owner: str | None = None
    path: str = Field(description="the inbox path, escaped (dp3.filenames) where it is not plain UTF-8")
    # What the system adds.
    path_bytes: str | None = Field(
        default=None, description="base64 of the path's exact bytes, when escaping changed it (see fs_path)"
    )
    sha256: str | None = None
    size: int | None = Field(default=None, ge=0)
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    at: str = Field(default_factory=_now, description="when this event was emitted, UTC ISO 8601")
    service: str = "unknown"
    error: ErrorInfo | None = None
    meta: dict[str, Any] | None = Field(default=None, description="metadata from the render (meta.json)")
    duplicate_of: str | None = Field(default=None, description="on Duplicate: the id already archived")
    upload_finished_at: float | None = Field(default=None, description="Unix time the upload was seen finished")
    attempt: int = Field(
        default=0,
        ge=0,
        description="generation of a Detected or Duplicate: 0 when first seen, +1 per re-announcement by the "
        "scanner, max+1 for a retry from the portal (a key of the wire format and of stored journals: kept)",
    )
    stored_name: str | None = Field(
        default=None, description="on Archived/Collected: the original's file name in the stores (id, or id~sha)"
    )

    @field_validator("id", "path")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("path_bytes")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("must be base64") from None
        return value

    @property
    def routing_key(self) -> str:
        return self.status.routing_key

    @property
    def fs_path(self) -> str:
        """The path as ``os`` functions take it (``surrogateescape`` str): the original bytes, exactly."""
        if self.path_bytes is None:
            return self.path
        return os.fsdecode(base64.b64decode(self.path_bytes))

    def to_json(self) -> bytes:
        """The wire form: compact JSON, UTF-8."""
        return self.model_dump_json(exclude_none=False).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> JournalEntry:
        """Parse the wire form; raises :class:`InvalidEvent` with the reason."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise InvalidEvent(f"{where}: {first['msg']}") from None

    def next(self, status: Status, *, service: str, **changes: Any) -> JournalEntry:
        """The entry for this photo's next transition: a new event_id and time."""
        return self.model_copy(
            update={"status": status, "service": service, "event_id": str(uuid.uuid4()), "at": _now(), **changes}
        )


class InvalidEvent(ValueError):
    """A message body that is not a journal entry.

    A ``ValueError``, not a :class:`dp3.errors.DP3Error`: callers catch it as a bad value.
    """


def path_fields(fs_path: str) -> dict[str, str | None]:
    """``path`` (escaped) and ``path_bytes`` (only when escaping changed it) for an ``os`` path."""
    raw = os.fsencode(fs_path)
    shown = filenames.escape(raw)
    return {"path": shown, "path_bytes": None if shown.encode() == raw else base64.b64encode(raw).decode()}


ID_MAX = 176
"""Bytes in a photo id: room left for the archiver's ``~<64 hex>`` collision names and every derived name."""
BASE_ID_MAX = ID_MAX - 13
"""Bytes in an id before the scanner's ``~<12 hex>`` disambiguation, so that never needs shortening."""


def make_photo_id(owner: str, capture_time: int, basename: str) -> str:
    """``{owner}_{datetime}_{basename}``, the seed's id rule; stable for the same file.

    ``owner`` and ``basename`` are names as ``os`` functions return them (bytes
    that are not UTF-8 as surrogates): they are escaped here, and the id is
    shortened to :data:`BASE_ID_MAX` bytes (:func:`dp3.filenames.fit`) if needed.
    """
    if not owner or "/" in owner:
        raise ValueError(f"owner must be one folder name, got {filenames.escape_os(owner)!r}")
    if not basename or "/" in basename or basename in (".", ".."):
        raise ValueError(f"basename must be a file name, got {filenames.escape_os(basename)!r}")
    plain = f"{filenames.escape_os(owner)}_{int(capture_time)}_{filenames.escape_os(basename)}"
    return filenames.fit(plain, BASE_ID_MAX)


def disambiguated_id(photo_id: str, sha256: str, digits: int = 12) -> str:
    """The id of a second, different file whose id is taken: ``<stem>~<sha256[:12]><extension>``.

    Within :data:`ID_MAX` bytes; ``digits=64`` is the fallback should 12 digits ever clash.
    """
    return filenames.tagged(photo_id, sha256[:digits], ID_MAX)
