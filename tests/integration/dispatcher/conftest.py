from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dp3_dispatcher.settings import PASSWORD_FILE_NAME
from tests.integration.dispatcher.harness import DispatcherProcess, Outcomes, Worker


@pytest.fixture
def outcomes(amqp_url: str) -> Iterator[Outcomes]:
    collected = Outcomes(amqp_url)
    yield collected
    collected.close()


@pytest.fixture
def start_dispatcher(tmp_path: Path, amqp_url: str, corpus: Path) -> Iterator[Callable[..., DispatcherProcess]]:
    """Start dispatcher processes (same home: a restart sees the same staging); all stopped at the end."""
    started: list[DispatcherProcess] = []

    def start(**env: str) -> DispatcherProcess:
        process = DispatcherProcess(tmp_path / "home", {"DP3_AMQP_URL": amqp_url, "DP3_INBOX": str(corpus), **env})
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        if process.process.poll() is None:
            try:
                process.stop(60)
            finally:
                process.kill_group()
        # A factory whose dispatcher was SIGKILLed lives on until its next cycle
        # (--parent-death is checked every 30 s): do not leave it to the next test.
        for pid in process.factory_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(port: int, name: str, **kwargs: object) -> Worker:
        # The password the dispatcher of start_dispatcher generated (pass password_file=None for none).
        kwargs.setdefault("password_file", tmp_path / "home" / PASSWORD_FILE_NAME)
        worker = Worker(port, workdir=tmp_path / "workers" / name, **kwargs)  # type: ignore[arg-type]
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """A writable inbox for generated (non-corpus) files: empty, not an image, ..."""
    folder = tmp_path / "inbox"
    (folder / "ANNA-SMITH").mkdir(parents=True)
    return folder
