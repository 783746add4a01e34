"""Pure helpers that turn catalog documents into what pages and the API show."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from dp3 import filenames, formats
from dp3.events import ErrorKind
from dp3_portal.fold import is_preview_record, upload_share

ADVICE = {
    ErrorKind.CORRUPT_IMAGE.value: "The file is not a readable image (truncated or damaged). Export it again from "
    "the camera or phone and drop the new copy in your inbox folder; the damaged original is kept in the archive.",
    ErrorKind.UNSUPPORTED_FORMAT.value: "DP3 cannot render this format. Convert it to JPEG, TIFF or HEIC and drop "
    "the converted file in your inbox folder; the original is kept in the archive.",
    ErrorKind.TOO_LARGE.value: "The image has more pixels than DP3 renders (DP3_MAX_PIXELS), or decoding it "
    "needs more memory than a render may use (DP3_TASK_MEMORY_MB). Downscale it, or ask an operator to raise the "
    "limit the message names and retry.",
    ErrorKind.EMPTY_FILE.value: "The file is empty: the upload never completed. Upload it again.",
    ErrorKind.NO_OWNER.value: "The file was dropped in the inbox root. Move it into your FIRST-LAST folder.",
    ErrorKind.UNREADABLE.value: "DP3 could not read the file (permissions or disk error). Ask an operator to check "
    "the inbox, then retry.",
    ErrorKind.WORKER_ENVIRONMENT.value: "A render worker lacked Python or an imaging library. Fix or remove the "
    "worker, then retry.",
    ErrorKind.RENDER_FAILED.value: "The render kept producing invalid artifacts. Retry; if it fails again, report "
    "the photo id to an operator.",
    ErrorKind.RENDER_CRASHED.value: "The render process died on this photo, alone, every time it was tried (a "
    "decoder crash). Retry once workers are updated; if it fails again, report the photo id to an operator.",
    ErrorKind.RENDER_TIMEOUT.value: "Rendering this photo took longer than a photo may take (DP3_TASK_MAX_SECONDS). "
    "Ask an operator to raise the limit, then retry.",
    ErrorKind.ARCHIVE_UNAVAILABLE.value: "An archive store was down, read-only or full. Once it is back the photo "
    "completes by itself; retry if it does not.",
    ErrorKind.BAD_NAME.value: "An archive store refused the file's name (too long for it, or characters it does "
    "not accept). Rename the file in your inbox folder, shorter and plainer; it is processed again by itself.",
}

API_FIELDS = (
    "id",
    "status",
    "owner",
    "datetime",
    "path",
    "path_bytes",
    "archives",
    "sha256",
    "size",
    "error",
    "failed",
    "model",
)


RENDER_STAGE = "dispatcher"
"""The stage of a render failure: its original is archived (and may be collected), so it can be rendered again."""


def can_retry(photo: dict[str, Any]) -> bool:
    """A photo that failed before archiving (its original is still in the inbox), or whose render failed."""
    if photo.get("status") == "Failed":
        return True
    error = photo.get("error") or {}
    return bool(photo.get("failed")) and error.get("stage") == RENDER_STAGE


def advice(photo: dict[str, Any]) -> str:
    kind = str(photo.get("error_kind") or "")
    return ADVICE.get(kind, "Report the photo id to an operator.") if photo.get("failed") else ""


def readable_name(escaped: str) -> str:
    """A stored name (escaped, :mod:`dp3.filenames`) as a person should see it: ``M%DCLLER`` -> ``MÜLLER``."""
    return filenames.readable(filenames.unescape(escaped))


def capture_text(seconds: int, zone: zoneinfo.ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(seconds, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def utc_text(moment: dt.datetime | None, empty: str = "") -> str:
    """A registry time (UTC; pymongo answers it without a zone) as ``2026-12-02 01:33 UTC``."""
    if moment is None:
        return empty
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def capture_iso(seconds: int, zone: zoneinfo.ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(seconds, zone).isoformat()


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def gps(meta: dict[str, Any] | None) -> tuple[float, float] | None:
    """Latitude and longitude from the render's metadata, wherever it put them."""
    if not meta:
        return None
    exif = meta.get(formats.META_EXIF)
    holders = [meta, meta.get(formats.EXIF_GPS), exif, (exif or {}).get(formats.EXIF_GPS)]
    for holder in holders:
        if not isinstance(holder, dict):
            continue
        for lat_key, lon_key in (("latitude", "longitude"), ("lat", "lon"), ("gps_latitude", "gps_longitude")):
            lat, lon = _number(holder.get(lat_key)), _number(holder.get(lon_key))
            if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
                return lat, lon
    return None


def map_link(position: tuple[float, float]) -> str:
    lat, lon = position
    return f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=15/{lat:.6f}/{lon:.6f}"


def flat_metadata(meta: dict[str, Any] | None, prefix: str = "") -> list[tuple[str, str]]:
    """``meta.json`` as sorted (name, value) rows for a table."""
    rows: list[tuple[str, str]] = []
    for key, value in sorted((meta or {}).items()):
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flat_metadata(value, f"{name}.")
        elif value is not None and value != "":
            rows.append((name, str(value)))
    return rows


def on_its_way(photo: dict[str, Any]) -> bool:
    """A photo shown from its preview: its original has not reached the pipeline yet."""
    return is_preview_record(photo)


def arrived_text(photo: dict[str, Any]) -> str:
    """How much of the original has arrived, for a person: "40 % arrived", or "not started"."""
    share = upload_share(photo)
    if share is None:
        return "not started"
    return f"{int(share * 100)} % arrived"


def api_item(photo: dict[str, Any], zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    item = {name: photo.get(name) for name in API_FIELDS}
    item["original_on_its_way"] = on_its_way(photo)
    item["original_arrived"] = upload_share(photo) if on_its_way(photo) else None
    item["path_bytes"] = photo.get("path_bytes") or None  # "" in the catalog (no nulls there), null in the API
    item["capture_time"] = capture_iso(int(photo["datetime"]), zone)
    return item


def api_detail(photo: dict[str, Any], zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    return {
        **api_item(photo, zone),
        "meta": photo.get("meta"),
        # seq is the catalog's own arrival counter (it orders the list), not a fact about the event.
        "history": [{k: v for k, v in item.items() if k != "seq"} for item in photo.get("history", [])],
        "advice": advice(photo),
    }
