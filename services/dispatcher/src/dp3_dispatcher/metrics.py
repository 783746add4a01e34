"""The dispatcher's Prometheus metrics, made by a factory (dp3.metrics) rather than at import."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dp3 import metric_names
from dp3.metrics import per_registry


class DispatcherMetrics:
    """Made once per registry by the factory below; the process's default one is served on /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.tasks_submitted = Counter(
            "dp3_dispatcher_tasks_submitted_total", "Render tasks submitted to Work Queue", registry=registry
        )
        self.tasks_failed = Counter(
            "dp3_dispatcher_tasks_failed_total",
            "Render tasks that did not yield verified artifacts, by error kind",
            ["kind"],
            registry=registry,
        )
        self.task_seconds = Histogram(
            "dp3_dispatcher_task_seconds",
            "Time from submission to the task's return, per render task",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=registry,
        )
        self.workers_connected = Gauge(
            metric_names.DISPATCHER_WORKERS_CONNECTED, "Work Queue workers connected to the manager", registry=registry
        )
        self.workers_blocked = Gauge(
            "dp3_dispatcher_workers_blocked", "Worker hosts blocked for a broken environment", registry=registry
        )
        self.tasks_waiting = Gauge(
            "dp3_dispatcher_tasks_waiting", "Render tasks waiting for a worker", registry=registry
        )
        self.tasks_running = Gauge("dp3_dispatcher_tasks_running", "Render tasks running on workers", registry=registry)
        self.fast_path = Counter(
            "dp3_dispatcher_fast_path_total",
            "Detected photos whose verified artifacts were already staged",
            registry=registry,
        )
        self.photos_per_task = Histogram(
            "dp3_dispatcher_photos_per_task",
            "Photos carried by one render task (1 when a worker is free, up to DP3_RENDER_BATCH under a backlog)",
            buckets=(1, 2, 4, 8, 16, 32),
            registry=registry,
        )
        self.staging_full = Gauge(
            "dp3_dispatcher_staging_full",
            "1 while the staging file system is too full for render results (renders held)",
            registry=registry,
        )
        self.staging_full_total = Counter(
            "dp3_dispatcher_staging_full_holds_total",
            "Times renders were held because staging was full (no attempt charged)",
            registry=registry,
        )


dispatcher_metrics = per_registry(DispatcherMetrics)
"""The dispatcher's metrics in a registry (default: the process's, served on /metrics)."""
