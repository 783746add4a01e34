"""Security: every route refuses anonymous requests, paths never escape, logins reveal nothing."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from tests.integration.portal.conftest import PASSWORD, login

pytestmark = pytest.mark.integration

OPEN = {"/healthz", "/metrics", "/login"}


def every_route(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every endpoint, walking included routers (FastAPI keeps them nested)."""
    for route in routes:
        if isinstance(route, APIRoute | Route):
            yield prefix + route.path, set(route.methods or ())
        elif hasattr(route, "original_router"):
            yield from every_route(route.original_router.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "routes"):
            yield from every_route(route.routes, prefix + getattr(route, "path", ""))


def test_every_route_refuses_an_anonymous_request(client, recorded) -> None:
    photo_id = recorded.ids["jpg/Canon_40D.jpg"]
    checked = 0
    for template, methods in every_route(client.app.routes):
        if template in OPEN:
            continue
        path = template.replace("{photo_id}", photo_id).replace("{kind}", "original")
        path = path.replace("{device_id}", "0123456789ab")
        assert "{" not in path, f"unfilled parameter in {template}"
        for method in sorted(methods):
            if method == "HEAD":
                continue
            response = client.request(method, path)
            refused = response.status_code in (401, 403) or (
                response.status_code == 303 and response.headers["location"].startswith("/login")
            )
            assert refused, f"{method} {template} answered {response.status_code} to an anonymous request"
            assert photo_id not in response.text
            checked += 1
    assert checked == 15  # a new route shows up here: check it is protected, then update the count
    # the open ones really are open, and say nothing about photos
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert photo_id not in client.get("/metrics").text
    assert client.get("/api/photos").headers["www-authenticate"].startswith("Basic")


def test_path_traversal_gets_404_and_reads_nothing(client, recorded, db) -> None:
    secret = recorded.root / "secret.txt"
    secret.write_text("TOP-SECRET-BYTES")
    store = recorded.stores[0]
    # catalog entries crafted to point outside the stores
    db["photos"].insert_many(
        [
            {**_photo("..", [str(store / "..")])},
            {**_photo("secret.txt", [str(recorded.root)])},
            {**_photo("evil", [f"{store}/../"])},
        ]
    )
    (store / "link").symlink_to(recorded.root)
    db["photos"].insert_one(_photo("secret.txt.2", [str(store / "link")]))
    login(client)
    attempts = [
        "/api/photos/..%2F..%2Fsecret.txt/original",
        "/api/photos/%2E%2E%2Fsecret.txt/thumbnail",
        "/api/photos/..%2Fsecret.txt/web",
        "/api/photos/%2Fetc%2Fpasswd/original",
        "/api/photos/%252e%252e%252fsecret.txt/original",
        "/api/photos/../../secret.txt",
        "/api/photos/..",
        "/api/photos/../original",
        "/api/photos/secret.txt/original",
        "/api/photos/secret.txt.2/original",
        "/api/photos/secret.txt.2/thumbnail",
        "/api/photos/evil/original",
        "/photos/..%2F..%2Fsecret.txt",
        "/api/photos/" + recorded.ids["jpg/Canon_40D.jpg"] + "/..%2F..%2F..%2Fsecret.txt",
    ]
    for url in attempts:
        response = client.get(url)
        assert response.status_code == 404, f"{url} answered {response.status_code}"
        assert "TOP-SECRET" not in response.text and "root:" not in response.text


def _photo(photo_id: str, archives: list[str]) -> dict[str, object]:
    return {
        "_id": photo_id,
        "id": photo_id,
        "status": "Collected",
        "sort_key": f"000000000001|{photo_id}",
        "archives": archives,
        "sha256": "",
        "path": f"/inbox/X/{photo_id}",
        "history": [],
        "datetime": 1,
    }


def _without_token(text: str) -> str:
    return re.sub(r'value="[^"]{20,}"', 'value="TOKEN"', text)


def test_a_wrong_password_never_reveals_whether_the_user_exists(client) -> None:
    client.get("/login")
    token = client.cookies.get("dp3_csrf")
    unknown = client.post("/login", data={"username": "nobody", "password": "x", "csrf_token": token})
    known = client.post("/login", data={"username": "admin", "password": "x", "csrf_token": token})
    assert unknown.status_code == known.status_code == 401
    assert _without_token(unknown.text) == _without_token(known.text)
    assert set(unknown.headers) == set(known.headers)
    api_unknown = client.get("/api/stats", auth=("nobody", "x"))
    api_known = client.get("/api/stats", auth=("admin", "x"))
    assert (api_unknown.status_code, api_unknown.text) == (api_known.status_code, api_known.text)


def test_repeated_failed_logins_are_slowed_down(portal_settings, recorded) -> None:
    from fastapi.testclient import TestClient

    from dp3_portal.app import create_app

    # A delay well above what one password check (argon2) takes on a busy 2-core machine,
    # so "not slowed down" and "slowed down" cannot be confused.
    delay = 1.0
    settings = portal_settings.model_copy(update={"login_delay_seconds": delay})
    with TestClient(create_app(settings, record=False), follow_redirects=False) as client:
        client.get("/login")
        token = client.cookies.get("dp3_csrf")

        def attempt(password: str) -> tuple[int, float]:
            started = time.monotonic()
            response = client.post("/login", data={"username": "admin", "password": password, "csrf_token": token})
            return response.status_code, time.monotonic() - started

        free = [attempt("wrong") for _ in range(2)]  # login_free_attempts=2 in the test settings
        assert all(code == 401 and took < delay for code, took in free), free
        code, took = attempt("wrong")
        assert code == 401 and took >= delay
        code, took = attempt("wrong")
        assert code == 401 and took >= 2 * delay
        code, took = attempt(PASSWORD)  # the right password still works, after the wait
        assert code == 303 and took >= 4 * delay
        code, took = attempt("wrong")  # success reset the count
        assert code == 401 and took < delay


def test_login_redirects_only_within_the_site(client) -> None:
    client.get("/login")
    token = client.cookies.get("dp3_csrf")
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = client.post(
            "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token, "next": target}
        )
        assert response.headers["location"] == "/"
