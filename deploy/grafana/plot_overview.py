"""Draw a dashboard's panels from Prometheus range-query results, as a PNG (matplotlib).

No Grafana server can run on the development machines, so the operations docs
show this instead of a screenshot: the same panels, titles, units and queries
as the generated dashboard JSON, evaluated by a real Prometheus during the
integration test (tests/integration/ops/), which saves the results and calls
:func:`plot_dashboard`. To refresh the figure in the docs:

    DP3_OPS_PLOT=docs/img/overview.png .venv/bin/pytest tests/integration/ops
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.dates as mdates
import matplotlib.pyplot as plt

Series = Mapping[str, Any]

# Grafana unit id -> (divisor, axis label).
UNITS: dict[str, tuple[float, str]] = {
    "bytes": (1e9, "GB"),
    "Bps": (1e6, "MB/s"),
    "s": (1.0, "seconds"),
    "opm": (1.0, "per minute"),
    "reqps": (1.0, "requests/s"),
    "percentunit": (0.01, "%"),
    "short": (1.0, ""),
}


def legend_text(template: str, labels: Mapping[str, str], width: int = 48) -> str:
    """Grafana's ``{{label}}`` legend format; long texts (store paths) keep their end."""
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip() or "value"
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def panel_targets(board: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def run_span(results: Mapping[str, Sequence[Series]]) -> tuple[datetime, datetime] | None:
    """The first and last step of all the results: one time range for every panel, as on a dashboard."""
    steps = [float(t) for result in results.values() for series in result for t, _ in series["values"]]
    if not steps:
        return None
    return datetime.fromtimestamp(min(steps), tz=UTC), datetime.fromtimestamp(max(steps), tz=UTC)


def isolated(values: Sequence[float]) -> list[bool]:
    """Finite values with no finite neighbour: a line alone would not show them, so they get a marker."""
    finite = [math.isfinite(v) for v in values]
    return [
        here and not (index > 0 and finite[index - 1]) and not (index + 1 < len(finite) and finite[index + 1])
        for index, here in enumerate(finite)
    ]


def plot_dashboard(board: Mapping[str, Any], results: Mapping[str, Sequence[Series]], out: Path) -> Path:
    """One subplot per panel; ``results`` maps each target's ``expr`` to its query_range result."""
    panels = panel_targets(board)
    columns = 2
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(14, 3.2 * rows), squeeze=False)
    span = run_span(results)
    for axis, panel in zip(axes.flat, panels, strict=False):
        unit = panel["fieldConfig"]["defaults"]["unit"]
        divisor, label = UNITS.get(unit, (1.0, unit))
        lowest, highest = 0.0, 0.0
        for target in panel["targets"]:
            for series in results.get(target["expr"], []):
                points = [(float(t), float(v)) for t, v in series["values"]]
                finite = [v for _, v in points if math.isfinite(v)]
                if not finite:
                    continue
                lowest, highest = min(lowest, *finite), max(highest, *finite)
                times = [datetime.fromtimestamp(t, tz=UTC) for t, _ in points]
                # NaN steps (e.g. a quantile over a window without observations) stay gaps, as in Grafana.
                values = [v / divisor if math.isfinite(v) else math.nan for _, v in points]
                (line,) = axis.plot(
                    times,
                    values,
                    label=legend_text(target.get("legendFormat", ""), series["metric"]),
                    linewidth=1.4,
                )
                alone = [(t, v) for t, v, single in zip(times, values, isolated(values), strict=True) if single]
                if alone:
                    axis.plot(*zip(*alone, strict=True), linestyle="", marker="o", markersize=3, color=line.get_color())
        if lowest >= 0:
            # From 0, as the dashboards' panels do (min 0), with room above the highest line for the legend,
            # and a sliver below 0 so that a line at 0 is not hidden under the axis.
            top = highest / divisor * 1.35 if highest > 0 else 1.0
            axis.set_ylim(-0.02 * top, top)
        if span is not None:
            axis.set_xlim(*span)
        if not axis.lines:
            axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes, color="grey")
            axis.set_xticks([])
        axis.set_title(panel["title"], fontsize=10, loc="left")
        axis.set_ylabel(label, fontsize=8)
        axis.tick_params(labelsize=7)
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=6, loc="upper left", ncol=2)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(f"{board['title']}: its panel queries evaluated by Prometheus during a test run (UTC)", fontsize=12)
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out
