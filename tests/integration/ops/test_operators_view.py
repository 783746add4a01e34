"""The operators' view, proved against a real run: Prometheus scrapes the one-machine stack.

The stack (``deploy/local/stack.py`` under supervisord, via tests/stack.py)
processes part of the corpus while Debian's ``prometheus`` server scrapes it
with the shipped local configuration (ports and intervals adjusted) and the
shipped rules (``for:`` shortened to 0 s). Then:

- every query of every generated dashboard panel returns data over the run
  (and every metric it names is exported by a service);
- every alert rule is loaded, healthy and evaluates without error, and no
  critical alert fires on the healthy pipeline;
- a copy corrupted in one store makes the fixity audit's alert fire;
- a store whose marker is removed (as if unmounted) makes DP3StoreUnwritable
  fire for that store, and its photos stay in the inbox;
- the overview's queries are drawn into a PNG (the docs' figure), every panel with a line;
  with ``DP3_OPS_PLOT=path`` a passing run copies it there.

Slow: about two minutes (the stack's start and the photos' rendering).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dp3.layout import STORE_MARKER
from dp3.ports import free_port
from tests.integration.ops.promserver import PrometheusServer
from tests.rabbit import wait_for
from tests.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
RABBITMQ_METRICS = "127.0.0.1:15692"
# What Grafana makes of $__rate_interval at a 1 s scrape interval (at least four scrapes).
RATE_INTERVAL = "10s"
OWNERS = ("JAEGER-NICHOLAS", "REEDER-PHILIP")
# Every (service, stage) counter series the main wave increments; the first wave creates them.
STAGES = {
    ("scanner", "photo.detected"),
    ("scanner", "photo.failed"),
    ("dispatcher", "photo.processed"),
    ("dispatcher", "photo.failed"),
    ("archiver", "photo.archived"),
    ("archiver", "photo.collected"),
}
CRITICAL_WHEN_HEALTHY = {"DP3ServiceDown", "DP3ServiceMissing", "DP3NoWorkers", "DP3StoreUnwritable"}


def load_plotter() -> ModuleType:
    """deploy/grafana/plot_overview.py (a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location("plot_overview", REPO / "deploy" / "grafana" / "plot_overview.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_rabbitmq_prometheus() -> None:
    """RabbitMQ's Prometheus plugin; enabling it is online (no broker restart)."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://{RABBITMQ_METRICS}/metrics", timeout=3) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    if not answers():
        subprocess.run(["rabbitmq-plugins", "enable", "rabbitmq_prometheus"], check=True, capture_output=True)
        wait_for(answers, 30, "RabbitMQ's Prometheus endpoint on 15692", interval=0.5)


def scrape_config(stack: Stack, vhost: str, own_port: int) -> str:
    """The shipped local config, pointed at this stack's ports, scraping every second, this vhost only."""
    text = (PROMETHEUS_DIR / "prometheus.local.yml").read_text()
    replacements = {
        "scrape_interval: 15s": "scrape_interval: 1s\n  scrape_timeout: 1s",
        "evaluation_interval: 15s": "evaluation_interval: 1s",
        "127.0.0.1:9101": f"127.0.0.1:{stack.metrics_ports['scanner']}",
        "127.0.0.1:9102": f"127.0.0.1:{stack.metrics_ports['dispatcher']}",
        "127.0.0.1:9103": f"127.0.0.1:{stack.metrics_ports['archiver']}",
        "127.0.0.1:8000": f"127.0.0.1:{stack.portal_port}",
        '["127.0.0.1:9090"]': f'["127.0.0.1:{own_port}"]',
        # The shared test broker holds other tests' vhosts: keep this run's series only.
        "metrics_path: /metrics/per-object\n": (
            "metrics_path: /metrics/per-object\n"
            "    metric_relabel_configs:\n"
            "      - source_labels: [vhost, queue_vhost]\n"
            f'        regex: "({vhost})?;({vhost})?"\n'
            "        action: keep\n"
        ),
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"prometheus.local.yml no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


def shortened_rules() -> str:
    """The shipped rules with every ``for:`` set to 0 s, so the test need not wait minutes.

    Except "service down": with 1 s scrapes and a 1 s scrape timeout, one slow answer from a
    busy service is a failed scrape, and at 0 s that alone would fire it on a healthy run.
    """
    text = (PROMETHEUS_DIR / "rules" / "dp3.rules.yml").read_text()
    shortened, count = re.subn(r"\bfor: \d+[smh]\b", "for: 0s", text)
    assert count >= 5
    shortened, count = re.subn(r"(- alert: DP3ServiceDown\n(?:.*\n)*?\s*)for: 0s", r"\1for: 10s", shortened)
    assert count == 1
    return shortened


def corpus_photos(corpus: Path) -> list[Path]:
    """Part of the corpus, and its truncated JPEG."""
    photos = sorted(p for p in (corpus / "jpg").glob("*.jpg") if p.name != "corrupted.jpg")[:16]
    return [*photos, corpus / "jpg" / "corrupted.jpg"]


def drop_first_photos(stack: Stack, corpus: Path) -> None:
    """A first, small wave: one photo, one failure in the render and one in the scanner.

    The per-stage counter (``dp3_broker_published_total{routing_key}``) gets a series only at
    its first event, and ``rate()`` cannot see the step from "no series" to its first value: in a
    single wave, a stage done within one scrape interval (the scanner detects every photo at once)
    would show as 0 in the overview's "Photos per minute". A pipeline that has run before has these
    series already.
    """
    first = corpus_photos(corpus)[0]
    (stack.inbox / OWNERS[0]).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(first, stack.inbox / OWNERS[0] / first.name)
    # Not an image under an image's name: Detected, then Failed (corrupt_image), archived and collected.
    (stack.inbox / OWNERS[0] / "bogus.jpg").write_text("this is not a photo\n")
    # A photo in the inbox root: Failed with no_owner, left where it is.
    shutil.copyfile(first, stack.inbox / "no-owner.jpg")


def drop_photos(stack: Stack, corpus: Path) -> None:
    """The main wave: the rest of the photos under two photographers, and a file that is not an image."""
    for index, photo in enumerate(corpus_photos(corpus)[1:], start=1):
        folder = stack.inbox / OWNERS[index % 2]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, folder / photo.name)
    # Not an image at all: ignored, counted, left alone.
    (stack.inbox / OWNERS[1] / "notes.txt").write_text("shot list\n")


def published(prom: PrometheusServer) -> list[dict[str, Any]]:
    return prom.query("dp3_broker_published_total")


def owner_files(stack: Stack) -> list[Path]:
    return sorted(p for owner in OWNERS for p in (stack.inbox / owner).rglob("*") if p.is_file())


def dashboard_targets() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expression) for every query of every generated dashboard."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((board["uid"], panel["title"], target["expr"]))
    assert len(found) > 40
    return found


def panel_query(uid: str, title: str, legend: str) -> str:
    board = json.loads((DASHBOARDS / f"{uid}.json").read_text())
    panel = next(p for p in board["panels"] if p["title"] == title)
    return str(next(t["expr"] for t in panel["targets"] if t["legendFormat"] == legend))


def values_by(prom: PrometheusServer, expr: str, label: str) -> dict[str, float]:
    return {series["metric"].get(label, ""): float(series["value"][1]) for series in prom.query(expr)}


def grafana_to_promql(expr: str) -> str:
    return expr.replace("$__rate_interval", RATE_INTERVAL)


def has_finite_value(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(value)) for series in result for _, value in series["values"])


