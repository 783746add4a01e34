"""The scanner's Prometheus metrics, named as the operators' dashboards expect."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DETECTED = Counter("dp3_scanner_detected_total", "Photos emitted as Detected (first emission)", ["owner"])
IGNORED = Counter("dp3_scanner_ignored_total", "Inbox entries ignored (each counted once)", ["reason"])
INBOX_FILES = Gauge("dp3_scanner_inbox_files", "Regular files in the inbox at the last rescan")
INBOX_BYTES = Gauge("dp3_scanner_inbox_bytes", "Bytes of the regular files in the inbox at the last rescan")
SCAN_SECONDS = Histogram(
    "dp3_scanner_scan_seconds",
    "Duration of a full rescan",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0),
)
DETECT_LATENCY = Histogram(
    "dp3_scanner_detect_latency_seconds",
    "From the moment a file had been stable for DP3_STABLE_SECONDS to its event being confirmed",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
)
DUPLICATES = Counter("dp3_scanner_duplicates_total", "Re-uploads of archived photos emitted as Duplicate", ["owner"])
FAILED = Counter("dp3_scanner_failed_total", "Files reported as Failed by the scanner", ["kind"])
REDRIVEN = Counter("dp3_scanner_redriven_total", "Events re-emitted for files still in the inbox", ["status"])
PUBLISH_ERRORS = Counter("dp3_scanner_publish_errors_total", "Events that could not be published (retried later)")
HELD_INCOMPLETE = Counter(
    "dp3_scanner_held_incomplete_total",
    "Uploads that looked cut off (a JPEG/PNG without its end marker) and were given DP3_INCOMPLETE_SECONDS more",
)
FILE_ERRORS = Counter(
    "dp3_scanner_file_errors_total",
    "Inbox files whose handling raised (the loop went on; the file is tried again later), by exception type",
    ["reason"],
)
