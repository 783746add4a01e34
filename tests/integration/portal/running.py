"""The real ``dp3-portal`` entry point as a subprocess, for the browser and start-up tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from dp3.ports import free_port
from tests.rabbit import wait_for


class RunningPortal:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        full_env = {**os.environ, **env, "DP3_PORTAL_PORT": str(self.port), "DP3_PORTAL_HOST": "127.0.0.1"}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("dp3-portal"))], env=full_env, stdout=out, stderr=out
            )
        wait_for(self.healthy, 60, f"the portal to answer /healthz (log: {log})", interval=0.2)

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"dp3-portal exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(30)
