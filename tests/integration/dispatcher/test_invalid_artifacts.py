"""A task that completes with invalid artifacts is a failed task, not a processed photo."""

from __future__ import annotations

from pathlib import Path

import pytest

from dp3.events import ErrorKind, Status
from tests.integration.dispatcher.harness import (
    detected,
    forging_meta_python_path,
    pillow_path,
    publish,
    scrape,
    tampering_python_path,
)
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration


def test_invalid_artifacts_are_retried_elsewhere_then_fail_as_render_failed(
    corpus: Path, tmp_path: Path, amqp_url: str, outcomes, start_dispatcher, start_worker
) -> None:
    dispatcher = start_dispatcher(DP3_WORKER_PROVIDER="none", DP3_RENDER_ATTEMPTS="3")
    port, metrics_port = dispatcher.manager_port(), dispatcher.metrics_port()
    start_worker(port, "tampering", env=tampering_python_path(tmp_path / "bin"), hostname="tampering-node")
    wait_for(lambda: scrape(metrics_port)["dp3_dispatcher_workers_connected"] == 1, 30, "the tampering worker")

    # Only a tampering worker: bounded retries, then Failed render_failed saying why.
    lost = detected(corpus / "jpg" / "Canon_40D.jpg", corpus)
    publish(amqp_url, [lost])
    failed = outcomes.wait_all({lost.id}, timeout=60)[lost.id]
    assert failed.status is Status.FAILED and failed.error is not None
    assert failed.error.kind is ErrorKind.RENDER_FAILED
    assert "after 3 attempts" in failed.error.message and "web" in failed.error.message
    assert scrape(metrics_port)["dp3_dispatcher_tasks_submitted_total"] == 3
    assert not (dispatcher.home / "staging" / lost.id).exists()

    # With a good worker on another host too, the retry goes there and the photos render.
    start_worker(port, "good", env=pillow_path())
    wait_for(lambda: scrape(metrics_port)["dp3_dispatcher_workers_connected"] == 2, 30, "the good worker")
    entries = [detected(photo, corpus) for photo in sorted((corpus / "jpg" / "gps").glob("*.jpg"))[:4]]
    publish(amqp_url, entries)
    final = outcomes.wait_all({e.id for e in entries}, timeout=60)
    assert {final[e.id].status for e in entries} == {Status.PROCESSED}
    for entry in entries:
        assert (dispatcher.home / "staging" / entry.id).is_dir()


def test_a_worker_forging_meta_gets_a_failed_task_not_a_processed_photo(
    corpus: Path, tmp_path: Path, amqp_url: str, outcomes, start_dispatcher, start_worker
) -> None:
    # The example: width and height about 2**72, the aspect kept, so the geometry checks pass them.
    dispatcher = start_dispatcher(DP3_WORKER_PROVIDER="none", DP3_RENDER_ATTEMPTS="2")
    port, metrics_port = dispatcher.manager_port(), dispatcher.metrics_port()
    start_worker(port, "forging", env=forging_meta_python_path(tmp_path / "bin"))
    photo = detected(corpus / "jpg" / "Canon_40D.jpg", corpus)
    publish(amqp_url, [photo])
    failed = outcomes.wait_all({photo.id}, timeout=60)[photo.id]
    assert failed.status is Status.FAILED and failed.error is not None
    assert failed.error.kind is ErrorKind.RENDER_FAILED
    assert "meta.json width" in failed.error.message  # the field the schema refused
    assert scrape(metrics_port)["dp3_dispatcher_tasks_submitted_total"] == 2
    assert not (dispatcher.home / "staging" / photo.id).exists()
    assert failed.meta is None
