"""The catalog keeps names byte-exact and shows them readably; two photos that once shared an id stay two.

Real files in the site's stores, recorded through the real recorder into the
embedded MongoDB-wire server, read back through the real app (issue 14, items 2, 5).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from dp3 import layout
from dp3.broker import Publisher
from dp3.events import JournalEntry, Status, disambiguated_id, make_photo_id, path_fields
from dp3.filenames import escape_os
from tests.integration.portal.conftest import PASSWORD
from tests.integration.portal.events import iso
from tests.integration.portal.running import RunningPortal
from tests.integration.portal.site import Site, render
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration

CAPTURE = 1_355_517_208
DAY = "2012-12-14"


def _lifecycle(
    site: Site, source: Path, fs_path: str, photo_id: str, *, at: float, stored_name: str | None = None
) -> list[JournalEntry]:
    """A whole photo's events, with its files (original, artifacts) in every store of the site."""
    data = source.read_bytes()
    name = stored_name or photo_id
    for store in site.stores:
        folder = store / DAY
        folder.mkdir(exist_ok=True)
        shutil.copyfile(source, folder / name)
        render(source, folder / layout.thumbnail_name(name), (120, 90))
        render(source, folder / layout.web_name(name), (640, 480))
    owner = Path(fs_path).parts[2]
    first = JournalEntry(
        id=photo_id,
        status=Status.DETECTED,
        datetime=CAPTURE,
        owner=escape_os(owner),
        **path_fields(fs_path),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        service="scanner",
        at=iso(at),
    )
    processed = first.next(Status.PROCESSED, service="dispatcher", meta={"width": 640}, at=iso(at + 1))
    archived = processed.next(
        Status.ARCHIVED,
        service="archiver",
        archives=[str(s / DAY) for s in site.stores],
        stored_name=stored_name,
        at=iso(at + 2),
    )
    return [first, processed, archived, archived.next(Status.COLLECTED, service="archiver", at=iso(at + 3))]


def test_non_utf8_names_are_kept_byte_exact_and_shown_readably(
    site, mongo_url: str, db_name: str, amqp_url: str, tmp_path: Path, corpus: Path
) -> None:
    """The real ``dp3-portal`` records the events from RabbitMQ and serves them over HTTP (uvicorn)."""
    raw = b"/inbox/M\xdcLLER-J\xd6RG/caf\xe9 \xab1\xbb.jpg"
    fs_path = os.fsdecode(raw)
    photo_id = make_photo_id(os.fsdecode(b"M\xdcLLER-J\xd6RG"), CAPTURE, os.fsdecode(b"caf\xe9 \xab1\xbb.jpg"))
    env = {
        "DP3_HOME": str(tmp_path / "home"),
        "DP3_AMQP_URL": amqp_url,
        "DP3_MONGO_URL": mongo_url,
        "DP3_MONGO_DATABASE": db_name,
        "DP3_STORES": ",".join(str(store) for store in site.stores),
        "DP3_STAGING": str(site.staging),
        "DP3_ADMIN_PASSWORD": PASSWORD,
    }
    portal = RunningPortal(env, tmp_path / "portal.log")
    try:
        publisher = Publisher(amqp_url)
        for entry in _lifecycle(site, corpus / "jpg" / "Canon_40D.jpg", fs_path, photo_id, at=1_790_000_500.0):
            publisher.publish(entry)
        publisher.close()
        auth = ("admin", PASSWORD)

        def listed() -> list[dict[str, Any]]:
            found = httpx.get(portal.url + "/api/photos", params={"owner": "M%DCLLER-J%D6RG"}, auth=auth).json()
            return [item for item in found["items"] if item["status"] == "Collected"]

        wait_for(lambda: bool(listed()), 30, "the portal to record the photo")
        [item] = listed()
        assert item["id"] == photo_id
        assert item["path"] == "/inbox/M%DCLLER-J%D6RG/caf%E9 %AB1%BB.jpg"
        assert base64.b64decode(item["path_bytes"]) == raw  # the original, byte for byte
        page = httpx.get(f"{portal.url}/photos/{quote(photo_id, safe='')}", auth=auth)
        assert page.status_code == 200, page.text[:300]
        assert "café «1».jpg" in page.text  # readable, as the photographer named it on Windows
        gallery = httpx.get(portal.url + "/", auth=auth).text
        assert "café «1».jpg" in gallery
        # The owner folder is a name too: readable in the tile, the owner list and the photo page.
        assert "MÜLLER-JÖRG ·" in gallery and ">MÜLLER-JÖRG</option>" in gallery
        assert "MÜLLER-JÖRG</span>" in page.text
        thumbnail = httpx.get(f"{portal.url}/api/photos/{quote(photo_id, safe='')}/thumbnail", auth=auth)
        assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    finally:
        portal.stop()


