"""The one-machine stack (``deploy/local/stack.py``, i.e. ``make up``) under test.

Starts the real thing as separate processes under supervisord, in a temporary
``DP3_HOME``, against a throwaway RabbitMQ vhost, on free ports, so tests can
run beside a developer's own stack. Used by the end-to-end and chaos tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from dp3.ports import free_port
from tests.rabbit import REPO_ROOT, create_vhost, delete_vhost, wait_for

SERVICES = ("scanner", "dispatcher", "archiver", "portal")
"""The photo pipeline's services, which the chaos schedule kills; the stack also runs the intake (``intake_port``)."""


class Stack:
    """A running stack; ``stop()`` must leave no process behind."""

    def __init__(self, home: Path, amqp_url: str, extra_env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.inbox = home / "inbox"
        self.stores = (home / "archive-a", home / "archive-b")
        self.portal_port = free_port()
        self.intake_port = free_port()
        self.metrics_ports = {name: free_port() for name in ("scanner", "dispatcher", "archiver")}
        self.password = "e2e-admin-password"
        env = {key: value for key, value in os.environ.items() if not key.startswith("DP3_")}
        env.update(
            DP3_HOME=str(home),
            DP3_AMQP_URL=amqp_url,
            DP3_PORTAL_PORT=str(self.portal_port),
            DP3_INTAKE_PORT=str(self.intake_port),
            DP3_ADMIN_PASSWORD=self.password,
            DP3_EMBEDDED_MONGO_PORT=str(free_port()),
            DP3_WORK_QUEUE_PORT=str(free_port()),
            DP3_PROMETHEUS_PORT="0",
            DP3_STABLE_SECONDS="1",
            DP3_INCOMPLETE_SECONDS="4",  # truncated corpus files are detected 4 s after their last write
            DP3_RESCAN_SECONDS="2",
            DP3_WORKERS_MAX="2",
            **{f"DP3_{name.upper()}_METRICS_PORT": str(port) for name, port in self.metrics_ports.items()},
        )
        env.update(extra_env or {})
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "stack-stdout.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "deploy" / "local" / "stack.py"), "up"],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self.healthy, timeout, "every service's /healthz", interval=0.5)

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the stack exited: {self.tail_logs()}")
        urls = [f"http://127.0.0.1:{port}/healthz" for port in self.metrics_ports.values()]
        urls.append(f"http://127.0.0.1:{self.portal_port}/healthz")
        urls.append(f"http://127.0.0.1:{self.intake_port}/healthz")
        try:
            return all(httpx.get(url, timeout=2).status_code == 200 for url in urls)
        except httpx.HTTPError:
            return False

    def supervisorctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "supervisorctl"), "-c", str(self.home / "supervisord.conf"), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout

    def service_pid(self, name: str) -> int:
        return int(self.supervisorctl("pid", name).strip())

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"http://127.0.0.1:{self.portal_port}{path}", params=params, auth=("admin", self.password), timeout=10
        )
        response.raise_for_status()
        return response.json()

    def tail_logs(self, lines: int = 30) -> str:
        out = []
        for log in sorted((self.home / "logs").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM, as Ctrl-C or `make down` would; then check nothing is left."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                raise AssertionError("the stack did not stop within the timeout") from None
        left = leftover_processes(self.home)
        if left:
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"processes left behind after stop: {left}")


@contextmanager
def running_stack(
    home: Path,
    vhost_prefix: str,
    extra_env: Mapping[str, str] | None = None,
    before_start: Callable[[Stack], None] | None = None,
    log_lines: int = 60,
) -> Iterator[tuple[Stack, str]]:
    """A started stack in ``home`` on a fresh vhost; logs printed if the body fails; stopped, vhost deleted."""
    vhost, url = create_vhost(vhost_prefix)
    running = Stack(home, url, extra_env)
    try:
        if before_start is not None:
            before_start(running)
        running.start()
        yield running, vhost
    except BaseException:
        print(running.tail_logs(log_lines))
        raise
    finally:
        try:
            running.stop()
        finally:
            delete_vhost(vhost)


def leftover_processes(home: Path) -> list[int]:
    """PIDs whose environment names this DP3_HOME (every stack child inherits it)."""
    marker = f"DP3_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    # Give processes that are exiting (a worker finishing its last write) a few seconds.
    deadline = time.monotonic() + 5
    while True:
        found = [pid for pid in found if _running(pid)]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child its parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- helpers shared by the whole-stack tests (e2e, chaos) ---------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def all_photos(stack: Stack) -> list[dict[str, Any]]:
    """Every photo in the catalog, through the JSON API's pages."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = stack.api("/api/photos", **params)
        items += page["items"]
        cursor = page["next"]
        if not cursor:
            return items


def write_slowly(path: Path, data: bytes, seconds: float, chunks: int = 8) -> None:
    """An upload over a slow link: chunks with pauses shorter than the stability window."""
    step = len(data) // chunks + 1
    with path.open("wb") as stream:
        for start in range(0, len(data), step):
            stream.write(data[start : start + step])
            stream.flush()
            time.sleep(seconds / chunks)


def mongo_url(stack: Stack) -> str:
    return f"mongodb://127.0.0.1:{stack.env['DP3_EMBEDDED_MONGO_PORT']}/dp3?directConnection=true"


def dp3_command(stack: Stack, *args: str, **env: str) -> str:
    """Run an operator command (``dp3 ...``) against the stack's catalog; its output."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dp3"), *args],
        env={**os.environ, **stack.env, "DP3_MONGO_URL": mongo_url(stack), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"dp3 {' '.join(args)}: {result.stderr or result.stdout}"
    return result.stdout


def export_journal(stack: Stack) -> list[dict[str, Any]]:
    """The whole journal, as ``dp3 journal export`` prints it."""
    entries = json.loads(dp3_command(stack, "journal", "export"))
    assert isinstance(entries, list)
    return entries


def catalog_photos(stack: Stack, database: str) -> dict[str, dict[str, Any]]:
    """The catalog's photo documents in ``database``, by id, read straight from the database."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url(stack))
    try:
        return {doc["_id"]: doc for doc in client[database]["photos"].find()}
    finally:
        client.close()


def metric_samples(url: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in a Prometheus text page (labels as written, "" for none)."""
    text = httpx.get(url, timeout=5).text
    pattern = rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$"
    return {match.group(1) or "": float(match.group(2)) for match in re.finditer(pattern, text, re.MULTILINE)}
