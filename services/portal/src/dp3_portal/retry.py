"""Retrying a photo: the status page's button and the API both re-emit its ``Detected`` here.

Which photos may be retried is :func:`dp3_portal.presentation.can_retry`.
A photo whose render failed is archived and collected like any other, so its
original may have left the inbox: the retried ``Detected`` carries where the
archiver stored it (``archives``, ``stored_name``), and the dispatcher renders
the stores' copy once it has verified it against the photo's sha256.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import HTTPException

from dp3.events import JournalEntry, Status
from dp3_portal import presentation
from dp3_portal.state import Portal

log = logging.getLogger(__name__)


async def request_retry(portal: Portal, user: str, photo_id: str) -> int:
    """Publish the photo's next ``Detected``; its attempt number. HTTPException 404/409 when it cannot be."""
    photo = await portal.catalog.photo(photo_id)
    if photo is None:
        raise HTTPException(404, "no such photo")
    if not presentation.can_retry(photo):
        raise HTTPException(409, "only a photo that failed before archiving, or whose render failed, can be retried")
    detections = await portal.catalog.journal_entries(photo, Status.DETECTED)
    if not detections:
        raise HTTPException(409, "no Detected event of this photo is recorded; drop the file in the inbox again")
    last = JournalEntry.model_validate({k: v for k, v in detections[-1].items() if k not in ("_id", "at_ts")})
    attempt = max(int(doc.get("attempt", 0)) for doc in detections) + 1
    where: dict[str, object] = {}
    if photo.get("archives"):
        where = {"archives": list(photo["archives"]), "stored_name": photo.get("stored_name") or None}
    again = last.next(Status.DETECTED, service="portal", attempt=attempt, error=None, **where)
    await asyncio.to_thread(portal.publisher.publish, again)
    log.info("retry requested by %s (attempt %d)", user, attempt, extra={"photo_id": photo_id})
    return attempt
