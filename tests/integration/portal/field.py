"""Field-upload events for portal tests: a corpus photo's preview (a real JPEG) and its upload reports.

Shaped as docs/field-uploads.md says the intake publishes them: ``id``
``preview:<sha256>``, the declared facts, ``meta`` ``{"preview": <path under
DP3_PREVIEWS>}`` or ``{"offset", "length"}``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from dp3.events import JournalEntry, Status, preview_id
from tests.integration.portal.conftest import PASSWORD
from tests.integration.portal.events import iso
from tests.integration.portal.running import RunningPortal
from tests.integration.portal.site import Site, render


def lifecycle_of(site: Site, relative: str) -> list[JournalEntry]:
    """The pipeline's events of one site photo (Detected ... Collected), in order."""
    return [entry for entry in site.events if entry.id == site.ids[relative]]


def write_preview(corpus: Path, relative: str, previews: Path, sha256: str) -> str:
    """A 640x480 preview of a corpus photo, as the intake stores it; its path relative to ``previews``."""
    name = f"{sha256[:2]}/{sha256}.jpg"
    render(corpus / relative, previews / name, (640, 480))
    return name


def preview_events(
    site: Site, relative: str, preview: str, *, at: float, offsets: tuple[int, ...] = ()
) -> list[JournalEntry]:
    """``Previewed`` for the photo, then one ``Uploading`` per offset of its original, a second apart."""
    detected = lifecycle_of(site, relative)[0]
    assert detected.sha256 and detected.size and detected.owner
    common = {
        "id": preview_id(detected.sha256),
        "datetime": detected.datetime,
        "owner": detected.owner,
        "path": os.path.basename(detected.path),
        "sha256": detected.sha256,
        "size": detected.size,
        "service": "intake",
    }
    events = [JournalEntry(status=Status.PREVIEWED, at=iso(at), meta={"preview": preview}, **common)]
    for n, offset in enumerate(offsets, start=1):
        meta = {"offset": offset, "length": detected.size}
        events.append(JournalEntry(status=Status.UPLOADING, at=iso(at + n), meta=meta, **common))
    return events


def run_portal(site: Site | None, env: dict[str, str], home: Path) -> Iterator[RunningPortal]:
    """The real ``dp3-portal`` (over the site's stores, if any), with ``env`` on top (DP3_MONGO_URL ...)."""
    full = {"DP3_HOME": str(home), "DP3_ADMIN_PASSWORD": PASSWORD, **env}
    if site is not None:
        full |= {"DP3_STORES": ",".join(str(store) for store in site.stores), "DP3_STAGING": str(site.staging)}
    running = RunningPortal(full, home / "portal.log")
    try:
        yield running
    finally:
        running.stop()