def has_line(result: list[dict[str, Any]]) -> bool:
    """Some series has two consecutive steps with a value: a line segment the figure can show."""
    for series in result:
        finite = [math.isfinite(float(value)) for _, value in series["values"]]
        if any(a and b for a, b in itertools.pairwise(finite)):
            return True
    return False


def metric_families(expr: str) -> set[str]:
    names = set(re.findall(r"\b((?:dp3|rabbitmq)_[a-z0-9_]+)", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def firing_names(prom: PrometheusServer) -> dict[str, list[dict[str, str]]]:
    firing: dict[str, list[dict[str, str]]] = {}
    for alert in prom.firing():
        firing.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
    return firing


def first_sample_time(prom: PrometheusServer, expr: str, since: float) -> float:
    """When ``expr`` was first sampled after ``since``.

    A range query sees a sample only from the next whole step after it, so a scrape that landed
    in the last second before "now" is invisible for up to a step: ask until one is seen.
    """
    seen: list[float] = []

    def sampled() -> bool:
        seen[:] = [float(t) for series in prom.query_range(expr, since, time.time(), 1) for t, _ in series["values"]]
        return bool(seen)

    wait_for(sampled, 10, f"a first sample of {expr}", interval=0.5)
    return min(seen)


def test_dashboards_and_alerts_on_a_real_run(amqp_url: str, corpus: Path, tmp_path: Path) -> None:
    ensure_rabbitmq_prometheus()
    vhost = amqp_url.rsplit("/", 1)[1]
    stack = Stack(
        tmp_path / "home",
        amqp_url,
        # A periodic fixity audit (to prove its alert) and quick retries of held-back photos.
        # One worker kept warm, as on a healthy head node: from zero, workers come up only
        # after tasks wait, and the shortened DP3NoWorkers alert would fire in between.
        extra_env={"DP3_FIXITY_SECONDS": "3", "DP3_RETRY_DELAYS": "1,2", "DP3_WORKERS_MIN": "1"},
    )
    port = free_port()
    prom = PrometheusServer(
        tmp_path / "prometheus", port, scrape_config(stack, vhost, port), {"dp3.rules.yml": shortened_rules()}
    )
    try:
        stack.start()
        prom_ready = time.time()
        prom.start()
        jobs = {"scanner", "dispatcher", "archiver", "portal", "rabbitmq", "prometheus"}
        try:
            wait_for(
                lambda: {t["labels"]["job"] for t in prom.targets() if t["health"] == "up"} == jobs,
                60,
                "every scrape target up",
                interval=0.5,
            )
        except AssertionError:
            states = [(t["labels"]["job"], t["health"], t.get("lastError")) for t in prom.targets()]
            raise AssertionError(f"scrape targets: {states}") from None
        started = time.time()
        # The range queries (and the figure) start at the first scrape, not in the seconds before it.
        first_scrape = first_sample_time(prom, "up", prom_ready)

        # 1. A healthy run: the photos go through, every alert evaluates, no critical one fires.
        drop_first_photos(stack, corpus)
        wait_for(lambda: not owner_files(stack), 120, "the first wave collected", interval=0.5)
        wait_for(
            lambda: {(s["metric"]["job"], s["metric"]["routing_key"]) for s in published(prom)} >= STAGES,
            30,
            f"every stage counted once: {STAGES}",
            interval=0.5,
        )
        drop_photos(stack, corpus)
        wait_for(
            lambda: [p.name for p in owner_files(stack)] == ["notes.txt"],
            240,
            "every photo collected from the photographers' folders",
            interval=1,
        )
        assert (stack.inbox / "no-owner.jpg").is_file()
        wait_for(lambda: bool(prom.query("sum(dp3_archiver_collected_total) >= 18")), 30, "collected counted")
        rules = prom.rules()
        alerting = [rule for rule in rules if rule["type"] == "alerting"]
        shipped = (PROMETHEUS_DIR / "rules" / "dp3.rules.yml").read_text().count("- alert: ")
        assert len(alerting) == shipped
        wait_for(lambda: all(rule.get("health") == "ok" for rule in prom.rules()), 20, "every rule evaluated")
        for rule in alerting:
            prom.query(rule["query"])  # raises on an invalid expression
        critical = CRITICAL_WHEN_HEALTHY & set(firing_names(prom))
        assert not critical, f"critical alerts fire on a healthy run: {critical}\n{stack.tail_logs()}"

        # 2. Fixity: one corrupted copy in store A; the periodic audit finds (and repairs) it.
        store_a, store_b = stack.stores
        victim = next(
            p
            for p in sorted(store_a.glob("*/*"))
            if p.suffix.lower() == ".jpg" and not p.stem.endswith(("_THUMBNAIL", "_WEB"))
        )
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        wait_for(lambda: "DP3FixityFailure" in firing_names(prom), 60, "DP3FixityFailure firing", interval=0.5)
        assert {labels["store"] for labels in firing_names(prom)["DP3FixityFailure"]} == {str(store_a)}

        # 3. Store B "unmounted" (marker gone): its photos wait in the inbox and the store alert fires for B.
        (store_b / STORE_MARKER).unlink()
        held = stack.inbox / OWNERS[0] / "held-back.jpg"
        shutil.copyfile(corpus / "jpg" / "gps" / sorted(os.listdir(corpus / "jpg" / "gps"))[0], held)
        wait_for(lambda: "DP3StoreUnwritable" in firing_names(prom), 60, "DP3StoreUnwritable firing", interval=0.5)
        stores_alerted = {(labels["store"], labels["kind"]) for labels in firing_names(prom)["DP3StoreUnwritable"]}
        assert stores_alerted == {(str(store_b), "down")}
        store_rule = next(rule for rule in alerting if rule["name"] == "DP3StoreUnwritable")
        assert {s["metric"]["store"] for s in prom.query(store_rule["query"])} == {str(store_b)}
        assert held.is_file(), "a photo was collected while a store could not hold its copy"
        # The held-back photo is retried, and every retry is counted against store B.
        wait_for(
            # ...and with three samples in the window, so the range query's last step (up to a
            # second earlier than this instant query) already has the two that rate() needs.
            lambda: (
                bool(prom.query(f"sum(rate(dp3_archiver_store_errors_total[{RATE_INTERVAL}])) > 0"))
                and bool(prom.query(f"min(count_over_time(dp3_archiver_store_errors_total[{RATE_INTERVAL}])) >= 3"))
            ),
            30,
            "store errors counted at every retry",
            interval=0.5,
        )

        # 4. Every panel query returns data over the run; every metric a panel or an alert names is exported.
        end = time.time()
        exported = prom.metric_names()
        missing: list[str] = []
        results: dict[str, list[dict[str, Any]]] = {}
        for uid, title, expr in dashboard_targets():
            result = prom.query_range(grafana_to_promql(expr), max(started - 5, first_scrape), end, 1)
            results[expr] = result
            if not has_finite_value(result):
                missing.append(f"{uid} / {title}: no data: {expr}")
            unknown = {name for name in metric_families(expr) if name not in exported}
            if unknown:
                missing.append(f"{uid} / {title}: not exported: {sorted(unknown)}")
        # The numbers are the run's, not just "some data": the overview's failures and the scanner's counts.
        failures = "Failures in the last hour, by kind"
        render_failures = values_by(prom, panel_query("dp3-overview", failures, "render {{kind}}"), "kind")
        assert render_failures.get("corrupt_image", 0) >= 1, render_failures  # bogus.jpg at least
        scanner_failures = values_by(prom, panel_query("dp3-overview", failures, "scanner {{kind}}"), "kind")
        assert scanner_failures == {"no_owner": 1.0}
        store_errors = values_by(prom, panel_query("dp3-overview", failures, "store {{store}} {{kind}}"), "store")
        assert set(store_errors) == {str(store_b)}
        detected = prom.query(panel_query("dp3-scanner", "Photos detected in the last hour", "detected"))
        assert float(detected[0]["value"][1]) == 19  # 16 photos, corrupted.jpg, bogus.jpg, held-back.jpg

        # The docs' figure: the overview's queries from this run (drawn before judging, to help diagnose),
        # each panel with a line to draw, not just one value (a lone step draws no line segment).
        overview = json.loads((DASHBOARDS / "dp3-overview.json").read_text())
        figure = load_plotter().plot_dashboard(overview, results, tmp_path / "overview.png")
        assert figure.stat().st_size > 20_000
        for panel in overview["panels"]:
            if panel.get("targets") and not any(has_line(results[t["expr"]]) for t in panel["targets"]):
                missing.append(f"dp3-overview / {panel['title']}: no two consecutive steps with data (figure)")
        for rule in alerting:
            unknown = {name for name in metric_families(rule["query"]) if name not in exported}
            if unknown:
                missing.append(f"alert {rule['name']}: not exported: {sorted(unknown)}")
        assert not missing, f"panels without data, or metrics nobody exports (figure: {figure}):\n" + "\n".join(missing)
        # Only a run that passed replaces the docs' figure.
        keep = os.environ.get("DP3_OPS_PLOT")
        if keep:
            shutil.copyfile(figure, keep)
    finally:
        prom.stop()
        stack.stop()
