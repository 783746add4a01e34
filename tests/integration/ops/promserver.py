"""A real Prometheus server (Debian's ``prometheus`` binary) for tests, and a small client of its HTTP API.

The server runs on a free port with a throwaway TSDB; ``stop()`` ends it. The
client speaks the documented API (``/api/v1/query``, ``query_range``,
``rules``, ``alerts``, ``targets``, ``metadata``) and fails loudly on an error
answer, so a bad expression can never pass as "no data".
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.rabbit import wait_for

Series = dict[str, Any]


class PrometheusError(AssertionError):
    """Prometheus refused a request (bad expression, bad parameters)."""


class PrometheusServer:
    def __init__(self, workdir: Path, port: int, config_text: str, rules: Mapping[str, str]) -> None:
        if shutil.which("prometheus") is None:
            raise AssertionError("the prometheus server is missing: apt-get install prometheus")
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "rules").mkdir(parents=True, exist_ok=True)
        for name, text in rules.items():
            (workdir / "rules" / name).write_text(text)
        self.config = workdir / "prometheus.yml"
        self.config.write_text(config_text)
        self.log = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._ready, timeout, "prometheus /-/ready", interval=0.2)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    # --- the HTTP API -----------------------------------------------------------

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.post(f"{self.url}/api/v1/{path}", data=params, timeout=30)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[Series]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        data = self.api("query_range", query=expr, start=start, end=end, step=step)
        return list(data["result"])

    def targets(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        return list(response["data"]["activeTargets"])

    def rules(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()
        return [rule for group in response["data"]["groups"] for rule in group["rules"]]

    def firing(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        return [alert for alert in response["data"]["alerts"] if alert["state"] == "firing"]

    def metric_names(self) -> set[str]:
        """Names seen in samples, plus names the targets declared (# TYPE) without a sample yet."""
        names = set(httpx.get(f"{self.url}/api/v1/label/__name__/values", timeout=10).json()["data"])
        metadata = httpx.get(f"{self.url}/api/v1/metadata", timeout=10).json()["data"]
        return names | set(metadata)
