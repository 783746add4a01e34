"""The portal app on the embedded server with real files: login, pages, JSON API, images."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator

import pytest

from dp3_portal.auth import CSRF_COOKIE, SESSION_COOKIE
from tests.integration.portal.conftest import PASSWORD, login

pytestmark = pytest.mark.integration


def basic(user: str = "admin", password: str = PASSWORD) -> tuple[str, str]:
    return (user, password)


def test_login_sets_a_signed_httponly_samesite_cookie_and_logout_clears_it(client) -> None:
    assert client.get("/").status_code == 303
    response = login(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    gallery = client.get("/")
    assert gallery.status_code == 200
    assert gallery.text.count('class="tile') == 6
    # a tampered cookie is no session
    payload, signature = client.cookies.get(SESSION_COOKIE).split(".", 1)
    client.cookies.set(SESSION_COOKIE, f"{payload}x.{signature}")
    assert client.get("/").status_code == 303
    login(client)
    assert client.post("/logout", data={}).status_code == 403  # no CSRF token
    token = client.cookies.get(CSRF_COOKIE)
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303
    client.cookies.delete(SESSION_COOKIE)
    assert client.get("/").status_code == 303


def test_login_without_the_csrf_token_is_refused(client) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies


def test_gallery_is_newest_first_and_filters_by_photographer(client, recorded) -> None:
    login(client)
    page = client.get("/")
    ids = re.findall(r'data-photo-id="([^"]+)"', page.text)
    capture = [int(i.split("_")[1]) for i in ids]
    assert capture == sorted(capture, reverse=True)
    assert 'loading="lazy"' in page.text
    anna = client.get("/", params={"owner": "SMITH-ANNA"})
    assert sorted(re.findall(r'data-photo-id="([^"]+)"', anna.text)) == sorted(
        i for i in recorded.photo_ids() if i.startswith("SMITH-ANNA_")
    )
    failed = client.get("/", params={"status": "failed"})
    assert "corrupt_image" in failed.text and "image file is truncated" in failed.text
    bad = client.get("/", params={"date_from": "yesterday"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text


def test_photo_page_shows_web_version_metadata_map_history_and_download(client, recorded) -> None:
    login(client)
    photo_id = recorded.ids["jpg/gps/DSCN0010.jpg"]
    page = client.get(f"/photos/{photo_id}")
    assert page.status_code == 200
    assert f"/api/photos/{photo_id}/web" in page.text
    assert "openstreetmap.org/?mlat=43.467000&amp;mlon=11.885000" in page.text
    assert page.text.count("<td>Collected</td>") == 1 and "COOLPIX P6000" in page.text
    assert re.search(r"<td>Detected</td>.*<td>Processed</td>.*<td>Archived</td>.*<td>Collected</td>", page.text, re.S)
    failed = client.get(f"/photos/{recorded.ids['jpg/corrupted.jpg']}")
    assert "What to do:" in failed.text and "Export it again" in failed.text and "Retry this photo" in failed.text
    assert client.get("/photos/NOPE_1_x.jpg").status_code == 404


def test_api_lists_pages_with_a_cursor_and_the_documented_fields(client, recorded) -> None:
    first = client.get("/api/photos", params={"limit": 4}, auth=basic())
    assert first.status_code == 200
    body = first.json()
    assert len(body["items"]) == 4 and body["next"]
    for item in body["items"]:
        assert {"id", "status", "owner", "datetime", "path", "archives", "sha256", "size", "error"} <= set(item)
    rest = client.get("/api/photos", params={"limit": 4, "cursor": body["next"]}, auth=basic()).json()
    assert rest["next"] is None
    ids = [i["id"] for i in body["items"] + rest["items"]]
    assert sorted(ids) == sorted(recorded.photo_ids())
    assert client.get("/api/photos", params={"limit": 201}, auth=basic()).status_code == 422
    assert client.get("/api/photos", params={"cursor": "garbage!"}, auth=basic()).status_code == 400
    by_model = client.get("/api/photos", params={"model": "NIKON D70"}, auth=basic()).json()["items"]
    assert [i["id"] for i in by_model] == [recorded.ids["jpg/Nikon_D70.jpg"]]
    assert client.get("/api/stats", auth=basic()).json() == {
        "Detected": 0,
        "Processed": 0,
        "Archived": 0,
        "Collected": 5,
        "Failed": 1,
        "Duplicate": 0,
        "failed": 1,
    }
    detail = client.get(f"/api/photos/{recorded.ids['jpg/Canon_40D.jpg']}", auth=basic()).json()
    assert detail["meta"]["model"] == "Canon EOS 40D"
    assert [h["status"] for h in detail["history"]] == ["Detected", "Processed", "Archived", "Collected"]
    assert client.get("/api/openapi.json", auth=basic()).json()["paths"]["/api/photos"]
    assert client.get("/api/photos", auth=basic("admin", "wrong")).status_code == 401


def test_images_are_served_by_id_and_the_original_only_from_a_verified_copy(client, recorded, corpus) -> None:
    photo_id = recorded.ids["jpg/Canon_40D.jpg"]
    thumb = client.get(f"/api/photos/{photo_id}/thumbnail", auth=basic())
    assert (
        thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
    )
    web = client.get(f"/api/photos/{photo_id}/web", auth=basic())
    assert web.status_code == 200
    from dp3 import layout

    assert web.content == next(recorded.stores[0].glob(f"*/{layout.web_name(photo_id)}")).read_bytes()
    assert thumb.content == next(recorded.stores[0].glob(f"*/{layout.thumbnail_name(photo_id)}")).read_bytes()
    original = (corpus / "jpg/Canon_40D.jpg").read_bytes()
    got = client.get(f"/api/photos/{photo_id}/original", auth=basic())
    assert got.content == original and "attachment" in got.headers["content-disposition"]
    # bit rot in the first store: served from the second
    first_copy = next(recorded.stores[0].glob(f"*/{photo_id}"))
    first_copy.write_bytes(b"rotten" + original[6:])
    got = client.get(f"/api/photos/{photo_id}/original", auth=basic())
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(original).digest()
    second_copy = next(recorded.stores[1].glob(f"*/{photo_id}"))
    second_copy.unlink()
    assert client.get(f"/api/photos/{photo_id}/original", auth=basic()).status_code == 404
    # the failed photo has no artifacts and no archived copy
    failed = recorded.ids["jpg/corrupted.jpg"]
    assert client.get(f"/api/photos/{failed}/thumbnail", auth=basic()).status_code == 404


def test_artifacts_come_from_staging_before_the_archiver_ran(client, recorded, db) -> None:
    from dp3 import layout

    photo_id = recorded.ids["jpg/Nikon_D70.jpg"]
    db["photos"].update_one({"_id": photo_id}, {"$set": {"archives": []}})
    assert client.get(f"/api/photos/{photo_id}/thumbnail", auth=basic()).status_code == 404
    staged = recorded.staging / photo_id
    staged.mkdir()
    (staged / layout.thumbnail_name(photo_id)).write_bytes(b"\xff\xd8staged")
    assert client.get(f"/api/photos/{photo_id}/thumbnail", auth=basic()).content == b"\xff\xd8staged"


def test_status_page_shows_counts_backlog_failures_and_unknown_workers(client) -> None:
    login(client)
    page = client.get("/status")
    assert page.status_code == 200
    assert re.search(r"Collected</a></td><td>5</td>", page.text)
    assert re.search(r'id="backlog">1<', page.text)
    assert re.search(r'id="workers">unknown<', page.text)
    assert re.search(r"<td>corrupt_image</td><td>1</td>", page.text)
    assert "image file is truncated" in page.text


def test_metrics_count_requests_per_route_and_photos_per_status(client, recorded) -> None:
    client.get(f"/api/photos/{recorded.ids['jpg/Canon_40D.jpg']}", auth=basic())
    text = client.get("/metrics").text
    assert re.search(
        r'dp3_portal_requests_total\{code="200",method="GET",route="/api/photos/\{photo_id\}"\} [1-9]', text
    )
    assert 'dp3_portal_request_seconds_bucket{le="0.005",route="/api/photos/{photo_id}"}' in text
    assert 'dp3_portal_photos{status="Collected"} 5.0' in text
    assert client.get("/healthz").text == "ok\n"


def test_a_photo_stored_under_a_collision_name_is_served_from_that_name(client, recorded, db) -> None:
    from dp3 import layout

    photo_id = recorded.ids["jpg/Nikon_D70.jpg"]
    renamed = photo_id.replace(".jpg", "~0123456789ab.jpg")
    for store in recorded.stores:
        folder = next(store.glob(f"*/{photo_id}")).parent
        (folder / photo_id).rename(folder / renamed)
        (folder / layout.thumbnail_name(photo_id)).rename(folder / layout.thumbnail_name(renamed))
    assert client.get(f"/api/photos/{photo_id}/original", auth=basic()).status_code == 404
    db["photos"].update_one({"_id": photo_id}, {"$set": {"stored_name": renamed}})
    got = client.get(f"/api/photos/{photo_id}/original", auth=basic())
    assert got.status_code == 200
    assert got.content == next(recorded.stores[1].glob(f"*/{renamed}")).read_bytes()
    assert client.get(f"/api/photos/{photo_id}/thumbnail", auth=basic()).status_code == 200


@contextlib.contextmanager
def metrics_endpoint(body: bytes) -> Iterator[str]:
    """A real HTTP server answering ``body`` as another service's /metrics; yields its URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()


