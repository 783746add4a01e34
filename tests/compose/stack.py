"""docker-compose.yml on a real Docker engine, with deploy/docker/compose.local.yml.

The stack runs under its own compose project name, so its containers, network
and volumes are fresh and nobody else's. The host reaches it only through the
ports the compose file publishes on 127.0.0.1 (here: free ones, through the
compose file's ``*_PUBLISH`` variables).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from dp3.ports import free_port
from tests.rabbit import REPO_ROOT, wait_for

COMPOSE_FILES = (REPO_ROOT / "docker-compose.yml", REPO_ROOT / "deploy" / "docker" / "compose.local.yml")
DP3_SERVICES = ("scanner", "dispatcher", "archiver", "portal", "intake")
# Everything the runtime test starts: the shipped file minus Grafana (no image here) and the profiles.
RUNTIME_SERVICES = (*DP3_SERVICES, "rabbitmq", "mongodb", "prometheus", "worker")
SECRETS = {
    "RABBITMQ_PASSWORD": "compose-test-rabbit",
    "MONGO_PASSWORD": "compose-test-mongo",
    "GRAFANA_ADMIN_PASSWORD": "compose-test-grafana",
    "DP3_ADMIN_PASSWORD": "compose-test-admin",
    "DP3_SECRET_KEY": "compose-test-secret-key",
}


def run(command: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 600) -> str:
    """A command's stdout; its whole output in the failure when it fails."""
    result = subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ComposeStack:
    """One compose project: ``compose(...)`` runs docker-compose on it, the rest looks at it."""

    def __init__(self, project: str, workdir: Path, base_image: str) -> None:
        self.project = project
        self.inbox = workdir / "inbox"
        self.env_file = workdir / "compose.env"
        self.portal_port = free_port()
        self.prometheus_port = free_port()
        self.rabbitmq_admin_port = free_port()
        self.https_port = free_port()
        self.http_port = free_port()
        self.password = SECRETS["DP3_ADMIN_PASSWORD"]
        settings = {
            **SECRETS,
            "DP3_INBOX_HOST_PATH": str(self.inbox),
            "PORTAL_PUBLISH": f"127.0.0.1:{self.portal_port}",
            "PROMETHEUS_PUBLISH": f"127.0.0.1:{self.prometheus_port}",
            "RABBITMQ_ADMIN_PUBLISH": f"127.0.0.1:{self.rabbitmq_admin_port}",
            "GRAFANA_PUBLISH": f"127.0.0.1:{free_port()}",
            "HTTPS_PUBLISH": f"127.0.0.1:{self.https_port}",
            "HTTP_PUBLISH": f"127.0.0.1:{self.http_port}",
        }
        self.env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        self.env = {**os.environ, "DP3_LOCAL_BASE": base_image}

    # --- driving it -------------------------------------------------------------------------

    def compose_command(self, *args: str, env_file: Path | None = None) -> list[str]:
        binary = shutil.which("docker-compose")
        assert binary, "docker-compose (Debian package docker-compose) is needed"
        files = [arg for path in COMPOSE_FILES for arg in ("-f", str(path))]
        return [binary, "-p", self.project, *files, "--env-file", str(env_file or self.env_file), *args]

    def set(self, name: str, value: str) -> None:
        """One more setting in the stack's env file (the last line for a name wins)."""
        with self.env_file.open("a") as env:
            env.write(f"{name}={value}\n")

    def compose(self, *args: str, timeout: float = 900) -> str:
        return run(self.compose_command(*args), env=self.env, timeout=timeout)

    def up(self, *args: str) -> None:
        self.compose("up", "-d", *args)
        self.wait_healthy()

    # --- looking at it ----------------------------------------------------------------------

    def containers(self, service: str | None = None) -> list[dict[str, Any]]:
        """``docker inspect`` of the project's containers (of one service)."""
        labels = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            labels += ["--filter", f"label=com.docker.compose.service={service}"]
        ids = run(["docker", "ps", "-aq", *labels]).split()
        return json.loads(run(["docker", "inspect", *ids])) if ids else []

    def service_of(self, container: dict[str, Any]) -> str:
        return str(container["Config"]["Labels"]["com.docker.compose.service"])

    def healthy(self) -> bool:
        containers = self.containers()
        if {self.service_of(c) for c in containers} < set(RUNTIME_SERVICES):
            return False
        for container in containers:
            state = container["State"]
            if state["Status"] != "running":
                return False
            if "Health" in state and state["Health"]["Status"] != "healthy":
                return False
        return True

    def wait_healthy(self, timeout: float = 240) -> None:
        try:
            wait_for(self.healthy, timeout, "every container running and healthy", interval=1)
        except AssertionError:
            print(self.compose("ps"), self.compose("logs", "--tail", "30"))
            raise

    def exec(self, container: dict[str, Any], *command: str) -> str:
        return run(["docker", "exec", container["Id"], *command], timeout=60)

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"http://127.0.0.1:{self.portal_port}{path}", params=params, auth=("admin", self.password), timeout=10
        )
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.portal_port}{path}", auth=("admin", self.password), timeout=10)

    def stats(self) -> dict[str, int]:
        try:
            stats = self.api("/api/stats")
        except httpx.HTTPError:
            return {}
        assert isinstance(stats, dict)
        return stats

    def volume_path(self, volume: str) -> Path:
        """Where a named volume's files are on this host (we are root: read them in place)."""
        return Path(run(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", f"{self.project}_{volume}"]).strip())

    def store_files(self, volume: str) -> dict[str, str]:
        """``{path in the store: sha256}`` of every photo file in a store volume (not its marker)."""
        root = self.volume_path(volume)
        return {
            str(path.relative_to(root)): sha256_file(path)
            for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        }

    def metric(self, container: dict[str, Any], port: int, name: str) -> float:
        """One unlabelled sample of a service's /metrics, read inside its container."""
        script = (
            "import re, urllib.request;"
            f"text = urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode();"
            f"print(sum(float(v) for v in re.findall(r'^{name}(?:{{[^}}]*}})? (\\S+)$', text, re.M)))"
        )
        return float(self.exec(container, "python", "-c", script))

    def prometheus_targets(self) -> list[dict[str, Any]]:
        response = httpx.get(f"http://127.0.0.1:{self.prometheus_port}/api/v1/targets", timeout=10)
        response.raise_for_status()
        targets = response.json()["data"]["activeTargets"]
        assert isinstance(targets, list)
        return targets

    def down(self, *args: str) -> None:
        # With every profile the tests start, so that none of their containers stays.
        self.compose("--profile", "tls", "--profile", "condor", "down", "--remove-orphans", *args)


def wait_collected(stack: ComposeStack, count: int, timeout: float = 240) -> None:
    def settled() -> bool:
        stats = stack.stats()
        return stats.get("Collected") == count

    try:
        wait_for(settled, timeout, f"{count} photos Collected", interval=1)
    except AssertionError:
        print(stack.stats(), stack.compose("logs", "--tail", "40"))
        raise


def drop_photos(inbox: Path, owner: str, sources: list[Path]) -> dict[str, str]:
    """Copy photos into ``inbox/<owner>/`` as a sync client would: ``{name: sha256}``."""
    folder = inbox / owner
    folder.mkdir(parents=True, exist_ok=True)
    dropped = {}
    for source in sources:
        target = folder / source.name
        shutil.copyfile(source, target)
        dropped[f"{owner}/{source.name}"] = sha256_file(target)
    return dropped
