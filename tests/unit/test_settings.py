from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dp3.errors import ConfigError
from dp3.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("DP3_"):
            monkeypatch.delenv(key)


def test_defaults_derive_from_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DP3_HOME", "/srv/dp3")
    settings = load_settings()
    assert settings.inbox == Path("/srv/dp3/inbox")
    assert settings.staging == Path("/srv/dp3/staging")
    assert settings.stores == (Path("/srv/dp3/archive-a"), Path("/srv/dp3/archive-b"))
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert settings.mongo_url is None
    assert settings.timezone == "UTC"


def test_default_home_is_var() -> None:
    assert load_settings().home == Path("./var")


def test_stores_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DP3_STORES", "/mnt/cluster, /mnt/university ")
    assert load_settings().stores == (Path("/mnt/cluster"), Path("/mnt/university"))


def test_explicit_inbox_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DP3_INBOX", "/Dropbox/Photos/Israel")
    assert load_settings().inbox == Path("/Dropbox/Photos/Israel")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DP3_TIMEZONE", "Mars/Olympus", "DP3_TIMEZONE: unknown time zone 'Mars/Olympus'"),
        ("DP3_AMQP_URL", "http://localhost", "DP3_AMQP_URL: expected an amqp:// or amqps:// URL"),
        ("DP3_MONGO_URL", "postgres://x", "DP3_MONGO_URL: expected a mongodb://"),
        ("DP3_STORES", "/a,,/b", "DP3_STORES: empty store path"),
        ("DP3_METRICS_PORT", "70000", "DP3_METRICS_PORT: Input should be less than or equal to 65535"),
        ("DP3_METRICS_PORT", "abc", "DP3_METRICS_PORT: Input should be a valid integer"),
        ("DP3_LOG_LEVEL", "LOUD", "DP3_LOG_LEVEL: expected one of"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_service_settings_extend_with_same_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    class ScannerLike(Settings):
        rescan_seconds: float = 60.0

    monkeypatch.setenv("DP3_RESCAN_SECONDS", "2.5")
    assert load_settings(ScannerLike).rescan_seconds == 2.5
    monkeypatch.setenv("DP3_RESCAN_SECONDS", "soon")
    with pytest.raises(ConfigError, match=r"^DP3_RESCAN_SECONDS: "):
        load_settings(ScannerLike)


def test_bad_configuration_stops_a_service_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "from dp3.service import load_or_exit; from dp3.settings import Settings; load_or_exit('scanner', Settings)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"DP3_TIMEZONE": "Nowhere/Land", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "dp3-scanner: bad configuration: DP3_TIMEZONE: unknown time zone 'Nowhere/Land' "
        "(use an IANA name such as Asia/Jerusalem) (got 'Nowhere/Land')"
    ]


@pytest.mark.parametrize(
    ("overrides", "inner", "outer"),
    [
        ({"stores": "{home}/inbox/archive,{home}/b"}, "DP3_STORES {home}/inbox/archive", "DP3_INBOX {home}/inbox"),
        ({"stores": "{home}/a,{home}"}, "DP3_INBOX {home}/inbox", "DP3_STORES {home}"),
        ({"stores": "{home}/staging/x,{home}/b"}, "DP3_STORES {home}/staging/x", "DP3_STAGING {home}/staging"),
        ({"staging": "{home}/inbox/.staging"}, "DP3_STAGING {home}/inbox/.staging", "DP3_INBOX {home}/inbox"),
        ({"stores": "{home}/inbox,{home}/b"}, "DP3_STORES {home}/inbox", "DP3_INBOX {home}/inbox"),
        ({"stores": "{home}/link/archive,{home}/b"}, "DP3_STORES {home}/link/archive", "DP3_INBOX {home}/inbox"),
    ],
)
def test_a_store_or_staging_overlapping_the_inbox_is_refused_in_one_line(
    tmp_path: Path, overrides: dict[str, str], inner: str, outer: str
) -> None:
    """A store inside the inbox would be scanned and collected; one inside staging cleared (invariant 8)."""
    (tmp_path / "inbox").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "inbox")  # a store reached through a symlink into the inbox
    values: dict[str, Any] = {"home": tmp_path}
    for key, value in overrides.items():
        text = value.format(home=tmp_path)
        values[key] = text if key == "stores" else Path(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(**values)
    message = str(raised.value)
    assert message == (
        f"{inner.format(home=tmp_path)} lies inside {outer.format(home=tmp_path)}: "
        "the inbox, staging and each store must be apart"
    )


def test_sibling_folders_with_a_common_prefix_are_apart(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, inbox=tmp_path / "in", stores=f"{tmp_path}/inbox-archive,{tmp_path}/b")
    assert settings.stores == (tmp_path / "inbox-archive", tmp_path / "b")
