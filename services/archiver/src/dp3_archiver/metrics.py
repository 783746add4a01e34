"""The archiver's Prometheus metrics, made by a factory (dp3.metrics), not registered at import."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dp3 import metric_names as names
from dp3.metrics import per_registry


class ArchiverMetrics:
    """Made once per registry by :func:`archiver_metrics`; the process's default one is served on /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.archived = Counter(
            "dp3_archiver_archived_total",
            "Photos archived (every store verified, Archived journaled); replays not counted",
            registry=registry,
        )
        self.collected = Counter(
            "dp3_archiver_collected_total", "Inbox originals deleted after every store verified", registry=registry
        )
        self.bytes = Counter(
            "dp3_archiver_bytes_total", "Bytes written into a store (verified copies)", ["store"], registry=registry
        )
        self.store_errors = Counter(
            names.ARCHIVER_STORE_ERRORS,
            "Store trouble that held a photo back (down, read_only, full, io, verify)",
            [names.STORE_LABEL, names.KIND_LABEL],
            registry=registry,
        )
        self.store_free = Gauge(
            "dp3_archiver_store_free_bytes", "Free bytes in a store, as last seen", ["store"], registry=registry
        )
        self.copy_seconds = Histogram(
            "dp3_archiver_copy_seconds",
            "Time to write and read back one file into one store",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.fixity_failures = Counter(
            "dp3_archiver_fixity_failures_total",
            "Copies found missing or corrupted by the fixity audit",
            ["store"],
            registry=registry,
        )
        self.store_size = Gauge(
            "dp3_archiver_store_size_bytes",
            "Total size of a store's file system (for percent free)",
            ["store"],
            registry=registry,
        )
        self.store_up = Gauge(
            names.ARCHIVER_STORE_UP,
            "1 while a store takes and proves copies; 0 while it is down (no marker), read-only, full or failing",
            [names.STORE_LABEL],
            registry=registry,
        )
        self.store_problem_since = Gauge(
            names.ARCHIVER_STORE_PROBLEM_SINCE,
            "Unix time the store's current or last problem began (0: none seen since start)",
            [names.STORE_LABEL],
            registry=registry,
        )
        self.store_problem_until = Gauge(
            names.ARCHIVER_STORE_PROBLEM_UNTIL,
            "Unix time the store's last problem ended, i.e. a copy succeeded again (0: still going on, or none seen)",
            [names.STORE_LABEL],
            registry=registry,
        )
        self.drop_to_collected = Histogram(
            "dp3_archiver_drop_to_collected_seconds",
            "From the moment a photo's upload was seen finished to its original being collected",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
            registry=registry,
        )
        self.stores_distinct = Gauge(
            "dp3_archiver_stores_distinct",
            "1 while the configured stores are distinct places; 0 while two are one (nothing is archived or collected)",
            registry=registry,
        )
        self.store_aliased = Gauge(
            "dp3_archiver_store_aliased",
            "1 while this store is one place with another configured store (it takes nothing), else 0",
            ["store"],
            registry=registry,
        )
        self.store_alias = Gauge(
            names.ARCHIVER_STORE_ALIAS,
            "1 for each pair of configured stores that are one place, while it lasts"
            " (reason: same_folder, nested, ...)",
            [names.STORE_LABEL, names.OTHER_LABEL, names.REASON_LABEL],
            registry=registry,
        )
        self.photo_faults = Counter(
            "dp3_archiver_photo_faults_total",
            "Photos not archived for a fault of their own, never a store's (bad_name: a store refused the name; "
            "foreign_artifacts: staging held a render of other bytes, rendered again on re-drive)",
            ["reason"],
            registry=registry,
        )


archiver_metrics = per_registry(ArchiverMetrics)
"""The archiver's metrics in a registry (default: the process's, served on /metrics)."""
