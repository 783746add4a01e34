"""``dp3-portal`` start-up: the embedded server by default, the admin password printed once, state kept."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.portal.running import RunningPortal

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_first_start_prints_a_generated_admin_password_once_and_state_survives_restart(
    tmp_path: Path, amqp_url: str
) -> None:
    home = tmp_path / "home"
    env = {"DP3_HOME": str(home), "DP3_AMQP_URL": amqp_url, "DP3_MONGO_URL": ""}
    log = tmp_path / "portal.log"
    first = RunningPortal(env, log)
    try:
        printed = re.findall(r"created user 'admin' with password: (\S+)", log.read_text())
        assert len(printed) == 1
        password = printed[0]
        assert httpx.get(first.url + "/api/stats", auth=("admin", password)).status_code == 200
        assert (home / "mongo" / "url").read_text().strip().startswith("mongodb://127.0.0.1:")
        secret = (home / "portal-secret-key").read_text()
        assert oct((home / "portal-secret-key").stat().st_mode & 0o777) == "0o600"
    finally:
        assert first.stop() == 0
    assert not (home / "mongo" / "url").exists()
    second = RunningPortal(env, log)
    try:
        assert len(re.findall(r"created user 'admin'", log.read_text())) == 1
        assert httpx.get(second.url + "/api/stats", auth=("admin", password)).status_code == 200
        assert (home / "portal-secret-key").read_text() == secret
    finally:
        second.stop()


def test_a_bad_setting_stops_the_portal_with_one_line_naming_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dp3-portal"))],
        env={"DP3_HOME": str(tmp_path), "DP3_PORTAL_PORT": "99999", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "DP3_PORTAL_PORT" in result.stderr and len(result.stderr.strip().splitlines()) == 1
