"""Staged, verified artifacts are never rendered twice; a killed dispatcher loses nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dp3.events import Status
from tests.integration.dispatcher.harness import detected, publish, scrape
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration

SUBMITTED = "dp3_dispatcher_tasks_submitted_total"
FAST_PATH = "dp3_dispatcher_fast_path_total"


def test_a_replayed_detected_is_answered_from_staging(corpus: Path, amqp_url: str, outcomes, start_dispatcher) -> None:
    entry = detected(corpus / "jpg" / "gps" / "DSCN0010.jpg", corpus)
    dispatcher = start_dispatcher(DP3_WORKER_PROVIDER="local", DP3_WORKERS_MAX="1")
    metrics_port = dispatcher.metrics_port()
    publish(amqp_url, [entry])
    first = outcomes.wait_all({entry.id}, timeout=60)[entry.id]
    staged = dispatcher.home / "staging" / entry.id
    before = {p.name: p.stat().st_ino for p in staged.iterdir()}
    publish(amqp_url, [entry.next(Status.DETECTED, service="scanner", attempt=1)])
    wait_for(lambda: outcomes.count(entry.id) == 2, 30, "the second Processed")
    second = outcomes.events[entry.id][1]
    assert first.status is second.status is Status.PROCESSED
    assert second.meta == first.meta
    metrics = scrape(metrics_port)
    assert metrics[SUBMITTED] == 1 and metrics[FAST_PATH] == 1
    assert {p.name: p.stat().st_ino for p in staged.iterdir()} == before  # not rewritten


def test_tampered_staging_is_rendered_again(corpus: Path, amqp_url: str, outcomes, start_dispatcher) -> None:
    entry = detected(corpus / "jpg" / "gps" / "DSCN0012.jpg", corpus)
    dispatcher = start_dispatcher(DP3_WORKER_PROVIDER="local", DP3_WORKERS_MAX="1")
    metrics_port = dispatcher.metrics_port()
    publish(amqp_url, [entry])
    outcomes.wait_all({entry.id}, timeout=60)
    staged = dispatcher.home / "staging" / entry.id
    web = next(p for p in staged.iterdir() if p.name.endswith("_WEB.jpg"))
    web.write_bytes(web.read_bytes()[:200])  # a torn file
    publish(amqp_url, [entry])
    wait_for(lambda: outcomes.count(entry.id) == 2, 60, "the second Processed")
    assert outcomes.events[entry.id][1].status is Status.PROCESSED
    assert scrape(metrics_port)[SUBMITTED] == 2
    assert web.stat().st_size > 1000


def test_a_dispatcher_killed_mid_batch_loses_nothing_and_renders_nothing_twice(
    corpus: Path, amqp_url: str, outcomes, start_dispatcher
) -> None:
    photos = sorted((corpus / "jpg").glob("*.jpg")) + sorted((corpus / "jpg" / "hdr").glob("*.jpg"))
    photos += sorted((corpus / "jpg" / "mobile").glob("*.jpg"))
    entries = [detected(photo, corpus) for photo in photos]
    ids = {entry.id for entry in entries}
    # Small render batches: with the default (up to 16), the 27 photos could go as two batches
    # finishing together, all staged before the kill, and nothing would be tested.
    first = start_dispatcher(
        DP3_WORKER_PROVIDER="local", DP3_WORKERS_MAX="2", DP3_WORKER_IDLE_TIMEOUT="5", DP3_RENDER_BATCH="4"
    )
    first.metrics_port()
    publish(amqp_url, entries)
    wait_for(lambda: len(outcomes.final()) >= 3, 60, "the first renders")
    first.kill()  # SIGKILL, mid-batch; its factory follows by --parent-death
    staging = first.home / "staging"
    staged = {
        folder.name: {p.name: p.stat().st_ino for p in folder.iterdir()}
        for folder in staging.iterdir()
        if not folder.name.startswith(".")
    }
    assert len(staged) < len(entries), "the batch finished before the kill; nothing was tested"

    second = start_dispatcher(DP3_WORKER_PROVIDER="local", DP3_WORKERS_MAX="2", DP3_WORKER_IDLE_TIMEOUT="5")
    metrics_port = second.metrics_port()
    final = outcomes.wait_all(ids, timeout=120)
    assert all(final[i].status in (Status.PROCESSED, Status.FAILED) for i in ids)
    for photo_id, files in staged.items():
        # Verified before the crash: kept as it was, never rendered again.
        assert {p.name: p.stat().st_ino for p in (staging / photo_id).iterdir()} == files
        assert final[photo_id].status is Status.PROCESSED
    metrics = scrape(metrics_port)
    assert metrics[SUBMITTED] <= len(entries) - len(staged)
    assert [p for p in os.listdir(staging) if p.startswith(".dp3-tmp-")] == []
