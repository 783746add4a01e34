"""A real inbox directory, the real RabbitMQ, and the scanner running for real.

``journal`` reads every event of the test's vhost from ``portal.journal``
(bound to ``photo.#``), declared before the scanner starts so nothing is
missed. ``scanner`` runs the whole service in-process on a thread;
``scanner_process`` runs ``python -m dp3_scanner`` as a child process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from dp3.broker import BrokerOptions, declare_topology
from dp3.events import JournalEntry, Status
from dp3.settings import load_settings
from dp3.topology import ALL_QUEUES, PORTAL
from dp3_scanner.app import ScannerApp
from dp3_scanner.settings import ScannerSettings
from tests.rabbit import REPO_ROOT, wait_for

FAST = BrokerOptions(retry_delays=(0.2, 0.5), max_attempts=3, reconnect_max_delay=1.0)


class Journal:
    """Every event published in the test's vhost, in order."""

    def __init__(self, url: str) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()
        declare_topology(self._channel, ALL_QUEUES, FAST)
        self.entries: list[JournalEntry] = []

    def poll(self) -> list[JournalEntry]:
        while True:
            method, _properties, body = self._channel.basic_get(PORTAL.name, auto_ack=True)
            if method is None:
                return self.entries
            self.entries.append(JournalEntry.from_json(body))

    def about(self, path: Path | str, status: Status | None = None) -> list[JournalEntry]:
        """Events for one inbox path (optionally of one status), polling first."""
        return [e for e in self.poll() if e.path == str(path) and (status is None or e.status == status)]

    def wait(
        self, path: Path | str, status: Status = Status.DETECTED, count: int = 1, timeout: float = 20
    ) -> list[JournalEntry]:
        wait_for(lambda: len(self.about(path, status)) >= count, timeout, f"{count} {status} for {path}")
        return self.about(path, status)

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()


@pytest.fixture
def journal(amqp_url: str) -> Iterator[Journal]:
    journal = Journal(amqp_url)
    yield journal
    journal.close()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


class RunningScanner:
    def __init__(self, settings: ScannerSettings) -> None:
        self.app = ScannerApp(settings, options=FAST)
        self.stop_event = threading.Event()
        self.app.start()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.app.scanner.rescans >= 1, 20, "the start-up rescan")
        wait_for(self.app.consumer.connected.is_set, 20, "the scanner.archived consumer")

    def _run(self) -> None:
        try:
            self.app.run(self.stop_event)
        finally:
            self.app.stop()

    def wait_rescans(self, more: int = 1, timeout: float = 20) -> None:
        """Wait until ``more`` further full rescans have completed."""
        target = self.app.scanner.rescans + more
        wait_for(lambda: self.app.scanner.rescans >= target, timeout, f"{more} more rescans")

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(20)
        assert not self.thread.is_alive(), "the scanner did not stop"


@pytest.fixture
def scanner(amqp_url: str, inbox: Path, tmp_path: Path) -> Iterator[Callable[..., RunningScanner]]:
    """Start the scanner in-process: ``scanner(stable_seconds=0.5, ...)``."""
    started: list[RunningScanner] = []

    def start(**overrides: Any) -> RunningScanner:
        values: dict[str, Any] = {
            "home": tmp_path / "home",
            "inbox": inbox,
            "amqp_url": amqp_url,
            "stable_seconds": 0.5,
            "incomplete_seconds": 2.0,
            "rescan_seconds": 2.0,
            **overrides,
        }
        started.append(RunningScanner(load_settings(ScannerSettings, **values)))
        return started[-1]

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()


class ScannerProcess:
    """``python -m dp3_scanner`` as a child process, configured through DP3_* variables."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dp3_scanner"],
            env=env,
            cwd=REPO_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self.port: int | None = None
        threading.Thread(target=self._read_log, daemon=True).start()
        wait_for(lambda: self.port is not None, 20, "the scanner's metrics port")

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            found = re.search(r"on port (\d+)", line)
            if found and self.port is None:
                self.port = int(found.group(1))

    def get(self, what: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{what}", timeout=5) as response:
            return str(response.read().decode())

    def rescans(self) -> int:
        try:
            found = re.search(r"(\d+) rescans", self.get("healthz"))
        except OSError:
            return 0
        return int(found.group(1)) if found else 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(20)


@pytest.fixture
def scanner_process(amqp_url: str, inbox: Path, tmp_path: Path) -> Iterator[Callable[..., ScannerProcess]]:
    started: list[ScannerProcess] = []

    def start(**variables: str) -> ScannerProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith("DP3_")}
        env.update(
            {
                "DP3_HOME": str(tmp_path / "home"),
                "DP3_INBOX": str(inbox),
                "DP3_AMQP_URL": amqp_url,
                "DP3_METRICS_PORT": "0",
                "DP3_STABLE_SECONDS": "0.5",
                "DP3_INCOMPLETE_SECONDS": "2",
                "DP3_RESCAN_SECONDS": "2",
                **variables,
            }
        )
        started.append(ScannerProcess(env))
        return started[-1]

    yield start
    for process in started:
        process.stop(signal.SIGKILL)
