"""The dispatcher's Prometheus metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from dp3 import metric_names

TASKS_SUBMITTED = Counter("dp3_dispatcher_tasks_submitted_total", "Render tasks submitted to Work Queue")
TASKS_FAILED = Counter(
    "dp3_dispatcher_tasks_failed_total",
    "Render tasks that did not yield verified artifacts, by error kind",
    ["kind"],
)
TASK_SECONDS = Histogram(
    "dp3_dispatcher_task_seconds",
    "Time from submission to the task's return, per render task",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)
WORKERS_CONNECTED = Gauge(metric_names.DISPATCHER_WORKERS_CONNECTED, "Work Queue workers connected to the manager")
WORKERS_BLOCKED = Gauge("dp3_dispatcher_workers_blocked", "Worker hosts blocked for a broken environment")
TASKS_WAITING = Gauge("dp3_dispatcher_tasks_waiting", "Render tasks waiting for a worker")
TASKS_RUNNING = Gauge("dp3_dispatcher_tasks_running", "Render tasks running on workers")
FAST_PATH = Counter("dp3_dispatcher_fast_path_total", "Detected photos whose verified artifacts were already staged")
PHOTOS_PER_TASK = Histogram(
    "dp3_dispatcher_photos_per_task",
    "Photos carried by one render task (1 when a worker is free, up to DP3_RENDER_BATCH under a backlog)",
    buckets=(1, 2, 4, 8, 16, 32),
)
STAGING_FULL = Gauge(
    "dp3_dispatcher_staging_full", "1 while the staging file system is too full for render results (renders held)"
)
STAGING_FULL_TOTAL = Counter(
    "dp3_dispatcher_staging_full_holds_total", "Times renders were held because staging was full (no attempt charged)"
)