def test_status_page_reads_workers_connected_from_the_dispatcher_metrics(portal_settings, recorded) -> None:
    from fastapi.testclient import TestClient

    from dp3_portal.app import create_app

    body = b"# TYPE dp3_dispatcher_workers_connected gauge\ndp3_dispatcher_workers_connected 3.0\n"
    with metrics_endpoint(body) as url:
        settings = portal_settings.model_copy(update={"dispatcher_metrics_url": url})
        with TestClient(create_app(settings, record=False), follow_redirects=False) as client:
            login(client)
            assert re.search(r'id="workers">3<', client.get("/status").text)


def test_a_duplicate_upload_shows_the_archived_photo_files(client, recorded, db, corpus) -> None:
    from dp3.events import Status
    from dp3_portal.recorder import Recorder

    archived = next(e for e in recorded.events if e.id == recorded.ids["jpg/Nikon_D70.jpg"])
    again = archived.model_copy(
        update={"id": "DOE-JOHN_1360701208_copy.jpg", "owner": "DOE-JOHN", "path": "/inbox/DOE-JOHN/copy.jpg"}
    )
    duplicate = again.next(Status.DUPLICATE, service="dispatcher", duplicate_of=archived.id)
    Recorder(db).record([again, duplicate])
    detail = client.get(f"/api/photos/{duplicate.id}", auth=basic()).json()
    assert (detail["status"], detail["failed"]) == ("Duplicate", False)
    got = client.get(f"/api/photos/{duplicate.id}/original", auth=basic())
    assert got.status_code == 200 and got.content == (corpus / "jpg/Nikon_D70.jpg").read_bytes()
    assert 'filename="copy.jpg"' in got.headers["content-disposition"]
    assert client.get(f"/api/photos/{duplicate.id}/thumbnail", auth=basic()).status_code == 200


