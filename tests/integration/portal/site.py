"""A small real site for portal tests: corpus photos in two tmp stores, with rendered artifacts and events."""

from __future__ import annotations

import hashlib
import json
import shutil
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

from dp3 import layout
from dp3.events import ErrorInfo, ErrorKind, JournalEntry, Status
from tests.integration.portal.events import iso

PHOTOS = [
    ("JAEGER-NICHOLAS", "jpg/Canon_40D.jpg", "Canon EOS 40D"),
    ("JAEGER-NICHOLAS", "jpg/gps/DSCN0010.jpg", "COOLPIX P6000"),
    ("SMITH-ANNA", "jpg/Nikon_D70.jpg", "NIKON D70"),
    ("SMITH-ANNA", "jpg/Fujifilm_FinePix_E500.jpg", "FinePix E500"),
    ("DOE-JOHN", "jpg/Kodak_CX7530.jpg", "KODAK CX7530 ZOOM DIGITAL CAMERA"),
]
FAILED = ("DOE-JOHN", "jpg/corrupted.jpg")


def render(source: Path, target: Path, box: tuple[int, int]) -> None:
    with Image.open(source) as image:
        small = ImageOps.exif_transpose(image).convert("RGB")
        small.thumbnail(box)
        target.parent.mkdir(parents=True, exist_ok=True)
        small.save(target, "JPEG", quality=85)


@dataclass
class Site:
    root: Path
    stores: tuple[Path, Path]
    staging: Path
    events: list[JournalEntry] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    """corpus relative path -> photo id"""

    def photo_ids(self) -> list[str]:
        return list(self.ids.values())


def build_site(root: Path, corpus: Path, *, at: float = 1_790_000_000.0) -> Site:
    stores = (root / "archive-a", root / "archive-b")
    site = Site(root=root, stores=stores, staging=root / "staging")
    for store in stores:
        store.mkdir(parents=True)
        (store / layout.STORE_MARKER).write_text("")
    site.staging.mkdir()
    for n, (owner, relative, model) in enumerate(PHOTOS):
        source = corpus / relative
        capture = 1_355_517_208 + n * 86_400 * 30
        data = source.read_bytes()
        photo_id = f"{owner}_{capture}_{source.name}"
        day = layout.date_folder(capture, zoneinfo.ZoneInfo("UTC"))
        for store in stores:
            folder = store / day
            folder.mkdir(exist_ok=True)
            shutil.copyfile(source, folder / photo_id)
            render(source, folder / layout.thumbnail_name(photo_id), (120, 90))
            render(source, folder / layout.web_name(photo_id), (640, 480))
        meta = {"model": model, "make": model.split()[0], "width": 640}
        if "gps" in relative:
            meta["gps"] = {"latitude": 43.467, "longitude": 11.885}
        first = JournalEntry(
            id=photo_id,
            status=Status.DETECTED,
            datetime=capture,
            owner=owner,
            path=f"/inbox/{owner}/{source.name}",
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            service="scanner",
            at=iso(at + n * 10),
        )
        processed = first.next(Status.PROCESSED, service="dispatcher", meta=meta, at=iso(at + n * 10 + 1))
        archived = processed.next(
            Status.ARCHIVED,
            service="archiver",
            archives=[str(store / day) for store in stores],
            at=iso(at + n * 10 + 2),
        )
        collected = archived.next(Status.COLLECTED, service="archiver", at=iso(at + n * 10 + 3))
        site.events += [first, processed, archived, collected]
        site.ids[relative] = photo_id
    owner, relative = FAILED
    source = corpus / relative
    data = source.read_bytes()
    photo_id = f"{owner}_1400000000_{source.name}"
    first = JournalEntry(
        id=photo_id,
        status=Status.DETECTED,
        datetime=1_400_000_000,
        owner=owner,
        path=f"/inbox/{owner}/{source.name}",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        service="scanner",
        at=iso(at + 100),
    )
    error = ErrorInfo(stage="render", kind=ErrorKind.CORRUPT_IMAGE, message="image file is truncated")
    site.events += [first, first.next(Status.FAILED, service="dispatcher", error=error, at=iso(at + 101))]
    site.ids[relative] = photo_id
    return site


def write_sidecars(site: Site, store: Path) -> None:
    """Sidecars as the archiver keeps them (``dp3-sidecar/1``): metadata and the journal the archiver saw.

    The archiver never sees ``Detected`` (its queue starts at ``Processed``), so a sidecar's journal does not
    hold it: ``Processed`` carries everything ``Detected`` said.
    """
    by_photo: dict[str, list[JournalEntry]] = {}
    for entry in site.events:
        by_photo.setdefault(entry.id, []).append(entry)
    for photo_id, entries in by_photo.items():
        folders = [Path(f) for e in entries for f in e.archives if Path(f).parent == store]
        if not folders:
            continue
        meta = next((e.meta for e in entries if e.meta), None)
        journal = [json.loads(e.to_json()) for e in entries if e.status is not Status.DETECTED]
        document = {"format": "dp3-sidecar/1", "id": photo_id, "meta": meta, "journal": journal}
        (folders[0] / layout.sidecar_name(photo_id)).write_text(json.dumps(document))
