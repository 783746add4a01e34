"""The shipped Prometheus configuration and rules are valid, and every alert fires when it should.

``promtool`` (Debian's prometheus package) is the judge: ``check config`` and
``check rules`` parse them as the server would, and ``test rules`` runs the
alert cases in ``dp3_rules_test.yml`` (each alert fires on its situation with
its runbook line, and stays quiet on a healthy pipeline).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "dp3.rules.yml"
RULE_TESTS = Path(__file__).with_name("dp3_rules_test.yml")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: apt-get install prometheus")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_check_config(config: str) -> None:
    result = promtool("check", "config", str(PROMETHEUS_DIR / config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_with_its_runbook_line() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_line_and_a_unit_case() -> None:
    """Text-level check (no YAML parser needed): each alert block names a runbook and is unit-tested."""
    text = RULES.read_text()
    blocks = text.split("- alert: ")[1:]
    assert len(blocks) >= 10
    cases = RULE_TESTS.read_text()
    for block in blocks:
        name = block.split()[0]
        assert "runbook: " in block, f"{name} has no runbook annotation"
        assert "docs/operations.md#" in block.split("runbook: ", 1)[1].splitlines()[0], name
        assert f"alertname: {name}\n" in cases, f"{name} has no firing case in {RULE_TESTS.name}"


def test_dashboard_query_idioms() -> None:
    """in_last_hour() counts a series born inside the hour from zero, and a reset from the restart."""
    result = promtool("test", "rules", str(Path(__file__).with_name("dashboard_queries_test.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_runbook_links_exist() -> None:
    """Every runbook line's docs/operations.md#anchor names a heading of that document."""
    doc = (REPO / "docs" / "operations.md").read_text()
    anchors = {github_anchor(line.lstrip("#")) for line in doc.splitlines() if line.startswith("#")}
    linked = set(re.findall(r"docs/operations\.md#([\w-]+)", RULES.read_text()))
    assert len(linked) >= 8
    assert linked <= anchors, f"runbook links without a section: {sorted(linked - anchors)}"
