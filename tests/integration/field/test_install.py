"""Issue 19 item 1: the README's one install command gives a laptop the agent and nothing of the head node.

A fresh virtual environment, the command exactly as the README's field-team
section prints it, then the installed distributions and the command itself.
What must not come along: the broker client, the MongoDB driver, the metrics
library, the scanner's watcher, a C compiler's work (every dependency is a
wheel; only the two pure-Python DP3 packages are built, from this tree).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rabbit import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEAD_NODE_ONLY = {"pika", "pymongo", "prometheus-client", "watchdog", "cffi", "fastapi", "uvicorn"}


def readme_install_command() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## For the field team", 1)[1].split("\n## ", 1)[0]
    (line,) = [line.strip() for line in section.splitlines() if line.strip().startswith("pip install")]
    return line.split()


def test_the_readme_install_command_brings_the_agent_and_nothing_of_the_head_node(tmp_path: Path) -> None:
    venv = tmp_path / "laptop"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    words = readme_install_command()
    assert words[:2] == ["pip", "install"]
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-cache-dir", *words[2:]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    built = set(re.findall(r"Building wheel for (\S+)", installed.stdout))
    assert built <= {"dp3", "dp3-field", "dp3_field"}, f"built from source, not a wheel: {built}"

    listed = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=freeze"], capture_output=True, text=True, check=True
    )
    names = {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.splitlines()}
    assert {"dp3", "dp3-field", "pillow", "tuspy", "requests"} <= names
    assert not names & HEAD_NODE_ONLY, f"head-node packages on a laptop: {sorted(names & HEAD_NODE_ONLY)}"

    helped = subprocess.run([str(venv / "bin" / "dp3-field"), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "pair" in helped.stdout and "run" in helped.stdout
    home = tmp_path / "home"
    status = subprocess.run(
        [str(venv / "bin" / "dp3-field"), "status"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "DP3_FIELD_HOME": str(home / "dp3-field")},
    )
    said = status.stdout + status.stderr
    assert "Traceback" not in said, said
    assert "pair" in said.lower(), said  # not paired yet: it says how to pair, in one line
