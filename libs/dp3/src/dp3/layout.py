"""Where a photo's files live: staging and store names, computed in one place.

The dispatcher writes staging, the archiver writes stores, the portal reads
both; if each computed names on its own they would drift. Pure functions only.

::

    staging/<id>/{<stem>_THUMBNAIL.jpg, <stem>_WEB.jpg, meta.json}
    <store>/<YYYY-MM-DD>/<id>                 the original, byte for byte
    <store>/<YYYY-MM-DD>/<stem>_THUMBNAIL.jpg, <stem>_WEB.jpg
    <store>/<YYYY-MM-DD>/<id>.json            sidecar: metadata + journal

``<stem>`` is the photo id without its extension, so two photographers'
``DSC00372.JPG`` taken the same day never share an artifact name.

Every name here fits NAME_MAX (255 bytes): ids have at most
:data:`dp3.events.ID_MAX` bytes, stored names (an id, or the archiver's
``<stem>~<sha><ext>``) at most :data:`STORED_NAME_MAX`, which leaves room for
``_THUMBNAIL.jpg`` and ``.json``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path, PurePosixPath

from dp3.filenames import NAME_MAX

STORE_MARKER = ".dp3-store"
"""A store is used only while this file exists at its root (an unmounted drive has none)."""

META_NAME = "meta.json"

THUMBNAIL_SUFFIX = "_THUMBNAIL.jpg"
WEB_SUFFIX = "_WEB.jpg"
SIDECAR_SUFFIX = ".json"
STORED_NAME_MAX = NAME_MAX - max(len(THUMBNAIL_SUFFIX), len(SIDECAR_SUFFIX))
"""Bytes in a stored name, so that its artifacts and sidecar still fit NAME_MAX."""


def artifact_stem(photo_id: str) -> str:
    """The id without its extension (``A-B_1355517208_DSC00372.JPG`` -> ``A-B_1355517208_DSC00372``)."""
    stem = PurePosixPath(photo_id).stem
    return stem or photo_id


def thumbnail_name(photo_id: str) -> str:
    return f"{artifact_stem(photo_id)}{THUMBNAIL_SUFFIX}"


def web_name(photo_id: str) -> str:
    return f"{artifact_stem(photo_id)}{WEB_SUFFIX}"


def sidecar_name(photo_id: str) -> str:
    return f"{photo_id}{SIDECAR_SUFFIX}"


def id_problem(photo_id: str) -> str | None:
    """Why ``photo_id`` cannot name a staging folder and its files (too long, a slash), or None.

    Ids from the scanner always pass (:func:`dp3.events.make_photo_id` keeps them short);
    this guards against an event from before that rule, or from elsewhere.
    """
    if "/" in photo_id or photo_id in ("", ".", ".."):
        return f"the id {photo_id!r} is not a file name"
    longest = max(len(name.encode()) for name in (photo_id, thumbnail_name(photo_id), sidecar_name(photo_id)))
    if longest > NAME_MAX:
        return f"names derived from the id are {longest} bytes, more than the {NAME_MAX} a file name may have"
    return None


def staging_dir(staging_root: Path, photo_id: str) -> Path:
    """``staging/<id>/``; the id never contains a slash (see ``make_photo_id``)."""
    if "/" in photo_id or photo_id in ("", ".", ".."):
        raise ValueError(f"not a photo id: {photo_id!r}")
    return staging_root / photo_id


def date_folder(capture_time: int, zone: zoneinfo.ZoneInfo) -> str:
    """``YYYY-MM-DD`` of the capture time in the site's time zone."""
    return dt.datetime.fromtimestamp(capture_time, tz=zone).strftime("%Y-%m-%d")