def test_an_original_and_its_edited_re_export_are_two_records_with_their_own_images(
    client, site, db, corpus: Path
) -> None:
    from dp3_portal.recorder import Recorder

    original_source, edited_source = corpus / "jpg" / "Nikon_D70.jpg", corpus / "jpg" / "Kodak_CX7530.jpg"
    original_id = make_photo_id("ANNA-SMITH", CAPTURE, "DSC00372.JPG")
    edited_id = disambiguated_id(original_id, hashlib.sha256(edited_source.read_bytes()).hexdigest())
    events = _lifecycle(site, original_source, "/inbox/ANNA-SMITH/DSC00372.JPG", original_id, at=1_790_000_600.0)
    events += _lifecycle(site, edited_source, "/inbox/ANNA-SMITH/edited/DSC00372.JPG", edited_id, at=1_790_000_700.0)
    Recorder(db).record(events)

    listed = client.get("/api/photos", params={"owner": "ANNA-SMITH"}, auth=("admin", PASSWORD)).json()
    assert sorted(item["id"] for item in listed["items"]) == sorted([original_id, edited_id])
    by_id = {item["id"]: item for item in listed["items"]}
    assert by_id[edited_id]["path"] == "/inbox/ANNA-SMITH/edited/DSC00372.JPG"
    for photo_id, source in ((original_id, original_source), (edited_id, edited_source)):
        got = client.get(f"/api/photos/{quote(photo_id, safe='')}/original", auth=("admin", PASSWORD))
        assert got.status_code == 200 and got.content == source.read_bytes()


@pytest.mark.parametrize("batches", ["one batch", "one event at a time"])
def test_two_photos_under_one_id_after_the_scanner_lost_its_index_are_two_records(
    client, site, db, corpus: Path, batches: str
) -> None:
    """A fresh index hands the id out again; the archiver stores the second apart (``stored_name``).

    The catalog folded both into one record, and the second's Collected pointed it at the second's files."""
    from dp3_portal.recorder import Recorder

    original_source, edited_source = corpus / "jpg" / "Nikon_D70.jpg", corpus / "jpg" / "Kodak_CX7530.jpg"
    photo_id = make_photo_id("ANNA-SMITH", CAPTURE, "DSC00372.JPG")
    edited_sha = hashlib.sha256(edited_source.read_bytes()).hexdigest()
    stored = disambiguated_id(photo_id, edited_sha)  # as the archiver names it (naming.collision_name)
    events = _lifecycle(site, original_source, "/inbox/ANNA-SMITH/DSC00372.JPG", photo_id, at=1_790_000_600.0)
    events += _lifecycle(
        site, edited_source, "/inbox/ANNA-SMITH/edited/DSC00372.JPG", photo_id, at=1_790_000_700.0, stored_name=stored
    )
    recorder = Recorder(db)
    for group in [events] if batches == "one batch" else [[event] for event in events]:
        recorder.record(group)

    listed = client.get("/api/photos", params={"owner": "ANNA-SMITH"}, auth=("admin", PASSWORD)).json()
    assert len(listed["items"]) == 2, [item["id"] for item in listed["items"]]
    by_path = {item["path"]: item for item in listed["items"]}
    original = by_path["/inbox/ANNA-SMITH/DSC00372.JPG"]
    edited = by_path["/inbox/ANNA-SMITH/edited/DSC00372.JPG"]
    assert original["id"] == photo_id and edited["id"] != photo_id
    assert original["sha256"] != edited["sha256"] == edited_sha
    assert original["status"] == edited["status"] == "Collected"
    for item, source in ((original, original_source), (edited, edited_source)):
        got = client.get(f"/api/photos/{quote(item['id'], safe='')}/original", auth=("admin", PASSWORD))
        assert got.status_code == 200 and got.content == source.read_bytes()
