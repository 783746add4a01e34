"""The broker's counters start every series at 0, so the first burst after a start shows in rate()."""

from __future__ import annotations

import subprocess
import sys


def test_a_new_publisher_exports_every_routing_key_at_zero() -> None:
    # A fresh interpreter: in this one other tests may already have published.
    script = (
        "from prometheus_client import generate_latest\n"
        "from dp3.broker import Publisher\n"
        "Publisher('amqp://guest:guest@127.0.0.1:1/%2F')\n"
        "print(generate_latest().decode())\n"
    )
    text = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    for status in ("detected", "processed", "archived", "collected", "failed", "duplicate"):
        assert f'dp3_broker_published_total{{routing_key="photo.{status}"}} 0.0' in text, status
