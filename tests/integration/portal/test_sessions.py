"""Sessions end server-side, the admin password only seeds, parallel guesses wait: the real `dp3-portal` process.

Against the embedded MongoDB-wire server and the real `dp3 users` commands.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dp3_portal.auth import CSRF_COOKIE, SESSION_COOKIE
from tests.integration.portal.conftest import PASSWORD
from tests.integration.portal.running import RunningPortal

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def portal_env(tmp_path: Path, mongo_url: str, db_name: str, amqp_url: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "DP3_HOME": str(home),
        "DP3_AMQP_URL": amqp_url,
        "DP3_MONGO_URL": mongo_url,
        "DP3_MONGO_DATABASE": db_name,
        "DP3_ADMIN_PASSWORD": PASSWORD,
        "DP3_STORES": f"{tmp_path / 'a'},{tmp_path / 'b'}",
    }


@pytest.fixture
def portals(tmp_path: Path) -> Iterator[list[RunningPortal]]:
    started: list[RunningPortal] = []
    yield started
    for portal in started:
        if portal.process.poll() is None:
            portal.stop()


def start(portals: list[RunningPortal], env: dict[str, str], tmp_path: Path) -> RunningPortal:
    portal = RunningPortal(env, tmp_path / "portal.log")
    portals.append(portal)
    return portal


def dp3_users(env: dict[str, str], *args: str, password: str | None = None) -> None:
    dp3 = Path(sys.executable).with_name("dp3")
    full = {k: v for k, v in os.environ.items() if not k.startswith("DP3_")} | env
    stdin = None if password is None else password + "\n"
    result = subprocess.run([str(dp3), "users", *args], env=full, input=stdin, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def log_in(url: str, user: str, password: str) -> str:
    """A browser's login through the form; the session cookie's value."""
    with httpx.Client(base_url=url, follow_redirects=False) as browser:
        browser.get("/login")
        token = browser.cookies[CSRF_COOKIE]
        answer = browser.post("/login", data={"username": user, "password": password, "csrf_token": token})
        assert answer.status_code == 303, answer.text
        return answer.cookies[SESSION_COOKIE]


def with_cookie(url: str, session: str) -> int:
    """Status of the status page for someone who presents ``session`` (e.g. a copied cookie)."""
    with httpx.Client(base_url=url, follow_redirects=False, cookies={SESSION_COOKIE: session}) as browser:
        return browser.get("/status").status_code


def test_a_session_ends_on_logout_password_change_and_removal(
    portal_env: dict[str, str], portals: list[RunningPortal], tmp_path: Path
) -> None:
    portal = start(portals, portal_env, tmp_path)
    url = portal.url
    # logout: a copy of the cookie made before is worthless afterwards
    copied = log_in(url, "admin", PASSWORD)
    assert with_cookie(url, copied) == 200
    with httpx.Client(base_url=url, follow_redirects=False, cookies={SESSION_COOKIE: copied}) as browser:
        browser.get("/login")
        logout = browser.post("/logout", data={"csrf_token": browser.cookies[CSRF_COOKIE]})
        assert logout.status_code == 303
    assert with_cookie(url, copied) == 303
    # a password change ends every session of the user (and a cached Basic pair)
    dp3_users(portal_env, "add", "bob", "--password-stdin", password="bob-one")
    bobs = [log_in(url, "bob", "bob-one") for _ in range(2)]
    assert httpx.get(url + "/api/stats", auth=("bob", "bob-one")).status_code == 200
    dp3_users(portal_env, "add", "bob", "--password-stdin", password="bob-two")
    assert [with_cookie(url, cookie) for cookie in bobs] == [303, 303]
    assert httpx.get(url + "/api/stats", auth=("bob", "bob-one")).status_code == 401
    # removal ends them too, and the user cannot come back with a session or a password
    again = log_in(url, "bob", "bob-two")
    assert httpx.get(url + "/api/stats", auth=("bob", "bob-two")).status_code == 200
    dp3_users(portal_env, "remove", "bob")
    assert with_cookie(url, again) == 303
    assert httpx.get(url + "/api/stats", auth=("bob", "bob-two")).status_code == 401
    assert with_cookie(url, log_in(url, "admin", PASSWORD)) == 200  # others are untouched


def test_the_admin_password_setting_only_seeds_the_admin(
    portal_env: dict[str, str], portals: list[RunningPortal], tmp_path: Path
) -> None:
    first = start(portals, portal_env, tmp_path)
    assert httpx.get(first.url + "/api/stats", auth=("admin", PASSWORD)).status_code == 200
    dp3_users(portal_env, "add", "admin", "--password-stdin", password="chosen later")
    first.stop()
    second = start(portals, portal_env, tmp_path)  # DP3_ADMIN_PASSWORD still set
    assert httpx.get(second.url + "/api/stats", auth=("admin", "chosen later")).status_code == 200
    assert httpx.get(second.url + "/api/stats", auth=("admin", PASSWORD)).status_code == 401


def test_fifty_parallel_wrong_guesses_take_turns(
    portal_env: dict[str, str], portals: list[RunningPortal], tmp_path: Path
) -> None:
    env = {**portal_env, "DP3_LOGIN_FREE_ATTEMPTS": "2", "DP3_LOGIN_DELAY_SECONDS": "0.3"}
    portal = start(portals, env, tmp_path)
    window = 3.0  # turns at 0, 0, 0.3, 0.9, 2.1 s fall inside it; the next at 4.5 s

    async def fire() -> list[tuple[int, float]]:
        async with httpx.AsyncClient(base_url=portal.url, timeout=60) as client:
            token = (await client.get("/login")).cookies[CSRF_COOKIE]
            started = time.monotonic()

            async def guess(n: int) -> tuple[int, float]:
                form = {"username": "admin", "password": f"guess-{n}", "csrf_token": token}
                answer = await client.post("/login", data=form)
                return answer.status_code, time.monotonic() - started

            tasks = [asyncio.ensure_future(guess(n)) for n in range(50)]
            done, pending = await asyncio.wait(tasks, timeout=window)
            for task in pending:
                task.cancel()
            return [task.result() for task in done]

    answered = asyncio.run(fire())
    checked = [took for code, took in answered if code == 401]
    refused = [took for code, took in answered if code == 429]
    assert not [code for code, _ in answered if code not in (401, 429)]
    # Checked one after another: within the window only the free ones and the first few turns.
    assert 2 <= len(checked) <= 6, answered
    assert sorted(checked)[-1] >= 0.9
    # Those whose turn is more than 30 s away are refused at once, without a password check.
    assert len(refused) >= 35 and max(refused) < window
    assert portal.process.poll() is None


def test_healthz_names_no_database_internals(
    portal_settings: object, recorded: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi.testclient import TestClient

    from dp3_portal.app import create_app
    from dp3_portal.embedded import EmbeddedMongo

    server = EmbeddedMongo(None, run_dir=tmp_path / "mongo")
    url = server.start()
    port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    settings = portal_settings.model_copy(  # type: ignore[attr-defined]
        update={"mongo_url": url + "&serverSelectionTimeoutMS=1000"}
    )
    try:
        with TestClient(create_app(settings, record=False), follow_redirects=False) as client:
            assert client.get("/healthz").status_code == 200
            server.stop()
            answer = client.get("/healthz")
    finally:
        server.stop()
    assert answer.status_code == 503
    assert answer.text == "MongoDB unavailable\n"
    assert port not in answer.text
    assert any("MongoDB ping failed" in record.getMessage() for record in caplog.records)
