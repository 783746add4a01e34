"""Drive a real dispatcher process: publish Detected events, collect what comes out.

Everything is real: the ``dp3-dispatcher`` console script in a subprocess, a
throwaway RabbitMQ vhost, ``work_queue_worker`` / ``work_queue_factory``
processes, and the corpus photos read in place (the corpus folder is the
inbox; the dispatcher never writes there).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path

import pika

from dp3.events import EXCHANGE, JournalEntry, Status, make_photo_id, path_fields
from dp3.filenames import escape_os
from dp3.files import sha256_file
from tests.rabbit import publish as publish  # re-exported: the dispatcher tests publish through the harness
from tests.rabbit import wait_for

DISPATCHER = Path(sys.executable).with_name("dp3-dispatcher")
VENV_BIN = Path(sys.executable).parent
OTHER_HOST = Path(__file__).with_name("other_host.sh")


def detected(photo: Path, inbox: Path) -> JournalEntry:
    """The Detected event the scanner would emit for ``photo`` (owner: its top folder under the inbox)."""
    owner = photo.relative_to(inbox).parts[0]
    sha256, size = sha256_file(photo)
    capture = int(photo.stat().st_mtime)
    return JournalEntry(
        id=make_photo_id(owner, capture, photo.name),
        status=Status.DETECTED,
        datetime=capture,
        owner=escape_os(owner),
        **path_fields(str(photo)),
        sha256=sha256,
        size=size,
        service="scanner",
    )


class Outcomes:
    """Collects Processed and Failed events from a private queue in the test's vhost."""

    def __init__(self, amqp_url: str) -> None:
        self._url = amqp_url
        self.events: dict[str, list[JournalEntry]] = defaultdict(list)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
        channel.queue_declare("test.outcomes", durable=False)
        for status in (Status.PROCESSED, Status.FAILED):
            channel.queue_bind("test.outcomes", EXCHANGE, routing_key=status.routing_key)
        connection.close()
        self._thread = threading.Thread(target=self._consume, daemon=True)
        self._thread.start()

    def _consume(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self._url))
        channel = connection.channel()
        for _method, _props, body in channel.consume("test.outcomes", auto_ack=True, inactivity_timeout=0.2):
            if self._stop.is_set():
                break
            if body is None:
                continue
            entry = JournalEntry.from_json(body)
            with self._lock:
                self.events[entry.id].append(entry)
        with contextlib.suppress(Exception):
            connection.close()

    def final(self) -> dict[str, JournalEntry]:
        """The last outcome per photo id."""
        with self._lock:
            return {photo_id: entries[-1] for photo_id, entries in self.events.items()}

    def count(self, photo_id: str) -> int:
        with self._lock:
            return len(self.events.get(photo_id, ()))

    def wait_all(self, ids: set[str], timeout: float) -> dict[str, JournalEntry]:
        wait_for(lambda: ids <= set(self.final()), timeout, f"outcomes for {len(ids)} photos")
        return self.final()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


