"""The one-machine stack (``deploy/local/stack.py``, i.e. ``make up``) under test.

Starts the real thing as separate processes under supervisord, in a temporary
``DP3_HOME``, against a throwaway RabbitMQ vhost, on free ports, so tests can
run beside a developer's own stack. Used by the end-to-end and chaos tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.rabbit import REPO_ROOT, wait_for

SERVICES = ("scanner", "dispatcher", "archiver", "portal")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """A running stack; ``stop()`` must leave no process behind."""

    def __init__(self, home: Path, amqp_url: str, extra_env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.inbox = home / "inbox"
        self.stores = (home / "archive-a", home / "archive-b")
        self.portal_port = free_port()
        self.metrics_ports = {name: free_port() for name in ("scanner", "dispatcher", "archiver")}
        self.password = "e2e-admin-password"
        env = {key: value for key, value in os.environ.items() if not key.startswith("DP3_")}
        env.update(
            DP3_HOME=str(home),
            DP3_AMQP_URL=amqp_url,
            DP3_PORTAL_PORT=str(self.portal_port),
            DP3_ADMIN_PASSWORD=self.password,
            DP3_EMBEDDED_MONGO_PORT=str(free_port()),
            DP3_WORK_QUEUE_PORT=str(free_port()),
            DP3_PROMETHEUS_PORT="0",
            DP3_STABLE_SECONDS="1",
            DP3_RESCAN_SECONDS="2",
            DP3_WORKERS="2",
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
    # give exiting processes a moment to be reaped
    time.sleep(0.1)
    return [pid for pid in found if Path(f"/proc/{pid}").exists()]
