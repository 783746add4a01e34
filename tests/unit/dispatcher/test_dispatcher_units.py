"""Small, pure pieces of the dispatcher: settings, the task command, the factory command line, staging."""

from __future__ import annotations

import io
import os
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from dp3 import layout, render_task
from dp3.errors import ConfigError
from dp3.files import TEMP_PREFIX, sha256_file
from dp3.settings import load_settings
from dp3_dispatcher.dispatcher import render_command
from dp3_dispatcher.processes import descendants
from dp3_dispatcher.settings import DispatcherSettings
from dp3_dispatcher.staging import Staging
from dp3_dispatcher.workers import FactoryConfig


def test_settings_defaults_and_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DP3_HOME", str(tmp_path))
    monkeypatch.setenv("DP3_WORKERS_MAX", "3")
    settings = load_settings(DispatcherSettings)
    assert settings.workers_max == 3 and settings.workers_min == 0
    assert settings.worker_provider == "local" and settings.max_pixels == 200_000_000
    assert settings.scratch_dir == tmp_path / "work-queue"
    monkeypatch.setenv("DP3_WORKERS_MIN", "5")
    monkeypatch.setenv("DP3_WORKERS_MAX", "2")
    with pytest.raises(ConfigError, match="DP3_WORKERS_MIN"):
        load_settings(DispatcherSettings)
    monkeypatch.delenv("DP3_WORKERS_MIN")
    monkeypatch.setenv("DP3_WORKER_PROVIDER", "slurm")
    with pytest.raises(ConfigError, match="DP3_WORKER_PROVIDER"):
        load_settings(DispatcherSettings)


def test_the_worker_limit_defaults_to_the_cores_and_at_least_the_minimum(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DP3_HOME", str(tmp_path))
    cores = os.cpu_count() or 1
    assert load_settings(DispatcherSettings).workers_max == cores
    monkeypatch.setenv("DP3_WORKERS_MIN", str(cores + 3))
    assert load_settings(DispatcherSettings).workers_max == cores + 3


def test_the_old_names_of_renamed_settings_are_still_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """DP3_WORKERS is the old DP3_WORKERS_MAX, DP3_WORK_QUEUE_BATCH the old DP3_WORKER_PROVIDER; the new ones win."""
    monkeypatch.setenv("DP3_HOME", str(tmp_path))
    monkeypatch.setenv("DP3_WORKERS", "3")
    monkeypatch.setenv("DP3_WORK_QUEUE_BATCH", "none")
    settings = load_settings(DispatcherSettings)
    assert (settings.workers_max, settings.worker_provider) == (3, "none")
    monkeypatch.setenv("DP3_WORKERS_MAX", "5")
    monkeypatch.setenv("DP3_WORKER_PROVIDER", "condor")
    settings = load_settings(DispatcherSettings)
    assert (settings.workers_max, settings.worker_provider) == (5, "condor")
    assert load_settings(DispatcherSettings, workers_max=7, worker_provider="local").workers_max == 7


def test_the_task_command_holds_no_user_data() -> None:
    assert render_command(200_000_000, 1, 1024, 600) == (
        "python3 render_task.py --max-pixels 200000000 --memory-mb 1024 --seconds 600 --batch results.tar photo0"
    )
    assert render_command(5, 3, 64, 1).endswith("--batch results.tar photo0 photo1 photo2")


def test_the_factory_command_line() -> None:
    config = FactoryConfig(
        provider="condor",
        manager_host="head.example.org",
        manager_port=9123,
        workers_min=0,
        workers_max=16,
        idle_timeout=60,
        scratch=Path("/var/dp3/wq"),
        condor_requirements='(OpSys == "LINUX")',
        password_file=Path("/var/dp3/work-queue-password"),
    )
    command = config.command()
    assert command[:3] == ["work_queue_factory", "-T", "condor"]
    assert command[-2:] == ["head.example.org", "9123"]
    pairs = {
        flag: command[i + 1] for i, flag in enumerate(command) if flag.startswith("--") and flag != "--parent-death"
    }
    assert pairs["--min-workers"] == "0" and pairs["--max-workers"] == "16"
    assert pairs["--workers-per-cycle"] == "16" and pairs["--timeout"] == "60"
    assert pairs["--condor-requirements"] == '(OpSys == "LINUX")'
    assert pairs["--password"] == "/var/dp3/work-queue-password"  # the factory passes it to every worker
    assert "--parent-death" in command


def test_descendants_finds_grandchildren() -> None:
    parent = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(descendants(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(descendants(parent.pid)) == 2
    finally:
        for pid in descendants(parent.pid):
            subprocess.run(["kill", str(pid)], check=False)
        parent.wait(5)


def _artifacts(folder: Path, colour: tuple[int, int, int]) -> str:
    """Render a generated photo into ``folder`` with the real render task; returns its sha256."""
    source = folder.parent / f"source-{colour[0]}.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), colour).save(buffer, "JPEG")
    source.write_bytes(buffer.getvalue())
    render_task.render(str(source), str(folder))
    return sha256_file(source)[0]


def test_staging_commit_is_atomic_and_the_fast_path_checks_the_sha256(tmp_path: Path) -> None:
    staging = Staging(tmp_path)
    photo_id = "ANNA-SMITH_1_it's a (photo).jpg"
    workspace = staging.workspace()
    assert workspace.name.startswith(TEMP_PREFIX) and photo_id not in workspace.name
    sha = _artifacts(workspace, (10, 120, 200))
    received = (workspace / "thumbnail.jpg", workspace / "web.jpg", workspace / "meta.json")
    staging.name_artifacts(workspace, photo_id, received)
    assert staging.verified_meta(photo_id, sha) is None  # nothing committed yet
    final = staging.commit(workspace, photo_id)
    assert final == layout.staging_dir(staging.root, photo_id) and not workspace.exists()
    assert sorted(p.name for p in final.iterdir()) == sorted(
        [layout.thumbnail_name(photo_id), layout.web_name(photo_id), layout.META_NAME]
    )
    meta = staging.verified_meta(photo_id, sha)
    assert meta is not None and meta["sha256"] == sha
    assert staging.verified_meta(photo_id, "b" * 64) is None  # other bytes: render again
    # A second commit replaces the first whole.
    again = staging.workspace()
    other = _artifacts(again, (200, 20, 20))
    staging.name_artifacts(again, photo_id, (again / "thumbnail.jpg", again / "web.jpg", again / "meta.json"))
    staging.commit(again, photo_id)
    assert staging.verified_meta(photo_id, other) is not None
    assert staging.verified_meta(photo_id, sha) is None
    assert sorted(p.name for p in staging.root.iterdir() if not p.name.startswith("source-")) == [photo_id]


def test_staging_reaps_leftover_workspaces(tmp_path: Path) -> None:
    staging = Staging(tmp_path)
    left = staging.workspace()
    (left / "web.jpg").write_bytes(b"partial")
    (tmp_path / "kept").mkdir()
    assert staging.reap() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