class DispatcherProcess:
    """``dp3-dispatcher`` in a subprocess with its own DP3_HOME; logs go to a file."""

    def __init__(self, home: Path, env: Mapping[str, str]) -> None:
        self.home = home
        self.log_path = home / "dispatcher.log"
        home.mkdir(parents=True, exist_ok=True)
        full_env = {
            **os.environ,
            "DP3_HOME": str(home),
            "DP3_STAGING": str(home / "staging"),
            "DP3_METRICS_PORT": "0",
            "DP3_WORK_QUEUE_PORT": "0",
            "DP3_LOG_LEVEL": "INFO",
            **env,
        }
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(DISPATCHER)], env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log(self) -> str:
        """This process's log lines (a restart in the same home appends to the same file)."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"dispatcher exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            match = re.search(pattern, self.log())
            if match:
                found.append(match)
            return bool(match)

        wait_for(seen, timeout, f"dispatcher log line matching {pattern!r}")
        return found[0]

    def factory_pids(self) -> list[int]:
        return [int(pid) for pid in re.findall(r"started work_queue_factory .*?\(pid (\d+)", self.log())]

    def manager_port(self) -> int:
        return int(self.wait_log(r"Work Queue manager listening on port (\d+)").group(1))

    def metrics_port(self) -> int:
        return int(self.wait_log(r"serving /metrics and /healthz on port (\d+)").group(1))

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the dispatcher alone (as a crash would); its factory notices by --parent-death."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(10)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


class Worker:
    """One real ``work_queue_worker`` aimed at a manager port."""

    def __init__(
        self,
        port: int,
        *,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        hostname: str | None = None,
        idle_timeout: int = 120,
        password_file: Path | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        command = [
            "work_queue_worker",
            "--cores",
            "1",
            "--timeout",
            str(idle_timeout),
            "--workdir",
            str(workdir),
            *(["--password", str(password_file)] if password_file is not None else []),
            "127.0.0.1",
            str(port),
        ]
        if hostname is not None:
            # Another host, as the manager sees it: its own UTS namespace and name.
            command = ["unshare", "--uts", "--mount", str(OTHER_HOST), hostname, *command]
        self.log_path = workdir / "worker.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def pillow_path() -> dict[str, str]:
    """PATH whose python3 has Pillow (this virtual environment's)."""
    return {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def python_without_pillow_path() -> dict[str, str]:
    """PATH whose python3 is the system's, which has no Pillow: a broken worker."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != str(VENV_BIN))
    return {"PATH": path}


def worker_processes(manager_port: int | None = None) -> list[int]:
    """Pids of live work_queue_worker processes (of the manager on ``manager_port``, if given).

    Other test runs on this machine have workers too: filter by port or by ancestry.
    A worker forks to run each task, and until the child execs the shell it is
    called ``work_queue_worker`` too (a wide window on a loaded machine): a
    process whose parent is a worker is a task, not a worker.
    """
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                comm = Path(entry.path, "comm").read_text().strip()
                state, parent = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[:2]
                if not comm.startswith("work_queue_work") or state == "Z":
                    continue
                if Path("/proc", parent, "comm").read_text().startswith("work_queue_work"):
                    continue
                if manager_port is not None:
                    argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
                    if str(manager_port).encode() not in argv:
                        continue
                pids.append(int(entry.name))
    return pids


@contextlib.contextmanager
def running(process: DispatcherProcess) -> Iterator[DispatcherProcess]:
    try:
        yield process
    finally:
        if process.process.poll() is None:
            process.stop()


def scrape(port: int) -> dict[str, float]:
    """The dispatcher's /metrics as ``{'name{label="v"}': value}``."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


TASKS_SUBMITTED = "dp3_dispatcher_tasks_submitted_total"


def submit_one_then_a_batch(amqp_url: str, metrics_port: int, entries: list[JournalEntry]) -> None:
    """With no worker yet: the first entry leaves as a task of its own, then the rest as one batch.

    Published together, two events the dispatcher takes in at once would leave in one task
    (spread over the one free worker it assumes), and the rest would wait for a batch that never
    fills: so the first is published alone and its task seen before the rest follow.
    """
    publish(amqp_url, entries[:1])
    wait_for(lambda: scrape(metrics_port).get(TASKS_SUBMITTED) == 1, 30, "the first photo's task submitted")
    publish(amqp_url, entries[1:])
    wait_for(lambda: scrape(metrics_port).get(TASKS_SUBMITTED) == 2, 30, "two tasks submitted")


def slow_python_path(folder: Path, seconds: int) -> dict[str, str]:
    """PATH whose python3 waits ``seconds`` before running: a worker slow enough to kill mid-task."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "python3"
    shim.write_text(f'#!/bin/sh\nsleep {int(seconds)}\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"}


def tampering_python_path(folder: Path) -> dict[str, str]:
    """PATH whose python3 renders, then truncates every web.jpg: a worker that 'completes' with bad artifacts."""
    return _rewriting_python_path(
        folder,
        _TRUNCATE_WEB,
        "if [ -f web.jpg ]; then head -c 300 web.jpg > web.part && mv web.part web.jpg; fi\n",
    )


def forging_meta_python_path(folder: Path) -> dict[str, str]:
    """PATH whose python3 renders, then scales meta.json's width and height by 2**60 (aspect kept)."""
    return _rewriting_python_path(folder, _FORGE_META)


def _rewriting_python_path(folder: Path, tar_script: str, shell: str = "") -> dict[str, str]:
    """PATH whose python3 runs the real one, then ``tar_script`` on results.tar (and ``shell``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rewrite = folder / "rewrite_results.py"
    rewrite.write_text(tar_script)
    shim = folder / "python3"
    shim.write_text(
        "#!/bin/sh\n"
        f'"{sys.executable}" "$@"\n'
        "status=$?\n"
        f"{shell}"
        f'if [ -f results.tar ]; then "{sys.executable}" "{rewrite}" results.tar; fi\n'
        'exit "$status"\n'
    )
    shim.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"}


_FORGE_META = """
import io, json, sys, tarfile
members = []
with tarfile.open(sys.argv[1]) as archive:
    for member in archive:
        data = archive.extractfile(member).read() if member.isreg() else None
        if member.name.endswith("/meta.json"):
            meta = json.loads(data)
            meta["width"], meta["height"] = meta["width"] << 60, meta["height"] << 60
            data = json.dumps(meta).encode()
            member.size = len(data)
        members.append((member, data))
with tarfile.open(sys.argv[1], "w") as archive:
    for member, data in members:
        archive.addfile(member, io.BytesIO(data) if data is not None else None)
"""


_TRUNCATE_WEB = """
import io, sys, tarfile
members = []
with tarfile.open(sys.argv[1]) as archive:
    for member in archive:
        data = archive.extractfile(member).read() if member.isreg() else None
        if member.name.endswith("/web.jpg"):
            data = data[:300]
            member.size = len(data)
        members.append((member, data))
with tarfile.open(sys.argv[1], "w") as archive:
    for member, data in members:
        archive.addfile(member, io.BytesIO(data) if data is not None else None)
"""
