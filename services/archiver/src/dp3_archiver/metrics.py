"""The archiver's Prometheus metrics, declared once (a metric name is registered once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from dp3 import metric_names as names

ARCHIVED = Counter(
    "dp3_archiver_archived_total", "Photos archived (every store verified, Archived journaled); replays not counted"
)
COLLECTED = Counter("dp3_archiver_collected_total", "Inbox originals deleted after every store verified")
BYTES = Counter("dp3_archiver_bytes_total", "Bytes written into a store (verified copies)", ["store"])
STORE_ERRORS = Counter(
    names.ARCHIVER_STORE_ERRORS,
    "Store trouble that held a photo back (down, read_only, full, io, verify)",
    [names.STORE_LABEL, names.KIND_LABEL],
)
STORE_FREE = Gauge("dp3_archiver_store_free_bytes", "Free bytes in a store, as last seen", ["store"])
COPY_SECONDS = Histogram(
    "dp3_archiver_copy_seconds",
    "Time to write and read back one file into one store",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
FIXITY_FAILURES = Counter(
    "dp3_archiver_fixity_failures_total", "Copies found missing or corrupted by the fixity audit", ["store"]
)
STORE_SIZE = Gauge("dp3_archiver_store_size_bytes", "Total size of a store's file system (for percent free)", ["store"])
STORE_UP = Gauge(
    names.ARCHIVER_STORE_UP,
    "1 while a store takes and proves copies; 0 while it is down (no marker), read-only, full or failing",
    [names.STORE_LABEL],
)
STORE_PROBLEM_SINCE = Gauge(
    names.ARCHIVER_STORE_PROBLEM_SINCE,
    "Unix time the store's current or last problem began (0: none seen since start)",
    [names.STORE_LABEL],
)
STORE_PROBLEM_UNTIL = Gauge(
    names.ARCHIVER_STORE_PROBLEM_UNTIL,
    "Unix time the store's last problem ended, i.e. a copy succeeded again (0: still going on, or none seen)",
    [names.STORE_LABEL],
)
DROP_TO_COLLECTED = Histogram(
    "dp3_archiver_drop_to_collected_seconds",
    "From the moment a photo's upload was seen finished to its original being collected",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
)
STORES_DISTINCT = Gauge(
    "dp3_archiver_stores_distinct",
    "1 while the configured stores are distinct places; 0 while two are one (nothing is archived or collected)",
)
STORE_ALIASED = Gauge(
    "dp3_archiver_store_aliased",
    "1 while this store is one place with another configured store (it takes nothing), else 0",
    ["store"],
)
STORE_ALIAS = Gauge(
    names.ARCHIVER_STORE_ALIAS,
    "1 for each pair of configured stores that are one place, while it lasts (reason: same_folder, nested, ...)",
    [names.STORE_LABEL, names.OTHER_LABEL, names.REASON_LABEL],
)
PHOTO_FAULTS = Counter(
    "dp3_archiver_photo_faults_total",
    "Photos not archived for a fault of their own, never a store's (bad_name: a store refused the name; "
    "foreign_artifacts: staging held a render of other bytes, rendered again on re-drive)",
    ["reason"],
)
