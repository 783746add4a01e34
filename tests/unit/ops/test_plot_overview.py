"""The docs' figure is drawn from a dashboard's own panels and Prometheus' answers to their queries."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from tests.unit.ops.scripts import REPO, load_script


def load_plotter() -> ModuleType:
    return load_script("deploy/grafana/plot_overview.py", "plot_overview")


def test_legend_follows_grafana_format_and_keeps_the_end_of_long_paths() -> None:
    plotter = load_plotter()
    assert plotter.legend_text("store {{store}} {{kind}}", {"store": "/a", "kind": "down"}) == "store /a down"
    long = plotter.legend_text("{{store}}", {"store": "/" + "x" * 80 + "/archive-b"})
    assert len(long) == 48 and long.startswith("...") and long.endswith("/archive-b")


def test_every_overview_panel_is_drawn(tmp_path: Path) -> None:
    plotter = load_plotter()
    board = json.loads((REPO / "deploy" / "grafana" / "dashboards" / "dp3-overview.json").read_text())
    series = [{"metric": {"queue": "dispatcher"}, "values": [[1700000000 + i, str(i % 5)] for i in range(60)]}]
    results = {t["expr"]: series for p in board["panels"] for t in p.get("targets", [])}
    out = plotter.plot_dashboard(board, results, tmp_path / "overview.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 20_000
