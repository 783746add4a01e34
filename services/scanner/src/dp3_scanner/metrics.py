"""The scanner's Prometheus metrics, named as the operators' dashboards expect; made by a factory (dp3.metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dp3.metrics import per_registry


class ScannerMetrics:
    """Made once per registry by the factory below; the process's default one is served on /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.detected = Counter(
            "dp3_scanner_detected_total", "Photos emitted as Detected (first emission)", ["owner"], registry=registry
        )
        self.ignored = Counter(
            "dp3_scanner_ignored_total", "Inbox entries ignored (each counted once)", ["reason"], registry=registry
        )
        self.inbox_files = Gauge(
            "dp3_scanner_inbox_files", "Regular files in the inbox at the last rescan", registry=registry
        )
        self.inbox_bytes = Gauge(
            "dp3_scanner_inbox_bytes", "Bytes of the regular files in the inbox at the last rescan", registry=registry
        )
        self.scan_seconds = Histogram(
            "dp3_scanner_scan_seconds",
            "Duration of a full rescan",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.detect_latency = Histogram(
            "dp3_scanner_detect_latency_seconds",
            "From the moment a file had been stable for DP3_STABLE_SECONDS to its event being confirmed",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
            registry=registry,
        )
        self.duplicates = Counter(
            "dp3_scanner_duplicates_total",
            "Re-uploads of archived photos emitted as Duplicate",
            ["owner"],
            registry=registry,
        )
        self.failed = Counter(
            "dp3_scanner_failed_total", "Files reported as Failed by the scanner", ["kind"], registry=registry
        )
        self.redriven = Counter(
            "dp3_scanner_redriven_total",
            "Events re-emitted for files still in the inbox",
            ["status"],
            registry=registry,
        )
        self.publish_errors = Counter(
            "dp3_scanner_publish_errors_total", "Events that could not be published (retried later)", registry=registry
        )
        self.held_incomplete = Counter(
            "dp3_scanner_held_incomplete_total",
            "Uploads that looked cut off (a JPEG/PNG without its end marker) and were given"
            " DP3_INCOMPLETE_SECONDS more",
            registry=registry,
        )
        self.file_errors = Counter(
            "dp3_scanner_file_errors_total",
            "Inbox files whose handling raised (the loop went on; the file is tried again later), by exception type",
            ["reason"],
            registry=registry,
        )


scanner_metrics = per_registry(ScannerMetrics)
"""The scanner's metrics in a registry (default: the process's, served on /metrics)."""
