"""Broken and lost workers: every photo still ends Processed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dp3.events import Status
from tests.integration.dispatcher.harness import (
    detected,
    pillow_path,
    publish,
    python_without_pillow_path,
    scrape,
    slow_python_path,
)
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration

ENV_FAILURES = 'dp3_dispatcher_tasks_failed_total{kind="worker_environment"}'


def test_a_worker_without_pillow_is_blocked_and_its_task_runs_elsewhere(
    corpus: Path, amqp_url: str, outcomes, start_dispatcher, start_worker
) -> None:
    photos = sorted((corpus / "jpg" / "gps").glob("*.jpg"))[:6]
    entries = [detected(photo, corpus) for photo in photos]
    dispatcher = start_dispatcher(DP3_WORKER_PROVIDER="none")
    port, metrics_port = dispatcher.manager_port(), dispatcher.metrics_port()
    # First only the broken worker (another host, whose python3 has no Pillow).
    start_worker(port, "broken", env=python_without_pillow_path(), hostname="broken-node")
    wait_for(lambda: scrape(metrics_port)["dp3_dispatcher_workers_connected"] == 1, 30, "the broken worker")
    publish(amqp_url, entries)
    wait_for(lambda: scrape(metrics_port).get("dp3_dispatcher_workers_blocked") == 1, 30, "the host blocked")
    assert scrape(metrics_port)[ENV_FAILURES] >= 1
    assert outcomes.final() == {}  # nothing failed for the photos' sake
    # Then a good worker on this host: everything renders there.
    start_worker(port, "good", env=pillow_path())
    final = outcomes.wait_all({e.id for e in entries}, timeout=60)
    assert {entry.status for entry in final.values()} == {Status.PROCESSED}
    assert "broken-node" in dispatcher.log() and "blocked it" in dispatcher.log()
    metrics = scrape(metrics_port)
    assert metrics["dp3_dispatcher_workers_blocked"] == 1
    assert metrics[ENV_FAILURES] >= 1


def test_a_worker_killed_mid_task_loses_nothing(
    corpus: Path, tmp_path: Path, amqp_url: str, outcomes, start_dispatcher, start_worker
) -> None:
    entry = detected(corpus / "jpg" / "mobile" / "jolla.jpg", corpus)
    # The killed worker's task process lives on and keeps its socket open, as a
    # hung node would: the manager's keepalive finds the worker gone.
    dispatcher = start_dispatcher(
        DP3_WORKER_PROVIDER="none", DP3_WORKER_KEEPALIVE_INTERVAL="2", DP3_WORKER_KEEPALIVE_TIMEOUT="3"
    )
    port, metrics_port = dispatcher.manager_port(), dispatcher.metrics_port()
    slow = start_worker(port, "slow", env=slow_python_path(tmp_path / "slow-bin", 60))
    publish(amqp_url, [entry])
    wait_for(lambda: scrape(metrics_port)["dp3_dispatcher_tasks_running"] == 1, 30, "the task running")
    start_worker(port, "good", env=pillow_path())
    slow.kill()  # SIGKILL, mid-task
    final = outcomes.wait_all({entry.id}, timeout=40)  # well before the slow worker would have finished
    assert final[entry.id].status is Status.PROCESSED
    assert outcomes.count(entry.id) == 1
    metrics = scrape(metrics_port)
    assert metrics["dp3_dispatcher_tasks_submitted_total"] == 1  # Work Queue resubmitted it, not us
    assert metrics.get('dp3_dispatcher_tasks_failed_total{kind="render_failed"}', 0) == 0


def test_a_worker_without_pillow_heif_fails_heic_as_its_own_lack_and_stays_in_use(
    corpus: Path, tmp_path: Path, amqp_url: str, outcomes, start_dispatcher, start_worker
) -> None:
    shadow = tmp_path / "no-pillow-heif"
    shadow.mkdir()
    (shadow / "pillow_heif.py").write_text("raise ImportError('pillow_heif is not installed on this worker')\n")
    dispatcher = start_dispatcher(DP3_WORKER_PROVIDER="none", DP3_RENDER_ATTEMPTS="2")
    port, metrics_port = dispatcher.manager_port(), dispatcher.metrics_port()
    start_worker(port, "no-heif", env={**pillow_path(), "PYTHONPATH": str(shadow)})
    wait_for(lambda: scrape(metrics_port)["dp3_dispatcher_workers_connected"] == 1, 30, "the worker")
    heic = detected(corpus / "heic" / "IMG_5195.HEIC", corpus)
    jpeg = detected(corpus / "jpg" / "Canon_40D.jpg", corpus)
    publish(amqp_url, [heic])
    failed = outcomes.wait_all({heic.id}, timeout=60)[heic.id]
    assert failed.status is Status.FAILED and failed.error is not None
    assert failed.error.kind == "worker_environment" and "pillow-heif" in failed.error.message
    # The photo is not at fault, and neither is the worker for everything else: not blocked.
    publish(amqp_url, [jpeg])
    assert outcomes.wait_all({jpeg.id}, timeout=60)[jpeg.id].status is Status.PROCESSED
    metrics = scrape(metrics_port)
    assert metrics["dp3_dispatcher_workers_blocked"] == 0
    assert metrics["dp3_dispatcher_tasks_submitted_total"] == 3  # the HEIC twice, the JPEG once
