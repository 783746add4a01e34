"""The intake's Prometheus metrics, declared once (``dp3_intake_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CREATED = Counter("dp3_intake_uploads_created_total", "tus uploads created (resumed ones not counted again)")
COMPLETED = Counter(
    "dp3_intake_uploads_completed_total",
    "Uploads whose last byte arrived, by what became of them (placed, already_there, checksum_mismatch)",
    ["outcome"],
)
BYTES = Counter("dp3_intake_bytes_received_total", "Upload bytes made durable (fsynced) before being acknowledged")
REFUSED = Counter("dp3_intake_refused_total", "Requests refused, by the error code answered", ["error"])
PREVIEWS = Counter("dp3_intake_previews_total", "Preview uploads, by outcome (stored, same, archived)", ["outcome"])
EXPIRED = Counter("dp3_intake_expired_total", "Partial uploads deleted after DP3_INTAKE_EXPIRY_DAYS without a byte")
RECEIPTS = Counter("dp3_intake_receipts_total", "Receipts answered, by whether the photo is archived", ["archived"])
PARTIAL = Gauge("dp3_intake_partial_uploads", "Uploads on disk not yet complete, as of the last cleanup pass")

for outcome in ("placed", "already_there", "checksum_mismatch"):
    COMPLETED.labels(outcome)
for outcome in ("stored", "same", "archived"):
    PREVIEWS.labels(outcome)
for answer in ("true", "false"):
    RECEIPTS.labels(answer)