def test_status_page_says_when_stores_are_not_distinct(portal_settings, recorded, tmp_path) -> None:
    """The portal's own DP3_STORES (a real symlink) and the archiver's view (its metrics) both show."""
    from fastapi.testclient import TestClient

    from dp3_portal.app import create_app

    body = (
        b'dp3_archiver_store_up{store="/srv/a"} 1.0\n'
        b'dp3_archiver_store_alias{other="/srv/c",reason="nested",store="/srv/a"} 1.0\n'
    )
    link = tmp_path / "second-name"
    link.symlink_to(recorded.stores[0])
    with metrics_endpoint(body) as url:
        stores = (recorded.stores[0], link)
        settings = portal_settings.model_copy(update={"archiver_metrics_url": url, "stores": stores})
        with TestClient(create_app(settings, record=False), follow_redirects=False) as client:
            login(client)
            page = client.get("/status").text
    refusals = re.search(r'<div id="store-refusals".*?</div>', page, re.S)
    assert refusals is not None
    text = refusals.group(0)
    assert f"stores {recorded.stores[0]} and {link} are not distinct places" in text
    assert "stores /srv/a and /srv/c are not distinct places (nested)" in text
    with TestClient(create_app(portal_settings, record=False), follow_redirects=False) as client:
        login(client)
        assert 'id="store-refusals"' not in client.get("/status").text
