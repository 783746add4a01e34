"""DP3's Grafana dashboards as code, built with Grafana's own grafana-foundation-sdk.

Run from the repository root:

    .venv/bin/python deploy/grafana/build_dashboards.py           # rewrite deploy/grafana/dashboards/*.json
    .venv/bin/python deploy/grafana/build_dashboards.py --check   # exit 1 if the committed JSON is stale

The JSON under ``deploy/grafana/dashboards/`` is generated: edit this file, run
it, commit both. Grafana provisions the JSON (``provisioning/``); a unit test
fails when it differs from what this script produces, and the integration test
evaluates every query below against a Prometheus scraping a real run, so a
panel that would show "No data" is caught here, not by an operator at 3 a.m.

Conventions: every panel has a title, a unit and a description; queries use
``$__rate_interval`` for rates (Grafana picks it from the scrape interval);
there are no template variables, so a query means the same everywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    BigValueJustifyMode,
    BigValueTextMode,
    LegendDisplayMode,
    LegendPlacement,
)
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel
from grafana_foundation_sdk.models.dashboard import DashboardLinkType, DataSourceRef

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
# The provisioned datasource (provisioning/datasources/prometheus.yml) has this fixed uid.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="dp3-prometheus")
DP3_QUEUES = "dispatcher|archiver|archiver.collect|scanner.archived|portal.journal|dp3.dead"
SERVICE_JOBS = "scanner|dispatcher|archiver|portal|rabbitmq"
# The portal's per-route HTTP metrics (issue 7, item 8).
PORTAL_REQUESTS = "dp3_portal_requests_total"
PORTAL_REQUEST_SECONDS = "dp3_portal_request_seconds"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


def per_minute(expr: str) -> str:
    return f"{expr} * 60"


def in_last_hour(counter: str, by: str = "") -> str:
    """How much a labelled counter grew during the last hour, counting series born inside the hour from zero.

    ``increase()`` needs two samples, so it cannot see the increment that
    created a labelled series (the first ``corrupt_image`` failure, the first
    photo of a new photographer): it would show 0 for one failure. The
    difference with an hour ago does, and where there was no series an hour
    ago (or the counter was reset by a restart) the current value is the count.
    """
    group = f"sum by ({by})" if by else "sum"
    return f"{group} (({counter} - {counter} offset 1h) >= 0 or {counter})"


def quantiles(histogram: str, selector: str = "", by: str = "") -> list[Query]:
    """p50, p90 and p99 of a Prometheus histogram, summed over replicas."""
    group = f"le, {by}" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return [
        Query(
            f"histogram_quantile({q}, sum by ({group}) (rate({histogram}_bucket{selector}[$__rate_interval])))",
            f"{prefix}p{round(q * 100)}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def _targets(queries: Sequence[Query]) -> list[prometheus.Dataquery]:
    return [
        prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(chr(ord("A") + index))
        for index, query in enumerate(queries)
    ]


def graph(title: str, unit: str, description: str, queries: Sequence[Query], width: int = 12) -> timeseries.Panel:
    """A time-series panel: the default view for anything that changes over time."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(width)
        .height(8)
        .min(0)
        .fill_opacity(10)
        .legend(
            VizLegendOptions().show_legend(True).display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM)
        )
    )
    for target in _targets(queries):
        panel = panel.with_target(target)
    return panel


