"""The journal entry: the one message every DP3 service speaks.

Every event on the broker is a journal entry. It keeps the six fields of the
2012 seed (``status, datetime, archives, owner, path, id``) with their
meaning, so an old journal line still parses, and adds what the system needs
to be idempotent and auditable (``sha256, size, event_id, at, service,
error``) plus a few stage-to-stage facts (``meta``, ``duplicate_of``,
``upload_finished_at``, ``attempt``).

Consumers are idempotent by ``(id, status)``; ``event_id`` identifies one
publication, so a redelivered message can be recognised as such.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

EXCHANGE = "dp3.journal"
"""The durable topic exchange every event is published to."""


class Status(enum.StrEnum):
    """Where a photo stands. The order is the pipeline's order."""

    DETECTED = "Detected"
    PROCESSED = "Processed"
    ARCHIVED = "Archived"
    COLLECTED = "Collected"
    FAILED = "Failed"
    DUPLICATE = "Duplicate"

    @property
    def routing_key(self) -> str:
        """``photo.<status>`` in lower case, as bound on the topic exchange."""
        return f"photo.{self.value.lower()}"


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
    path: str
    # What the system adds.
    sha256: str | None = None
    size: int | None = Field(default=None, ge=0)
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    at: str = Field(default_factory=_now, description="when this event was emitted, UTC ISO 8601")
    service: str = "unknown"
    error: ErrorInfo | None = None
    meta: dict[str, Any] | None = Field(default=None, description="metadata from the render (meta.json)")
    duplicate_of: str | None = Field(default=None, description="on Duplicate: the id already archived")
    upload_finished_at: float | None = Field(default=None, description="Unix time the upload was seen finished")
    attempt: int = Field(default=0, ge=0, description="re-drive generation of a Detected")
    stored_name: str | None = Field(
        default=None, description="on Archived/Collected: the original's file name in the stores (id, or id~sha)"
    )

    @field_validator("id", "path")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @property
    def routing_key(self) -> str:
        return self.status.routing_key

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
    """A message body that is not a journal entry."""


def make_photo_id(owner: str, capture_time: int, basename: str) -> str:
    """``{owner}_{datetime}_{basename}``, the seed's id rule; stable for the same file."""
    if not owner or "/" in owner:
        raise ValueError(f"owner must be one folder name, got {owner!r}")
    if not basename or "/" in basename or basename in (".", ".."):
        raise ValueError(f"basename must be a file name, got {basename!r}")
    return f"{owner}_{int(capture_time)}_{basename}"
