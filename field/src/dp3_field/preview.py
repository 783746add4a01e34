"""A photo's preview, made on the laptop with the project's own render code.

:func:`dp3.render_task.render` is the function a cluster worker runs on the
same original later: the preview the gallery shows first is the web version
(fits 640x480, upright, sRGB) a worker would make, not a look-alike. It also
hashes the bytes and reads the EXIF capture time in the same single read.
A file the render refuses (not an image, damaged) gets no preview; its
original is still sent, and the head node's pipeline classifies it.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dp3 import formats, render_task
from dp3.files import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    sha256: str
    size: int
    taken: float
    """Capture time, Unix seconds."""
    day: str
    """Capture day in the site's time, ``YYYY-MM-DD``."""
    captured_at: str | None
    """ISO 8601 capture time for the head node, None when only the file's mtime was known."""
    preview: Path | None
    problem: str | None = None


def capture_time(exif: dict[str, Any], mtime: float, zone: zoneinfo.ZoneInfo) -> tuple[float, str, str | None]:
    """(Unix seconds, day, ISO text or None) from the render's EXIF subset, else the file's mtime. Pure.

    The same reading the scanner makes: DateTimeOriginal with its offset, or
    in the site's zone when it has none (:func:`dp3.formats.capture_moment`).
    """
    local = exif.get("datetime_original")
    if isinstance(local, str):
        offset = exif.get("offset_time_original")
        minutes = formats.exif_offset_minutes(offset) if isinstance(offset, str) else None
        moment = formats.capture_moment(dt.datetime.fromisoformat(local), minutes, zone)
        return moment.timestamp(), moment.date().isoformat(), moment.isoformat()
    moment = dt.datetime.fromtimestamp(mtime, zone)
    return mtime, moment.date().isoformat(), None


def render_preview(source: Path, previews: Path, mtime: float, zone: zoneinfo.ZoneInfo) -> Rendered:
    """Render ``source``'s preview into ``previews/<sha256>.jpg``; hash and date it."""
    previews.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".render-", dir=previews))
    try:
        try:
            meta = render_task.render(str(source), str(workdir))
        except render_task.RenderError as exc:
            sha256, size = sha256_file(source)
            taken, day, captured_at = capture_time({}, mtime, zone)
            log.info("%s: no preview (%s); its original is still sent", source.name, exc.message)
            return Rendered(sha256, size, taken, day, captured_at, None, exc.message)
        final = previews / f"{meta['sha256']}.jpg"
        (workdir / render_task.WEB_NAME).replace(final)
        taken, day, captured_at = capture_time(meta["exif"], mtime, zone)
        return Rendered(str(meta["sha256"]), int(meta["size"]), taken, day, captured_at, final)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