def single(title: str, unit: str, description: str, queries: Sequence[Query], width: int = 6) -> stat.Panel:
    """A stat panel: one current number that an operator reads at a glance."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(width)
        .height(4)
        # The last value, with its recent history drawn behind it.
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(BigValueGraphMode.AREA)
        .color_mode(BigValueColorMode.VALUE)
        .justify_mode(BigValueJustifyMode.AUTO)
        .text_mode(BigValueTextMode.AUTO)
    )
    for target in _targets(queries):
        panel = panel.with_target(target)
    return panel


def _dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["dp3"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .link(
            dashboard.DashboardLink("DP3 dashboards")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(["dp3"])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
    )


# --- shared panels --------------------------------------------------------------


def queue_backlog(queues: str, title: str) -> timeseries.Panel:
    return graph(
        title,
        "short",
        "Messages in each RabbitMQ queue (ready + unacknowledged). A queue that keeps growing is a stage that "
        "does not keep up (alert DP3QueueBacklogGrowing).",
        [Query(f'sum by (queue) (rabbitmq_queue_messages{{queue=~"{queues}"}})', "{{queue}}")],
    )


def queue_rates(queues: str, title: str) -> timeseries.Panel:
    return graph(
        title,
        "opm",
        "Messages published into and acknowledged from each queue, per minute, as RabbitMQ counts them.",
        [
            Query(
                per_minute(
                    f'sum by (queue) (rate(rabbitmq_queue_messages_published_total{{queue=~"{queues}"}}'
                    "[$__rate_interval]))"
                ),
                "published {{queue}}",
            ),
            Query(
                per_minute(
                    f'sum by (queue) (rate(rabbitmq_channel_messages_acked_total{{queue=~"{queues}"}}'
                    "[$__rate_interval]))"
                ),
                "acked {{queue}}",
            ),
        ],
    )


def settled(queues: str) -> timeseries.Panel:
    return graph(
        "Messages settled, by outcome",
        "opm",
        "How the service's consumers settled messages, per minute: acked (done), retried (transient trouble, "
        "retried with backoff) or dead_lettered (a bug: see the dp3.dead queue).",
        [
            Query(
                per_minute(
                    f'sum by (queue, outcome) (rate(dp3_broker_messages_total{{queue=~"{queues}"}}[$__rate_interval]))'
                ),
                "{{queue}} {{outcome}}",
            )
        ],
    )


def published(job: str) -> timeseries.Panel:
    return graph(
        "Events published, by routing key",
        "opm",
        "Journal events this service published and had confirmed by the broker, per minute.",
        [
            Query(
                per_minute(f'sum by (routing_key) (rate(dp3_broker_published_total{{job="{job}"}}[$__rate_interval]))'),
                "{{routing_key}}",
            )
        ],
    )


def service_up(job: str) -> stat.Panel:
    return single(
        "Instances up",
        "short",
        "Replicas of this service that answer Prometheus' scrape (alert DP3ServiceDown when one does not).",
        [Query(f'sum(up{{job="{job}"}})', "up")],
    )


def drop_to_collected() -> timeseries.Panel:
    return graph(
        "Drop-to-collected latency",
        "s",
        "From the moment a photo's upload finished (its file stopped changing) to its original being collected "
        "from the inbox: archived in every store and verified.",
        quantiles("dp3_archiver_drop_to_collected_seconds"),
    )


def store_free() -> timeseries.Panel:
    return graph(
        "Store free space",
        "bytes",
        "Free bytes in each archive store, as the archiver last saw them (alert DP3StoreLowSpace below 10 %).",
        [Query("max by (store) (dp3_archiver_store_free_bytes)", "{{store}}")],
    )


def workers() -> timeseries.Panel:
    return graph(
        "Workers connected and blocked",
        "short",
        "Work Queue workers connected to the dispatcher's manager, hosts blocked for a broken environment, "
        "and render tasks waiting for or running on a worker.",
        [
            Query("sum(dp3_dispatcher_workers_connected)", "workers connected"),
            Query("sum(dp3_dispatcher_workers_blocked)", "hosts blocked"),
            Query("sum(dp3_dispatcher_tasks_waiting)", "tasks waiting"),
            Query("sum(dp3_dispatcher_tasks_running)", "tasks running"),
        ],
    )


# --- dashboards -----------------------------------------------------------------


def overview() -> DashboardModel:
    return (
        _dashboard(
            "dp3-overview",
            "DP3 pipeline overview",
            "Photos flowing from the synced inbox to the archive stores: throughput, backlog, latency, failures, "
            "workers, inbox fill and store space.",
        )
        .with_row(dashboard.Row("Health"))
        .with_panel(
            single(
                "Services up",
                "short",
                "DP3 services and RabbitMQ answering Prometheus' scrape, out of those configured.",
                [Query(f'sum(up{{job=~"{SERVICE_JOBS}"}})', "up")],
            )
        )
        .with_panel(
            single(
                "Alerts firing",
                "short",
                "DP3 alerts firing now (Prometheus /alerts lists them, each with its runbook line).",
                [Query('count(ALERTS{alertstate="firing"}) or vector(0)', "firing")],
            )
        )
        .with_panel(
            single(
                "Inbox fill",
                "percentunit",
                "Bytes in the synced inbox against its quota (the dp3:inbox_quota_bytes rule; alert at 80 %).",
                [Query("max(dp3_scanner_inbox_bytes) / scalar(dp3:inbox_quota_bytes)", "fill")],
            )
        )
        .with_panel(
            single(
                "Photos collected in the last hour",
                "short",
                "Originals archived in every store, verified and removed from the inbox during the last hour.",
                [Query("sum(increase(dp3_archiver_collected_total[1h]))", "collected")],
            )
        )
        .with_row(dashboard.Row("Flow"))
        .with_panel(
            graph(
                "Photos per minute, by stage",
                "opm",
                "Journal events published per minute: photo.detected (scanner), photo.processed and photo.failed "
                "(dispatcher), photo.archived and photo.collected (archiver), photo.duplicate (scanner).",
                [
                    Query(
                        per_minute("sum by (routing_key) (rate(dp3_broker_published_total[$__rate_interval]))"),
                        "{{routing_key}}",
                    )
                ],
            )
        )
        .with_panel(queue_backlog(DP3_QUEUES, "Backlog per queue"))
        .with_panel(drop_to_collected())
        .with_panel(queue_rates(DP3_QUEUES, "Queue publish and ack rates"))
        .with_row(dashboard.Row("Failures"))
        .with_panel(
            graph(
                "Failures in the last hour, by kind",
                "short",
                "Render tasks that failed (by error kind), files the scanner reported as Failed (e.g. no_owner), "
                "and store errors that held photos back (by store and kind), over the last hour.",
                [
                    Query(in_last_hour("dp3_dispatcher_tasks_failed_total", "kind"), "render {{kind}}"),
                    Query(in_last_hour("dp3_scanner_failed_total", "kind"), "scanner {{kind}}"),
                    Query(
                        in_last_hour("dp3_archiver_store_errors_total", "store, kind"),
                        "store {{store}} {{kind}}",
                    ),
                ],
            )
        )
        .with_panel(workers())
        .with_row(dashboard.Row("Capacity"))
        .with_panel(
            graph(
                "Inbox fill against quota",
                "bytes",
                "Bytes in the synced inbox, the account's quota and the 80 % alert line. Photos leave the inbox "
                "only once archived, so a down store makes this climb.",
                [
                    Query("max(dp3_scanner_inbox_bytes)", "inbox"),
                    Query("dp3:inbox_quota_bytes", "quota"),
                    Query("0.8 * dp3:inbox_quota_bytes", "alert at 80 %"),
                ],
            )
        )
        .with_panel(store_free())
        .build()
    )


def scanner() -> DashboardModel:
    return (
        _dashboard("dp3-scanner", "DP3 scanner", "The scanner: synced inbox -> Detected events.")
        .with_panel(service_up("scanner"))
        .with_panel(
            single(
                "Files in the inbox",
                "short",
                "Regular files in the synced inbox at the last rescan.",
                [Query("max(dp3_scanner_inbox_files)", "files")],
            )
        )
        .with_panel(
            single(
                "Bytes in the inbox",
                "bytes",
                "Bytes of the files in the synced inbox at the last rescan.",
                [Query("max(dp3_scanner_inbox_bytes)", "bytes")],
            )
        )
        .with_panel(
            single(
                "Photos detected in the last hour",
                "short",
                "Photos emitted as Detected for the first time during the last hour.",
                [Query(in_last_hour("dp3_scanner_detected_total"), "detected")],
            )
        )
        .with_panel(
            graph(
                "Photos detected per minute, by photographer",
                "opm",
                "First Detected events per minute, by owner (the photographer's folder).",
                [
                    Query(
                        per_minute("sum by (owner) (rate(dp3_scanner_detected_total[$__rate_interval]))"),
                        "{{owner}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Inbox entries ignored or failed in the last hour",
                "short",
                "Files the scanner ignored (by reason: not an image, sync-client temporary, symlink...) and "
                "files it reported as Failed (by kind: no_owner...), over the last hour.",
                [
                    Query(in_last_hour("dp3_scanner_ignored_total", "reason"), "ignored {{reason}}"),
                    Query(in_last_hour("dp3_scanner_failed_total", "kind"), "failed {{kind}}"),
                ],
            )
        )
        .with_panel(
            graph(
                "Full rescan duration",
                "s",
                "Time of one full rescan of the inbox (the safety net behind filesystem events).",
                quantiles("dp3_scanner_scan_seconds"),
            )
        )
        .with_panel(
            graph(
                "Detect latency",
                "s",
                "From the moment a file had been stable for DP3_STABLE_SECONDS to its Detected event being confirmed.",
                quantiles("dp3_scanner_detect_latency_seconds"),
            )
        )
        .with_panel(published("scanner"))
        .with_panel(settled("scanner.archived"))
        .build()
    )


def dispatcher() -> DashboardModel:
    return (
        _dashboard("dp3-dispatcher", "DP3 dispatcher", "The dispatcher: Detected -> render on Work Queue -> verify.")
        .with_panel(service_up("dispatcher"))
        .with_panel(
            single(
                "Workers connected",
                "short",
                "Work Queue workers connected to the manager now.",
                [Query("sum(dp3_dispatcher_workers_connected)", "workers")],
            )
        )
        .with_panel(
            single(
                "Tasks waiting",
                "short",
                "Render tasks waiting for a worker now (alert DP3NoWorkers if none is connected for 5 minutes).",
                [Query("sum(dp3_dispatcher_tasks_waiting)", "waiting")],
            )
        )
        .with_panel(
            single(
                "Tasks submitted in the last hour",
                "short",
                "Render tasks submitted to Work Queue during the last hour (retries included).",
                [Query("sum(increase(dp3_dispatcher_tasks_submitted_total[1h]))", "submitted")],
            )
        )
        .with_panel(
            graph(
                "Render tasks per minute",
                "opm",
                "Tasks submitted, and tasks that failed by error kind (bad image kinds fail the photo; "
                "worker_environment and verification failures are retried elsewhere).",
                [
                    Query(per_minute("sum(rate(dp3_dispatcher_tasks_submitted_total[$__rate_interval]))"), "submitted"),
                    Query(
                        per_minute("sum by (kind) (rate(dp3_dispatcher_tasks_failed_total[$__rate_interval]))"),
                        "failed {{kind}}",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Render task duration",
                "s",
                "From submission to the task's return, per render task (queueing on the manager included).",
                quantiles("dp3_dispatcher_task_seconds"),
            )
        )
        .with_panel(workers())
        .with_panel(queue_backlog("dispatcher", "Queue dispatcher: backlog"))
        .with_panel(published("dispatcher"))
        .with_panel(settled("dispatcher"))
        .build()
    )


def archiver() -> DashboardModel:
    return (
        _dashboard(
            "dp3-archiver",
            "DP3 archiver",
            "The archiver: verified copies in every store, then collection from the inbox.",
        )
        .with_panel(service_up("archiver"))
        .with_panel(
            single(
                "Photos archived in the last hour",
                "short",
                "Photos with a verified copy in every store during the last hour.",
                [Query("sum(increase(dp3_archiver_archived_total[1h]))", "archived")],
            )
        )
        .with_panel(
            single(
                "Photos collected in the last hour",
                "short",
                "Inbox originals removed during the last hour, each after every store held a verified copy.",
                [Query("sum(increase(dp3_archiver_collected_total[1h]))", "collected")],
            )
        )
        .with_panel(
            single(
                "Fixity failures found",
                "short",
                "Copies the fixity audit found missing or corrupted (and repaired from a good copy) since the "
                "archivers started; 0 when the audit found nothing (alert DP3FixityFailure).",
                [Query("sum(dp3_archiver_fixity_failures_total) or vector(0)", "failures")],
            )
        )
        .with_panel(
            graph(
                "Photos archived and collected per minute",
                "opm",
                "Archived: verified in every store. Collected: original removed from the inbox.",
                [
                    Query(per_minute("sum(rate(dp3_archiver_archived_total[$__rate_interval]))"), "archived"),
                    Query(per_minute("sum(rate(dp3_archiver_collected_total[$__rate_interval]))"), "collected"),
                ],
            )
        )
        .with_panel(drop_to_collected())
        .with_panel(
            graph(
                "Bytes written per store",
                "Bps",
                "Verified bytes written into each store per second (originals, artifacts and sidecars).",
                [Query("sum by (store) (rate(dp3_archiver_bytes_total[$__rate_interval]))", "{{store}}")],
            )
        )
        .with_panel(
            graph(
                "Copy and verify time per file",
                "s",
                "Time to write one file into one store (temp file, fsync, rename) and read it back for its sha256.",
                quantiles("dp3_archiver_copy_seconds"),
            )
        )
        .with_panel(store_free())
        .with_panel(
            graph(
                "Store errors per minute, by store and kind",
                "opm",
                "Store trouble that held photos back: down (no marker: unmounted), read_only, full, io, verify. "
                "While any shows, nothing is collected (alert DP3StoreUnwritable).",
                [
                    Query(
                        per_minute("sum by (store, kind) (rate(dp3_archiver_store_errors_total[$__rate_interval]))"),
                        "{{store}} {{kind}}",
                    )
                ],
            )
        )
        .with_panel(queue_backlog("archiver|archiver.collect", "Queues archiver and archiver.collect: backlog"))
        .with_panel(settled("archiver|archiver.collect"))
        .build()
    )


def portal() -> DashboardModel:
    return (
        _dashboard("dp3-portal", "DP3 portal", "The portal: journal recorder, catalog, gallery and API.")
        .with_panel(service_up("portal"))
        .with_panel(
            single(
                "Photos in the catalog",
                "short",
                "Photos the catalog holds, all statuses.",
                [Query("sum(max by (status) (dp3_portal_photos))", "photos")],
            )
        )
        .with_panel(
            graph(
                "Journal events recorded per minute, by status",
                "opm",
                "Events stored in the journal for the first time, per minute (redelivered copies are not counted).",
                [
                    Query(
                        per_minute("sum by (status) (rate(dp3_portal_events_recorded_total[$__rate_interval]))"),
                        "{{status}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Photos by status",
                "short",
                "Photos in the catalog by their current status.",
                [Query("max by (status) (dp3_portal_photos)", "{{status}}")],
            )
        )
        .with_panel(
            graph(
                "HTTP requests per second, by route",
                "reqps",
                "Requests the portal answered, by route template and HTTP status code.",
                [
                    Query(
                        f"sum by (route, code) (rate({PORTAL_REQUESTS}[$__rate_interval]))",
                        "{{route}} {{code}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "HTTP request latency p95, by route",
                "s",
                "95th percentile of the server time per route (gallery target: 50 ms; status page: 100 ms).",
                [
                    Query(
                        "histogram_quantile(0.95, sum by (le, route) "
                        f"(rate({PORTAL_REQUEST_SECONDS}_bucket[$__rate_interval])))",
                        "{{route}}",
                    )
                ],
            )
        )
        .with_panel(queue_backlog("portal.journal", "Queue portal.journal: backlog"))
        .with_panel(settled("portal.journal"))
        .build()
    )


DASHBOARDS = {
    "dp3-overview": overview,
    "dp3-scanner": scanner,
    "dp3-dispatcher": dispatcher,
    "dp3-archiver": archiver,
    "dp3-portal": portal,
}


def number_panels(model: DashboardModel) -> DashboardModel:
    """Give every panel and row a unique id in layout order (the builders leave them unset or 0)."""
    for index, panel in enumerate(model.panels or [], start=1):
        panel.id_val = index
    return model


def render(model: DashboardModel) -> str:
    """Stable JSON text: sorted keys, so a regenerated file differs only where the code changed."""
    model = number_panels(model)
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{uid}.json": render(build()) for uid, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed JSON differs")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    files = generated()
    if args.check:
        stale = [
            name
            for name, text in files.items()
            if not (args.out / name).is_file() or (args.out / name).read_text() != text
        ]
        extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in files)
        for name in stale:
            print(f"stale: {args.out / name} (run deploy/grafana/build_dashboards.py)", file=sys.stderr)
        for name in extra:
            print(f"not generated: {args.out / name}", file=sys.stderr)
        return 1 if stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text)
    print(f"wrote {len(files)} dashboards to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
