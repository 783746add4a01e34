from __future__ import annotations

from pathlib import Path

import pytest

from dp3.errors import ConfigError
from dp3.settings import load_settings
from dp3_scanner.settings import ScannerSettings


def test_defaults_follow_the_issue(tmp_path: Path) -> None:
    settings = load_settings(ScannerSettings, home=tmp_path)
    assert (settings.stable_seconds, settings.rescan_seconds, settings.redrive_seconds) == (5.0, 60.0, 600.0)
    assert settings.index_path == tmp_path / "scanner" / "index.sqlite3"
    assert settings.watch is True


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DP3_STABLE_SECONDS", "2.5")
    monkeypatch.setenv("DP3_SCANNER_INDEX", str(tmp_path / "i.db"))
    settings = load_settings(ScannerSettings)
    assert settings.stable_seconds == 2.5 and settings.index_path == tmp_path / "i.db"


@pytest.mark.parametrize("variable", ["DP3_STABLE_SECONDS", "DP3_RESCAN_SECONDS", "DP3_REDRIVE_SECONDS"])
def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "0")
    with pytest.raises(ConfigError, match=variable):
        load_settings(ScannerSettings)
