"""A full staging disk is a staging problem: renders wait for room, no attempt is charged, no worker is blamed.

Staging is a real, small tmpfs filled to ENOSPC by a real file; real
dispatcher and real workers. Freeing the space lets the photo complete.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dp3.events import Status
from tests.integration.dispatcher.harness import detected, pillow_path, publish, scrape, slow_python_path
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration

STAGING_SIZE = "16m"
HELD_SECONDS = 25.0
"""Long enough for DP3_RENDER_ATTEMPTS=2 to run out twice over, had the attempts been charged."""


@pytest.fixture
def small_staging(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "staging-fs"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={STAGING_SIZE}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the file system says ENOSPC; the file, to delete to free the space."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as stream:
        while True:
            stream.write(b"\0" * (1 << 20))
            stream.flush()
    with contextlib.suppress(OSError), filler.open("ab") as stream:  # the last partial block
        while True:
            stream.write(b"\0" * 4096)
            stream.flush()
    return filler


def assert_held(photo_id: str, outcomes, metrics_port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert outcomes.count(photo_id) == 0, outcomes.final()[photo_id]
        time.sleep(1)
    assert scrape(metrics_port)["dp3_dispatcher_staging_full"] == 1


def test_staging_full_before_the_render_holds_it_until_there_is_room(
    corpus: Path, amqp_url: str, outcomes, start_dispatcher, start_worker, small_staging: Path
) -> None:
    filler = fill(small_staging)
    dispatcher = start_dispatcher(
        DP3_WORKER_PROVIDER="none", DP3_STAGING=str(small_staging / "staging"), DP3_RENDER_ATTEMPTS="2"
    )
    port, metrics_port = dispatcher.manager_port(), dispatcher.metrics_port()
    start_worker(port, "healthy", env=pillow_path())
    photo = detected(corpus / "jpg" / "Canon_40D.jpg", corpus)
    publish(amqp_url, [photo])
    assert_held(photo.id, outcomes, metrics_port, HELD_SECONDS)

    filler.unlink()
    final = outcomes.wait_all({photo.id}, timeout=60)[photo.id]
    assert final.status is Status.PROCESSED
    assert (small_staging / "staging" / photo.id).is_dir()
    assert scrape(metrics_port)["dp3_dispatcher_staging_full"] == 0
    assert 'dp3_dispatcher_tasks_failed_total{kind="render_failed"}' not in scrape(metrics_port)


def test_staging_filling_up_during_the_render_is_not_the_photos_nor_the_workers_fault(
    corpus: Path, tmp_path: Path, amqp_url: str, outcomes, start_dispatcher, start_worker, small_staging: Path
) -> None:
    dispatcher = start_dispatcher(
        DP3_WORKER_PROVIDER="none", DP3_STAGING=str(small_staging / "staging"), DP3_RENDER_ATTEMPTS="2"
    )
    port, metrics_port = dispatcher.manager_port(), dispatcher.metrics_port()
    start_worker(port, "slow", env=slow_python_path(tmp_path / "slow-bin", 4))
    photo = detected(corpus / "jpg" / "Canon_40D.jpg", corpus)
    publish(amqp_url, [photo])
    wait_for(lambda: scrape(metrics_port)["dp3_dispatcher_tasks_running"] == 1, 30, "the render running")
    filler = fill(small_staging)  # while the worker renders: its results will not fit
    wait_for(lambda: scrape(metrics_port)["dp3_dispatcher_staging_full"] == 1, 30, "staging full seen")
    assert_held(photo.id, outcomes, metrics_port, HELD_SECONDS)
    log = dispatcher.log()
    assert "set worker host" not in log and "blocked it" not in log  # the healthy worker stays in use

    filler.unlink()
    final = outcomes.wait_all({photo.id}, timeout=60)[photo.id]
    assert final.status is Status.PROCESSED
    assert 'dp3_dispatcher_tasks_failed_total{kind="render_failed"}' not in scrape(metrics_port)
