"""Pure decision: what event a finished, hashed upload becomes.

No I/O here: the facts about the file go in, one journal entry comes out.
Names arrive as the file system has them (``os`` strings, bytes that are not
UTF-8 as surrogates) and leave escaped, with the exact bytes in
``path_bytes`` where escaping changed them (see :mod:`dp3.events`).

* in the inbox root: ``Failed`` / ``no_owner`` (the user must move it);
* same bytes as an archived photo whose original was already collected, or
  archived under another id: ``Duplicate`` naming that id and its archives;
* otherwise ``Detected`` (also for the original of an archived photo that is
  still waiting to be collected: that is a re-drive of the same photo).
"""

from __future__ import annotations

from dataclasses import dataclass

from dp3.events import BASE_ID_MAX, ErrorInfo, ErrorKind, JournalEntry, Status, make_photo_id, path_fields
from dp3.filenames import escape_os, fit
from dp3_scanner.index import ArchivedPhoto

SERVICE = "scanner"
NO_OWNER_MESSAGE = (
    "This photo is directly in the inbox, so DP3 cannot tell whose it is. "
    "Move it into your own FIRST-LAST folder (e.g. JAEGER-NICHOLAS/) and it will be picked up."
)


@dataclass(frozen=True)
class Upload:
    """A finished upload, read once."""

    path: str
    name: str
    owner: str | None
    capture_time: int
    sha256: str
    size: int
    upload_finished_at: float


def photo_id(upload: Upload) -> str:
    """The seed's ``{owner}_{datetime}_{basename}``; an owner-less file gets an empty owner part.

    This is the id before the index has a say: :meth:`dp3_scanner.index.Index.assign_id`
    gives a different file whose id is taken its own.
    """
    if upload.owner is None:
        return fit(f"_{upload.capture_time}_{escape_os(upload.name)}", BASE_ID_MAX)
    return make_photo_id(upload.owner, upload.capture_time, upload.name)


def shown_owner(owner: str | None) -> str | None:
    """The owner folder's name as events carry it (escaped)."""
    return None if owner is None else escape_os(owner)


def decide(upload: Upload, archived: ArchivedPhoto | None, assigned_id: str | None = None) -> JournalEntry:
    """The event for ``upload``, given what is known about its bytes being archived.

    ``assigned_id`` is the id the index handed out for these bytes (default: :func:`photo_id`).
    """
    common = {
        "id": assigned_id or photo_id(upload),
        "datetime": upload.capture_time,
        "owner": shown_owner(upload.owner),
        **path_fields(upload.path),
        "sha256": upload.sha256,
        "size": upload.size,
        "service": SERVICE,
        "upload_finished_at": upload.upload_finished_at,
    }
    if upload.owner is None:
        error = ErrorInfo(stage=SERVICE, kind=ErrorKind.NO_OWNER, message=NO_OWNER_MESSAGE)
        return JournalEntry(status=Status.FAILED, error=error, **common)
    if archived is not None and (archived.collected or archived.photo_id != common["id"]):
        return JournalEntry(
            status=Status.DUPLICATE, duplicate_of=archived.photo_id, archives=list(archived.archives), **common
        )
    return JournalEntry(status=Status.DETECTED, **common)


def unreadable(path: str, name: str, owner: str | None, mtime_ns: int, reason: str) -> JournalEntry:
    """``Failed`` / ``unreadable``: the scanner may not read the file (permissions, I/O error)."""
    capture = mtime_ns // 1_000_000_000
    upload = Upload(path, name, owner, capture, "", 0, 0.0)
    message = f"DP3 cannot read this file ({reason}); check its permissions or upload it again."
    return JournalEntry(
        id=photo_id(upload),
        status=Status.FAILED,
        datetime=capture,
        owner=shown_owner(owner),
        **path_fields(path),
        service=SERVICE,
        error=ErrorInfo(stage=SERVICE, kind=ErrorKind.UNREADABLE, message=message),
    )
