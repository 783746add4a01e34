"""Where a photo's bytes are: looked up by photo id only, never by a client's path.

Store files carry the photo's ``stored_name`` (its id, unless the archiver
had to give a colliding photo a distinct name); staging files carry the id.

* thumbnail / web: the first folder in the photo's ``archives`` that holds
  the artifact, else ``staging/<id>/`` (the archiver has not run yet).
* original: the first store copy whose sha256 equals the catalog's; a copy
  that does not verify is skipped (logged) and the next store is tried.
* preview: the web-size JPEG a field device sent before the original
  (``DP3_PREVIEWS``, docs/field-uploads.md). It stands in for the thumbnail
  and the web version until the render's exist; it is never the original.

Folders named in events are trusted only below a configured store: a folder
outside every store is ignored, and :func:`dp3.files.event_path_under` (the rule
every service applies) refuses symlinks on the way down.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dp3 import layout
from dp3.files import OutsideRoot, event_path_under, is_within, path_under, sha256_file

log = logging.getLogger(__name__)

ARTIFACTS = {"thumbnail": layout.thumbnail_name, "web": layout.web_name}


def _store_folders(photo: dict[str, Any], stores: tuple[Path, ...]) -> list[Path]:
    """Each ``archives`` folder as a real path below a configured store, in order."""
    folders = []
    for folder in photo.get("archives") or []:
        candidate = Path(str(folder))
        for store in stores:
            if candidate.is_absolute() and is_within(store, candidate) and candidate != store:
                try:
                    folders.append(event_path_under(store, candidate))
                except OutsideRoot:
                    log.warning("ignoring archive folder %s", folder, extra={"photo_id": photo.get("id")})
                break
    return folders


def stored_name(photo: dict[str, Any]) -> str:
    return str(photo.get("stored_name") or photo["_id"])


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def artifact_path(photo: dict[str, Any], kind: str, stores: tuple[Path, ...], staging: Path) -> Path | None:
    photo_id = str(photo["_id"])
    name = ARTIFACTS[kind](stored_name(photo))
    for folder in _store_folders(photo, stores):
        try:
            candidate = path_under(folder, name)
        except OutsideRoot:
            continue
        if _plain_file(candidate):
            return candidate
    try:
        candidate = path_under(staging, Path(photo_id) / ARTIFACTS[kind](photo_id))
    except (OutsideRoot, ValueError):
        return None
    return candidate if _plain_file(candidate) else None


def preview_path(photo: dict[str, Any], previews: Path) -> Path | None:
    """The photo's preview file below ``previews``; None when it has none, or it names a place outside."""
    named = str(photo.get("preview") or "")
    if not named:
        return None
    try:
        candidate = event_path_under(previews, named) if Path(named).is_absolute() else path_under(previews, named)
    except OutsideRoot:
        log.warning("ignoring preview %s outside %s", named, previews, extra={"photo_id": photo.get("id")})
        return None
    return candidate if _plain_file(candidate) else None


def original_path(photo: dict[str, Any], stores: tuple[Path, ...]) -> Path | None:
    photo_id = str(photo["_id"])
    expected = str(photo.get("sha256") or "")
    for folder in _store_folders(photo, stores):
        try:
            candidate = path_under(folder, stored_name(photo))
        except OutsideRoot:
            return None
        if not _plain_file(candidate):
            continue
        try:
            digest, _ = sha256_file(candidate)
        except OSError as exc:
            log.warning("cannot read %s: %s", candidate, exc, extra={"photo_id": photo_id})
            continue
        if expected and digest == expected:
            return candidate
        log.warning("copy %s does not verify (sha256 %s)", candidate, digest, extra={"photo_id": photo_id})
    return None
