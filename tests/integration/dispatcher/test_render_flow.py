"""A dispatcher process with its own local workers turns Detected into Processed or Failed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from dp3 import layout
from dp3.events import ErrorKind, Status
from tests.integration.dispatcher.harness import detected, publish, scrape
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration


def _jpeg(path: Path, size: tuple[int, int]) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue())


def test_photos_render_into_staging_and_bad_files_fail_with_their_kind(
    inbox: Path, amqp_url: str, outcomes, start_dispatcher
) -> None:
    owner = inbox / "ANNA-SMITH"
    # Names that would break a shell: they only ever reach Work Queue as local paths.
    good = owner / 'it\'s a "photo" (1) $(rm -rf x).jpg'
    _jpeg(good, (800, 600))
    leading_dash = owner / "-n élan.JPG"
    _jpeg(leading_dash, (300, 400))
    empty = owner / "empty.jpg"
    empty.write_bytes(b"")
    not_an_image = owner / "notes.jpg"
    not_an_image.write_bytes(b"this is a text file, not a JPEG\n" * 10)
    entries = [detected(path, inbox) for path in (good, leading_dash, empty, not_an_image)]
    dispatcher = start_dispatcher(DP3_INBOX=str(inbox), DP3_WORKER_PROVIDER="local", DP3_WORKERS_MAX="2")
    metrics_port = dispatcher.metrics_port()
    publish(amqp_url, entries)
    final = outcomes.wait_all({e.id for e in entries}, timeout=90)

    staging = dispatcher.home / "staging"
    for entry in entries[:2]:
        outcome = final[entry.id]
        assert outcome.status is Status.PROCESSED, outcome.error
        assert outcome.meta is not None and outcome.meta["sha256"] == entry.sha256
        assert outcome.error is None
        folder = staging / entry.id
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [layout.thumbnail_name(entry.id), layout.web_name(entry.id), layout.META_NAME]
        )
        with Image.open(folder / layout.web_name(entry.id)) as web:
            assert web.format == "JPEG" and max(web.size) <= 640
    kinds = {final[e.id].error.kind for e in entries[2:] if final[e.id].error is not None}
    assert [final[e.id].status for e in entries[2:]] == [Status.FAILED, Status.FAILED]
    assert kinds == {ErrorKind.EMPTY_FILE, ErrorKind.CORRUPT_IMAGE}
    assert all(final[e.id].error.stage == "dispatcher" for e in entries[2:])
    for entry in entries[2:]:
        assert not (staging / entry.id).exists()
    # No render workspace is left behind, and the inbox is untouched.
    assert [p.name for p in staging.iterdir() if p.name.startswith(".dp3-tmp-")] == []
    assert sorted(p.name for p in owner.iterdir()) == sorted(p.name for p in (good, leading_dash, empty, not_an_image))

    metrics = scrape(metrics_port)
    # Four photos, each rendered once; a burst shares tasks (one Python start for several photos).
    tasks = metrics["dp3_dispatcher_tasks_submitted_total"]
    assert 1 <= tasks <= 4 and metrics["dp3_dispatcher_task_seconds_count"] == tasks
    assert metrics["dp3_dispatcher_photos_per_task_sum"] == 4
    assert metrics['dp3_dispatcher_tasks_failed_total{kind="empty_file"}'] == 1
    assert metrics['dp3_dispatcher_tasks_failed_total{kind="corrupt_image"}'] == 1
    wait_for(lambda: scrape(metrics_port)["dp3_dispatcher_workers_connected"] == 2, 10, "the gauge to show 2 workers")
    gauges = scrape(metrics_port)
    assert gauges["dp3_dispatcher_tasks_waiting"] == 0 and gauges["dp3_dispatcher_tasks_running"] == 0
    assert gauges["dp3_dispatcher_workers_blocked"] == 0
