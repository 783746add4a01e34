"""The portal over HTTPS: Debian's real Caddy with the shipped deploy/caddy/Caddyfile in front of a real portal.

A self-signed certificate made with openssl (no CA is installed anywhere);
Caddy listens on 127.0.0.1 only, with free ports, and its admin API off.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dp3.ports import free_port
from dp3_portal.auth import CSRF_COOKIE, SESSION_COOKIE
from tests.integration.portal.conftest import PASSWORD
from tests.integration.portal.running import RunningPortal
from tests.rabbit import REPO_ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CADDYFILE = REPO_ROOT / "deploy" / "caddy" / "Caddyfile"


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"]
    names = ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run([*request, *names], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def portal(tmp_path: Path, mongo_url: str, db_name: str, amqp_url: str) -> Iterator[RunningPortal]:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "DP3_HOME": str(home),
        "DP3_AMQP_URL": amqp_url,
        "DP3_MONGO_URL": mongo_url,
        "DP3_MONGO_DATABASE": db_name,
        "DP3_ADMIN_PASSWORD": PASSWORD,
        "DP3_SECURE_COOKIES": "true",  # as the proxy's deployment sets it
        "DP3_TRUSTED_PROXIES": "127.0.0.1",
    }
    running = RunningPortal(env, tmp_path / "portal.log")
    yield running
    running.stop()


@pytest.fixture
def caddy(tmp_path: Path, portal: RunningPortal) -> Iterator[tuple[str, Path]]:
    binary = shutil.which("caddy")
    assert binary, "Caddy is not installed: apt-get install caddy (scripts/install-system.sh test does)"
    cert, key = self_signed(tmp_path)
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
        "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
        "DP3_SITE_ADDRESS": f"https://127.0.0.1:{port}",
        "DP3_TLS": f"{cert} {key}",
        "DP3_PORTAL_UPSTREAM": f"127.0.0.1:{portal.port}",
        "DP3_CADDY_BIND": "127.0.0.1",
        "DP3_CADDY_HTTP_PORT": str(free_port()),
        "DP3_CADDY_ADMIN": "off",
    }
    log = tmp_path / "caddy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"], env=env, stdout=out, stderr=out
        )
    url = f"https://127.0.0.1:{port}"

    def answering() -> bool:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            return httpx.get(url + "/healthz", verify=str(cert), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answering, 30, f"Caddy to serve the portal over HTTPS (log: {log})", interval=0.2)
        yield url, cert
    finally:
        process.terminate()
        process.wait(20)


def test_login_over_https_through_caddy_sets_a_secure_cookie(caddy: tuple[str, Path]) -> None:
    url, cert = caddy
    with httpx.Client(base_url=url, verify=str(cert), follow_redirects=False) as browser:
        form = browser.get("/login")
        assert form.status_code == 200 and form.headers["strict-transport-security"].startswith("max-age=")
        token = browser.cookies[CSRF_COOKIE]
        assert "secure" in form.headers["set-cookie"].lower()  # the CSRF cookie too
        answer = browser.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
        assert answer.status_code == 303
        [session] = [h for h in answer.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}=")]
        attributes = {part.strip().split("=")[0].lower() for part in session.split(";")[1:]}
        assert {"secure", "httponly", "path", "max-age"} <= attributes, session
        assert browser.get("/status").status_code == 200  # the session works over HTTPS
        assert browser.get("/metrics").status_code == 404  # not served through the proxy
    plain = httpx.get(url.replace("https://", "http://") + "/login", timeout=5)  # plain HTTP on the HTTPS port
    assert plain.status_code == 400 and CSRF_COOKIE not in plain.headers.get("set-cookie", "")
