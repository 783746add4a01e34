"""The Work Queue manager's password: a worker without it, or with another one, is sent nothing.

On a shared cluster anyone can reach the manager's port; without a password
they could connect a worker, receive the originals and return forged
artifacts. Real dispatcher, real ``work_queue_worker`` processes.
"""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from dp3.events import Status
from dp3_dispatcher.settings import PASSWORD_FILE_NAME
from tests.integration.dispatcher.harness import Worker, detected, pillow_path, publish, scrape
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration

WAIT_FOR_NOTHING = 12.0
"""Long enough for a worker to connect and get a task: a good one renders the photo in 1-3 s."""


def received_anything(worker: Worker) -> bool:
    """True if any file of a task (the cached render script, a photo) reached the worker's folder."""
    folder = worker.log_path.parent
    return any(path.is_file() and path != worker.log_path for path in folder.rglob("*"))


def test_only_a_worker_with_the_password_gets_tasks(
    corpus: Path, tmp_path: Path, amqp_url: str, outcomes, start_dispatcher, start_worker
) -> None:
    dispatcher = start_dispatcher(DP3_WORKER_PROVIDER="none")
    port, metrics_port = dispatcher.manager_port(), dispatcher.metrics_port()
    password = dispatcher.home / PASSWORD_FILE_NAME
    assert len(password.read_bytes()) >= 32
    assert stat.S_IMODE(password.stat().st_mode) == 0o600  # a secret: its owner's alone

    wrong = tmp_path / "wrong-password"
    wrong.write_text("guessed\n")
    intruders = [
        start_worker(port, "no-password", env=pillow_path(), password_file=None),
        start_worker(port, "wrong-password", env=pillow_path(), password_file=wrong),
    ]
    photo = detected(corpus / "jpg" / "Canon_40D.jpg", corpus)
    publish(amqp_url, [photo])
    deadline = time.monotonic() + WAIT_FOR_NOTHING
    while time.monotonic() < deadline:
        assert scrape(metrics_port)["dp3_dispatcher_workers_connected"] == 0
        assert outcomes.count(photo.id) == 0
        time.sleep(1)
    assert not any(received_anything(worker) for worker in intruders)
    assert scrape(metrics_port)["dp3_dispatcher_tasks_running"] == 0

    trusted = start_worker(port, "right-password", env=pillow_path())
    final = outcomes.wait_all({photo.id}, timeout=60)[photo.id]
    assert final.status is Status.PROCESSED
    assert received_anything(trusted)
    assert not any(received_anything(worker) for worker in intruders)


def test_a_configured_password_file_is_used_and_a_missing_one_stops_start_up(
    corpus: Path, tmp_path: Path, amqp_url: str, outcomes, start_dispatcher, start_worker
) -> None:
    missing = start_dispatcher(DP3_WORK_QUEUE_PASSWORD_FILE=str(tmp_path / "absent"))
    assert missing.process.wait(30) == 2
    assert "DP3_WORK_QUEUE_PASSWORD_FILE" in missing.log()

    shared = tmp_path / "shared-password"
    shared.write_text("a secret the operator chose\n")
    dispatcher = start_dispatcher(DP3_WORKER_PROVIDER="none", DP3_WORK_QUEUE_PASSWORD_FILE=str(shared))
    port = dispatcher.manager_port()
    assert not (dispatcher.home / PASSWORD_FILE_NAME).exists()  # nothing generated when one is configured
    (tmp_path / "other").write_text("another secret\n")
    start_worker(port, "other-one", env=pillow_path(), password_file=tmp_path / "other")
    start_worker(port, "configured-one", env=pillow_path(), password_file=shared)
    photo = detected(corpus / "jpg" / "Canon_40D.jpg", corpus)
    publish(amqp_url, [photo])
    wait_for(lambda: outcomes.count(photo.id) > 0, 60, "the photo rendered by the worker with the password")
    assert outcomes.final()[photo.id].status is Status.PROCESSED
