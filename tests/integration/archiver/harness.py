"""Real archiver processes against the real RabbitMQ, and a recorder of the journal they produce."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from dp3.broker import BrokerOptions, Consumer, Message, Publisher
from dp3.events import JournalEntry, Status
from dp3.topology import QueueSpec
from tests.rabbit import REPO_ROOT, wait_for
from tests.unit.archiver.site import Site

FAST = BrokerOptions(retry_delays=(0.2, 0.5, 1.0), max_attempts=5, reconnect_max_delay=1.0)
JOURNAL = QueueSpec("test.journal", ("photo.#",))
_PORT = re.compile(r"serving /metrics and /healthz on port (\d+)")


def archiver_env(site: Site, amqp_url: str, stores: Sequence[Path] | None = None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DP3_")}
    env.update(
        {
            "DP3_HOME": str(site.root),
            "DP3_INBOX": str(site.inbox),
            "DP3_STAGING": str(site.staging),
            "DP3_STORES": ",".join(str(p) for p in (stores or site.store_roots)),
            "DP3_AMQP_URL": amqp_url,
            "DP3_METRICS_PORT": "0",
            "DP3_RETRY_DELAYS": "0.2,0.5,1",
            "DP3_STORE_RESERVE_BYTES": "0",
            "DP3_LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


class ArchiverProcess:
    """``python -m dp3_archiver`` as a child process; its log goes to a file the test can read."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dp3_archiver"], env=env, stdout=self._log, stderr=self._log, cwd=REPO_ROOT
        )
        self._port: int | None = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def port(self) -> int:
        if self._port is None:
            found: list[int] = []

            def seen() -> bool:
                found.extend(int(m.group(1)) for m in _PORT.finditer(self.log_text()))
                return bool(found)

            wait_for(seen, 20, "the archiver to serve /metrics")
            self._port = found[-1]
        return self._port

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


class Journal:
    """Records every event on the exchange (its own queue bound to ``photo.#``)."""

    def __init__(self, amqp_url: str) -> None:
        self.events: list[JournalEntry] = []
        self._lock = threading.Lock()
        self.publisher = Publisher(amqp_url, options=FAST)
        self._consumer = Consumer(
            amqp_url, JOURNAL, self._record, publisher=self.publisher, options=FAST, workers=1, prefetch=200
        )
        self._thread = threading.Thread(target=self._consumer.run, daemon=True)
        self._thread.start()
        wait_for(self._consumer.connected.is_set, 10, "the journal recorder to connect")

    def _record(self, message: Message) -> list[JournalEntry]:
        with self._lock:
            self.events.append(message.entry)
        return []

    def publish(self, entry: JournalEntry) -> None:
        self.publisher.publish(entry)

    def ids_with(self, status: Status) -> set[str]:
        with self._lock:
            return {event.id for event in self.events if event.status is status}

    def with_status(self, status: Status) -> list[JournalEntry]:
        with self._lock:
            return [event for event in self.events if event.status is status]

    def wait_all(self, ids: set[str], status: Status, timeout: float) -> None:
        wait_for(lambda: ids <= self.ids_with(status), timeout, f"{len(ids)} photos to be {status.value}")

    def close(self) -> None:
        self._consumer.stop()
        self._thread.join(10)
        self.publisher.close()


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def remount(path: Path, options: str) -> None:
    """``mount -o remount,<options>``; retried while a writer holds a file open (EBUSY)."""
    last = ""

    def done() -> bool:
        nonlocal last
        result = subprocess.run(["mount", "-o", f"remount,{options}", str(path)], capture_output=True, text=True)
        last = result.stderr
        return result.returncode == 0

    wait_for(done, 20, f"remount {path} {options} ({last})", interval=0.1)


def unmount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=False)
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], check=False)
