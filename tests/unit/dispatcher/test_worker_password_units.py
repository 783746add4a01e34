"""The Work Queue password's pure parts: the setting, the secret file, the factory's worker count."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dp3.errors import ConfigError
from dp3.files import ensure_secret_file
from dp3.settings import load_settings
from dp3_dispatcher.settings import PASSWORD_FILE_NAME, DispatcherSettings
from dp3_dispatcher.workers import DemandFile, factory_workers


def test_the_password_file_defaults_to_dp3_home(tmp_path: Path) -> None:
    settings = load_settings(DispatcherSettings, home=tmp_path)
    assert settings.password_file == tmp_path / PASSWORD_FILE_NAME


@pytest.mark.parametrize("kind", ["missing", "empty", "folder"])
def test_a_configured_password_file_must_be_a_file_with_a_secret(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "secret"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    with pytest.raises(ConfigError, match="DP3_WORK_QUEUE_PASSWORD_FILE"):
        load_settings(DispatcherSettings, home=tmp_path, work_queue_password_file=path)


def test_the_secret_is_made_once_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "home" / PASSWORD_FILE_NAME
    assert ensure_secret_file(path) is True
    secret = path.read_bytes()
    assert len(secret) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secret_file(path) is False
    assert path.read_bytes() == secret
    assert [p.name for p in path.parent.iterdir()] == [PASSWORD_FILE_NAME]  # no temporary file left


@pytest.mark.parametrize(
    ("demand", "connected", "expected"),
    [
        (0, 0, 0),  # nothing to do
        (3, 0, 3),  # a burst, nothing up yet: the factory submits 3
        (3, 3, 6),  # all up: 6 - 2*3 submitted = nothing more
        (10, 2, 6),  # capped at the maximum 4: 6 - 2*2 = 2 more
        (0, 4, 4),  # idle: 4 - 2*4 < 0, the factory waits for them to leave
    ],
)
def test_factory_workers_makes_the_factory_submit_what_is_missing(demand: int, connected: int, expected: int) -> None:
    assert factory_workers(demand, connected, workers_min=0, workers_max=4) == expected


def test_factory_workers_keeps_the_minimum() -> None:
    assert factory_workers(0, 0, workers_min=2, workers_max=4) == 2


def test_the_demand_file_is_what_a_factory_reads_and_changes_its_mtime_only_with_the_count(tmp_path: Path) -> None:
    """A factory re-reads --config-file when its mtime (in whole seconds) moves: each new count, a new second."""
    import json

    demand = DemandFile(tmp_path / "work-queue-demand.json")
    demand.write(3)
    first = demand.path.stat().st_mtime
    assert json.loads(demand.path.read_bytes()) == {"min-workers": 3, "max-workers": 3}
    demand.write(3)
    assert demand.path.stat().st_mtime == first  # same count: untouched
    demand.write(0)
    assert json.loads(demand.path.read_bytes()) == {"min-workers": 0, "max-workers": 1}  # 0 would stop the factory
    assert demand.path.stat().st_mtime > first
