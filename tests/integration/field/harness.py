"""The real ``dp3-field run`` process for tests, and what they read back from it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dp3.ports import free_port
from tests.processes import kill_now, stop_gently


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class AgentProcess:
    home: Path
    folder: Path
    url: str
    token: str
    owner: str
    args: Sequence[str] = ()
    env_extra: dict[str, str] = field(default_factory=dict)
    prefix: Sequence[str] = ()
    """Run under this (e.g. ``ip netns exec NAME``)."""
    status_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DP3_FIELD_HOME": str(self.home),
            "DP3_FIELD_STATUS_PORT": str(self.status_port),
            "DP3_FIELD_STABLE_SECONDS": "0.5",
            "DP3_FIELD_SCAN_SECONDS": "0.5",
            "DP3_FIELD_RECEIPT_SECONDS": "1",
            **self.env_extra,
        }

    def command(self, *words: str) -> list[str]:
        return [*self.prefix, sys.executable, "-m", "dp3_field", *words]

    def pair(self) -> None:
        subprocess.run(
            self.command("pair", self.url, self.token, "--no-browser"),
            env=self.env(),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "agent.log").open("ab")
        self.process = subprocess.Popen(
            self.command("run", str(self.folder), *self.args), env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def kill(self) -> None:
        if self.process is not None:
            kill_now(self.process)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_gently(self.process, 15)
            self.process = None

    def status(self) -> str:
        done = subprocess.run(self.command("status"), env=self.env(), check=True, capture_output=True, text=True)
        return done.stdout

    def log(self) -> str:
        path = self.home / "agent.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def photos(self) -> list[dict[str, Any]]:
        path = self.home / "queue.sqlite3"
        if not path.exists():
            return []
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in db.execute("SELECT * FROM photos ORDER BY id")]
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    def notes(self) -> dict[str, Any]:
        path = self.home / "queue.sqlite3"
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            return {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM notes")}
        finally:
            db.close()
