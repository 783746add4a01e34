"""The real intake process for tests: a subprocess on a free port, a real MongoDB-wire server, real files."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from dp3 import devices
from dp3.ports import free_port
from tests.processes import kill_now, stop_gently


@dataclass
class IntakeProcess:
    home: Path
    mongo_url: str
    database: str
    amqp_url: str
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def uploads(self) -> Path:
        return self.home / "intake" / "uploads"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DP3_HOME": str(self.home),
            "DP3_MONGO_URL": self.mongo_url,
            "DP3_MONGO_DATABASE": self.database,
            "DP3_AMQP_URL": self.amqp_url,
            "DP3_INTAKE_PORT": str(self.port),
            "DP3_INTAKE_HOST": "127.0.0.1",
            **self.env_extra,
        }

    def start(self, timeout: float = 30.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "intake.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dp3_intake"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"intake exited {self.process.returncode}: {self.log()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"intake not healthy in {timeout}s: {self.log()[-2000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no chance to flush or clean anything."""
        if self.process is not None:
            kill_now(self.process)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_gently(self.process, 10)
            self.process = None

    def log(self) -> str:
        path = self.home / "intake.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def device(self, owner: str, label: str = "test laptop") -> tuple[devices.DeviceRecord, str]:
        client: MongoClient[dict[str, Any]] = MongoClient(self.mongo_url)
        try:
            return devices.create(client[self.database][devices.COLLECTION], owner=owner, label=label)
        finally:
            client.close()

    def revoke(self, device_id: str) -> None:
        client: MongoClient[dict[str, Any]] = MongoClient(self.mongo_url)
        try:
            devices.revoke(client[self.database][devices.COLLECTION], device_id)
        finally:
            client.close()

    def inbox_files(self, owner: str) -> list[Path]:
        """Every file in ``owner``'s inbox folder, temporary ones included."""
        folder = self.inbox / owner
        if not folder.exists():
            return []
        return sorted(path for path in folder.rglob("*") if path.is_file())


def metadata_header(values: dict[str, str]) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


def photo_header(facts: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(facts).encode()).decode()
