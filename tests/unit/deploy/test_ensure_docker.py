"""scripts/ensure-docker.sh: no engine is a failure with its reason, never a silent pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.rabbit import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "ensure-docker.sh"


def run_without_an_engine(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A docker CLI that finds no engine, as on a machine where none runs.
    (bin_dir / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DP3_DOCKERD_LOG": str(tmp_path / "dockerd.log")}
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=90, check=False)


def test_no_dockerd_installed_fails_and_says_what_to_install(tmp_path: Path) -> None:
    result = run_without_an_engine(tmp_path)
    assert result.returncode == 1
    assert "dockerd is not installed: run 'apt-get install docker.io'" in result.stderr
