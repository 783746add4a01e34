"""A second archiver and a second portal beside a running stack share the work, never doubling it."""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.rabbit import REPO_ROOT, wait_for
from tests.stack import Stack, all_photos, export_journal

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def metric_total(url: str, name: str) -> float:
    text = httpx.get(url, timeout=5).text
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE))


def start_another(stack: Stack, service: str) -> tuple[subprocess.Popen[str], str]:
    """`make add SERVICE=...` as documented; returns the process and its /metrics URL."""
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "deploy" / "local" / "stack.py"), "add", service],
        env=stack.env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    port = re.search(r"(?:port |127\.0\.0\.1:)(\d+)", first)
    assert port, first
    url = f"http://127.0.0.1:{port.group(1)}/metrics"
    wait_for(lambda: _up(url), 60, f"the second {service}")
    return process, url


def _up(url: str) -> bool:
    try:
        return httpx.get(url.replace("/metrics", "/healthz"), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_second_archiver_and_portal_share_the_work(stack: Stack, corpus: Path) -> None:
    archiver2, archiver2_metrics = start_another(stack, "archiver")
    portal2, portal2_metrics = start_another(stack, "portal")
    try:
        photos = sorted((corpus / "jpg").glob("*.jpg"))[:12] + sorted((corpus / "jpg" / "exif-org").glob("*.jpg"))
        photos = [p for p in photos if p.name != "corrupted.jpg"][:40]
        for index, source in enumerate(photos):
            folder = stack.inbox / ("JAEGER-NICHOLAS", "REEDER-PHILIP")[index % 2]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / source.name)

        def all_collected() -> bool:
            return sum(1 for p in all_photos(stack) if p["status"] == "Collected") == len(photos)

        wait_for(all_collected, 300, "every photo collected", interval=1)

        archiver1_metrics = f"http://127.0.0.1:{stack.metrics_ports['archiver']}/metrics"
        portal1_metrics = f"http://127.0.0.1:{stack.portal_port}/metrics"
        first, second = (metric_total(u, "dp3_archiver_archived_total") for u in (archiver1_metrics, archiver2_metrics))
        assert first > 0 and second > 0, (first, second)
        assert first + second == len(photos)  # shared, not doubled
        recorded1, recorded2 = (
            metric_total(u, "dp3_portal_events_recorded_total") for u in (portal1_metrics, portal2_metrics)
        )
        assert recorded1 > 0 and recorded2 > 0, (recorded1, recorded2)

        journal = export_journal(stack)
        per_photo = collections.Counter((e["id"], e["status"]) for e in journal)
        assert set(per_photo.values()) == {1}, [k for k, v in per_photo.items() if v > 1]
        assert len(per_photo) == 4 * len(photos)
        for store in stack.stores:
            originals = [
                p
                for p in store.rglob("*")
                if p.is_file() and p.suffix.lower() == ".jpg" and not p.stem.endswith(("_THUMBNAIL", "_WEB"))
            ]
            assert len(originals) == len(photos)
    finally:
        for process in (archiver2, portal2):
            process.send_signal(signal.SIGTERM)
        for process in (archiver2, portal2):
            assert process.wait(30) == 0
