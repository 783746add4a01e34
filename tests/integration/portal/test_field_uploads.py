"""Issue 18 in the portal: previews first, joined to their original by sha256, and field devices.

The real ``dp3-portal`` process, the embedded MongoDB-wire server and a real
RabbitMQ vhost; events published as the intake and the pipeline publish them;
previews rendered from corpus photos; every check over HTTP.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.database import Database

from dp3 import devices, layout
from dp3.events import preview_id
from dp3_portal.auth import hash_password
from tests.integration.portal.conftest import PASSWORD
from tests.integration.portal.field import lifecycle_of, preview_events, run_portal, write_preview
from tests.integration.portal.running import RunningPortal
from tests.rabbit import publish, wait_for

pytestmark = pytest.mark.integration

CANON, NIKON, KODAK, FUJI = (
    "jpg/Canon_40D.jpg",
    "jpg/Nikon_D70.jpg",
    "jpg/Kodak_CX7530.jpg",
    "jpg/Fujifilm_FinePix_E500.jpg",
)
AUTH = ("admin", PASSWORD)


@pytest.fixture
def previews(tmp_path: Path) -> Path:
    folder = tmp_path / "previews"
    folder.mkdir()
    return folder


@pytest.fixture
def portal(
    site, amqp_url: str, mongo_url: str, db_name: str, dp3_home: Path, previews: Path
) -> Iterator[RunningPortal]:
    env = {"DP3_MONGO_URL": mongo_url, "DP3_MONGO_DATABASE": db_name, "DP3_AMQP_URL": amqp_url}
    yield from run_portal(
        site, {**env, "DP3_PREVIEWS": str(previews), "DP3_PUBLIC_URL": "https://dp3.example.edu"}, dp3_home
    )


def logged_in(portal: RunningPortal, user: str = "admin", password: str = PASSWORD) -> httpx.Client:
    """A client with a session cookie, logged in through the form as a browser is."""
    client = httpx.Client(base_url=portal.url, timeout=10)
    client.get("/login")
    answer = client.post(
        "/login", data={"username": user, "password": password, "csrf_token": client.cookies["dp3_csrf"], "next": "/"}
    )
    assert answer.status_code == 303, answer.text
    return client


def items(portal: RunningPortal) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(portal.url + "/api/photos", auth=AUTH, timeout=10).json()["items"]
    return found


def sha_of(site, relative: str) -> str:
    sha256 = lifecycle_of(site, relative)[0].sha256
    assert sha256
    return sha256


def tiles_of(gallery_html: str, sha256: str) -> list[str]:
    return re.findall(rf'<a class="tile[^"]*"[^>]*data-sha256="{sha256}">.*?</a>', gallery_html, flags=re.S)


def test_previews_are_one_tile_until_the_original_arrives_in_either_order_and_never_count(
    portal: RunningPortal, site, amqp_url: str, corpus: Path, previews: Path
) -> None:
    canon, nikon, kodak, fuji = (sha_of(site, name) for name in (CANON, NIKON, KODAK, FUJI))
    canon_preview = write_preview(corpus, CANON, previews, canon)
    nikon_preview = write_preview(corpus, NIKON, previews, nikon)
    fuji_preview = str(previews / write_preview(corpus, FUJI, previews, fuji))  # an absolute path works too
    now = time.time()
    half = (lifecycle_of(site, CANON)[0].size or 0) // 2
    canon_events = preview_events(site, CANON, canon_preview, at=now - 60, offsets=(half // 2, half))
    three_days_ago = now - 3 * 86400  # past DP3_PREVIEW_STALE_HOURS (48): listed on the status page
    stale = preview_events(site, FUJI, fuji_preview, at=three_days_ago)
    # The Canon's preview comes first; the Nikon's and the Kodak's originals come with no preview yet.
    publish(amqp_url, [*canon_events, *stale, *lifecycle_of(site, NIKON), *lifecycle_of(site, KODAK)])
    wait_for(lambda: len(items(portal)) == 4, 30, "two previews and two photos in the catalog")

    by_id = {item["id"]: item for item in items(portal)}
    shown = by_id[preview_id(canon)]
    assert (shown["status"], shown["original_on_its_way"], shown["original_arrived"]) == ("Previewed", True, 0.5)
    assert by_id[site.ids[NIKON]]["original_on_its_way"] is False
    thumbnail = httpx.get(f"{portal.url}/api/photos/{preview_id(canon)}/thumbnail", auth=AUTH, timeout=10)
    assert thumbnail.content == (previews / canon_preview).read_bytes()
    original = httpx.get(f"{portal.url}/api/photos/{preview_id(canon)}/original", auth=AUTH, timeout=10)
    assert (original.status_code, original.json()["detail"]) == (404, "the original has not arrived yet")
    fuji_web = httpx.get(f"{portal.url}/api/photos/{preview_id(fuji)}/web", auth=AUTH, timeout=10)
    assert fuji_web.content == Path(fuji_preview).read_bytes()
    # Previews are no photos of the pipeline: not in the counts, not in the photo metrics.
    stats = httpx.get(portal.url + "/api/stats", auth=AUTH, timeout=10).json()
    assert stats == {
        "Detected": 0,
        "Processed": 0,
        "Archived": 0,
        "Collected": 2,
        "Failed": 0,
        "Duplicate": 0,
        "failed": 0,
    }
    metrics = httpx.get(portal.url + "/metrics", timeout=10).text
    assert 'dp3_portal_photos{status="Collected"} 2.0' in metrics
    assert "dp3_portal_previews_waiting 2.0" in metrics
    assert not re.search(r'dp3_portal_photos\{status="(Previewed|Uploading)"', metrics)

    client = logged_in(portal)
    gallery = client.get("/").text
    (canon_tile,) = tiles_of(gallery, canon)
    assert "original on its way · 50 % arrived" in canon_tile and "preview-tile" in canon_tile
    status_page = client.get("/status").text
    assert re.search(r'id="previews-waiting">2<', status_page)
    assert re.search(r"Collected</a></td><td>2</td>", status_page)
    assert "Previewed" not in status_page.split('id="per-status"')[1].split("</table>")[0]
    stale_table = status_page.split('id="stale-previews"')[1].split("</table>")[0]
    assert f'data-sha256="{fuji}"' in stale_table and canon not in stale_table

    # Now the Canon's original goes through the pipeline (its last upload report after its Detected),
    # and the Nikon's preview arrives after its original.
    canon_lifecycle = lifecycle_of(site, CANON)
    final_report = preview_events(site, CANON, canon_preview, at=now, offsets=(canon_lifecycle[0].size or 0,))[1:]
    late_preview = preview_events(site, NIKON, nikon_preview, at=now)
    publish(amqp_url, [canon_lifecycle[0], *final_report, *canon_lifecycle[1:], *late_preview])

    def joined() -> bool:
        found = {item["id"]: item for item in items(portal)}
        return preview_id(canon) not in found and found.get(site.ids[CANON], {}).get("status") == "Collected"

    wait_for(joined, 30, "the Canon's preview to join its original's record")
    wait_for(
        lambda: len(client.get(f"/api/photos/{site.ids[NIKON]}").json()["history"]) == 5, 30, "the Nikon's preview"
    )
    listed = items(portal)
    assert sorted(item["sha256"] for item in listed) == sorted([canon, nikon, kodak, fuji])  # one record each
    assert [item["id"] for item in listed if item["original_on_its_way"]] == [preview_id(fuji)]
    canon_detail = client.get(f"/api/photos/{site.ids[CANON]}").json()
    assert [h["status"] for h in canon_detail["history"]] == [
        "Previewed",
        "Detected",
        "Processed",
        "Archived",
        "Collected",
    ]
    gallery = client.get("/").text
    for sha256 in (canon, nikon, kodak):
        (tile,) = tiles_of(gallery, sha256)
        assert "original on its way" not in tile and "/thumbnail" in tile
    # The thumbnail is the render's now, not the preview.
    thumbnail = client.get(f"/api/photos/{site.ids[CANON]}/thumbnail")
    assert thumbnail.content == next(site.stores[0].glob(f"*/{layout.thumbnail_name(site.ids[CANON])}")).read_bytes()
    moved = client.get(f"/photos/{preview_id(canon)}", follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (303, f"/photos/{site.ids[CANON]}")
    stats = client.get("/api/stats").json()
    assert (stats["Collected"], sum(stats.values()) - stats["failed"]) == (3, 3)
    assert re.search(r'id="previews-waiting">1<', client.get("/status").text)


@pytest.fixture
def bare_portal(mongo_url: str, db_name: str, dp3_home: Path) -> Iterator[RunningPortal]:
    """A portal without photos (the devices page needs none), recording nothing."""
    env = {"DP3_MONGO_URL": mongo_url, "DP3_MONGO_DATABASE": db_name, "DP3_PUBLIC_URL": "https://dp3.example.edu"}
    unused = "amqp://guest:guest@127.0.0.1:5672/dp3-no-such-vhost"
    yield from run_portal(None, {**env, "DP3_AMQP_URL": unused}, dp3_home)


def test_the_administrator_adds_lists_and_revokes_devices_whose_tokens_are_stored_hashed(
    bare_portal: RunningPortal, db: Database[dict[str, Any]]
) -> None:
    portal = bare_portal
    admin = logged_in(portal)
    assert admin.get("/devices").status_code == 200
    csrf = admin.cookies["dp3_csrf"]
    added = admin.post("/devices", data={"owner": "SMITH-ANNA", "label": "Anna's laptop", "csrf_token": csrf})
    assert added.status_code == 201
    token = re.search(r'<code id="device-token">(dp3d_[^<]+)</code>', added.text)
    assert token is not None
    command = re.search(r'<pre id="pairing-command">([^<]+)</pre>', added.text)
    assert command is not None and command.group(1) == f"dp3-field pair https://dp3.example.edu/ {token.group(1)}"
    (stored,) = db[devices.COLLECTION].find({})
    assert stored["owner"] == "SMITH-ANNA" and stored["label"] == "Anna's laptop"
    assert stored["token_sha256"] == hashlib.sha256(token.group(1).encode()).hexdigest()
    assert token.group(1) not in str(stored)  # only its hash is kept
    record = devices.find_by_token(db[devices.COLLECTION], token.group(1))  # as the intake reads it
    assert record is not None and record.owner == "SMITH-ANNA"

    listing = admin.get("/devices").text
    assert token.group(1) not in listing  # shown once, never again
    row = listing.split(f'data-device-id="{record.id}"')[1].split("</tr>")[0]
    assert "SMITH-ANNA" in row and "Anna&#39;s laptop" in row and "never" in row
    assert token.group(1) not in (portal.log.read_text())

    # Bad input: a clear error, and nothing written.
    for owner, reason in [
        ("", "name the photographer's folder"),
        ("SMITH-ANNA/../x", "without a path separator"),
        (".dropbox.cache", "the scanner ignores such folders"),
        ("..", "not folder names"),
    ]:
        refused = admin.post("/devices", data={"owner": owner, "label": "x", "csrf_token": csrf})
        assert refused.status_code == 400 and reason in html.unescape(refused.text), owner
        assert "device-token" not in refused.text
    no_csrf = admin.post("/devices", data={"owner": "DOE-JOHN", "label": "x"})
    assert no_csrf.status_code == 403
    db["users"].insert_one({"_id": "bob", "password_hash": hash_password("bob's password")})
    bob = logged_in(portal, "bob", "bob's password")
    assert bob.get("/devices").status_code == 403
    bob_post = bob.post("/devices", data={"owner": "DOE-JOHN", "label": "x", "csrf_token": bob.cookies["dp3_csrf"]})
    assert bob_post.status_code == 403
    assert bob.post(f"/devices/{record.id}/revoke", data={"csrf_token": bob.cookies["dp3_csrf"]}).status_code == 403
    anonymous = httpx.get(portal.url + "/devices", timeout=10, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert db[devices.COLLECTION].count_documents({}) == 1

    assert admin.post(f"/devices/{record.id}/revoke", data={}).status_code == 403  # CSRF here too
    revoked = admin.post(f"/devices/{record.id}/revoke", data={"csrf_token": csrf}, follow_redirects=True)
    assert revoked.status_code == 200
    row = revoked.text.split(f'data-device-id="{record.id}"')[1].split("</tr>")[0]
    assert 'class="revoked"' in row and "UTC" in row.split('class="revoked-at"')[1] and "Revoke</button>" not in row
    assert devices.lookup(db[devices.COLLECTION], token.group(1)) == (None, "revoked")
    assert admin.post("/devices/0123456789ab/revoke", data={"csrf_token": csrf}).status_code == 404
