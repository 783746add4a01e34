"""A task that dies as a whole, with no per-photo outcome, costs its photos nothing (issue 14 item 3).

The worker's disk is a real tmpfs too small for the batch's photos together,
though not for any one of them: the batch cannot run at all. The dispatcher
then runs each photo again alone, without charging an attempt. Before, every
photo of the batch was charged, and after ``DP3_RENDER_ATTEMPTS`` tries all of
them ended ``render_failed`` together.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dp3.events import Status
from dp3_dispatcher.settings import PASSWORD_FILE_NAME
from tests.integration.dispatcher.harness import (
    Worker,
    detected,
    pillow_path,
    submit_one_then_a_batch,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "small-disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_batch_that_cannot_run_is_split_and_nobody_is_charged(
    corpus: Path, inbox: Path, amqp_url: str, outcomes, small_disk: Path, start_dispatcher, tmp_path: Path
) -> None:
    owner = inbox / "ANNA-SMITH"
    photos = []
    for photo in [*sorted((corpus / "jpg" / "hdr").glob("*.jpg")), corpus / "jpg" / "gps" / "DSCN0010.jpg"]:
        shutil.copyfile(photo, owner / photo.name)
        photos.append(owner / photo.name)
    assert sum(path.stat().st_size for path in photos[1:]) > 3 * 1024 * 1024 > max(p.stat().st_size for p in photos)
    entries = {path: detected(path, inbox) for path in photos}
    dispatcher = start_dispatcher(
        DP3_INBOX=str(inbox), DP3_WORKER_PROVIDER="none", DP3_RENDER_BATCH=str(len(photos) - 1)
    )
    metrics_port = dispatcher.metrics_port()
    port = dispatcher.manager_port()
    submit_one_then_a_batch(amqp_url, metrics_port, list(entries.values()))
    # Work Queue cannot stage the batch's four photos on this worker: it tries 11 times (about a minute).
    password = tmp_path / "home" / PASSWORD_FILE_NAME  # the one start_dispatcher's dispatcher generated
    worker = Worker(port, workdir=small_disk, env=pillow_path(), password_file=password)
    try:
        final = outcomes.wait_all({entry.id for entry in entries.values()}, timeout=240)
    finally:
        worker.stop()
    for path in photos:
        assert final[entries[path].id].status is Status.PROCESSED, final[entries[path].id].error
    log = dispatcher.log()
    assert "run again alone" in log  # the batch died (Work Queue gave up on it) and was split
    assert "render attempt" not in log, [line for line in log.splitlines() if "render attempt" in line]
