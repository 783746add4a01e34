"""docker-compose.yml and the Dockerfiles, checked statically (tests/compose runs them on a real engine)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rabbit import REPO_ROOT

DOCKERFILES = sorted(
    [
        *REPO_ROOT.glob("services/*/Dockerfile"),
        *REPO_ROOT.glob("deploy/docker/*.Dockerfile"),
        *REPO_ROOT.glob("deploy/docker/local/*.Dockerfile"),
    ]
)
ENV_EXAMPLE = REPO_ROOT / "deploy" / "env.example"
SERVICES = ("scanner", "dispatcher", "archiver", "portal", "intake")


def compose(*args: str, env_file: Path | None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose (Debian package docker-compose) is needed to validate the compose file")
    command = [binary, "-f", str(REPO_ROOT / "docker-compose.yml")]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    return subprocess.run([*command, *args], capture_output=True, text=True, check=False, cwd=REPO_ROOT)


@pytest.fixture
def filled_env(tmp_path: Path) -> Path:
    lines = [line if not line.endswith("=") else line + "secret" for line in ENV_EXAMPLE.read_text().splitlines()]
    path = tmp_path / "test.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_compose_file_is_valid_with_secrets(filled_env: Path) -> None:
    result = compose("config", "-q", env_file=filled_env)
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose("config", "-q", env_file=empty)
    assert result.returncode != 0
    assert "set RABBITMQ_PASSWORD in deploy/.env" in result.stderr


def test_validation_catches_a_wrong_depends_on_condition(filled_env: Path, tmp_path: Path) -> None:
    # The check above must be able to fail: a broken copy is rejected.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((REPO_ROOT / "docker-compose.yml").read_text().replace("service_healthy", "service_happy", 1))
    binary = shutil.which("docker-compose") or "docker-compose"
    result = subprocess.run(
        [binary, "-f", str(broken), "--env-file", str(filled_env), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode != 0


def resolved_compose(filled_env: Path) -> dict[str, object]:
    result = compose("config", env_file=filled_env)
    assert result.returncode == 0, result.stderr
    import yaml

    loaded = yaml.safe_load(result.stdout)
    assert isinstance(loaded, dict)
    return loaded


def test_every_service_has_healthcheck_restart_and_health_gated_dependencies(filled_env: Path) -> None:
    services = resolved_compose(filled_env)["services"]
    assert isinstance(services, dict)
    for name in (*SERVICES, "rabbitmq", "mongodb", "prometheus", "grafana", "caddy"):
        service = services[name]
        assert "healthcheck" in service, name
        assert service.get("restart") == "unless-stopped", name
    for name in SERVICES:
        conditions = {dep["condition"] for dep in services[name]["depends_on"].values()}
        assert conditions == {"service_healthy"}, name
    assert services["condor"]["profiles"] == ["condor"]
    assert services["caddy"]["profiles"] == ["tls"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, json.loads(result.stdout or "[]")
    text = dockerfile.read_text()
    if dockerfile.name != "condor.Dockerfile":  # condor_master starts as root, then drops to its users
        users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
        assert users and users[-1].isdigit() and users[-1] != "0", "images run as a numeric non-root user"
    assert ":latest" not in text.split("\n", 3)[-1], "pinned base images"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_command_is_the_local_entry_point(service: str, filled_env: Path) -> None:
    """The image runs the same console script `make up` runs; it exists and starts here."""
    services = resolved_compose(filled_env)["services"]
    assert isinstance(services, dict)
    command = services[service]["command"]
    assert command == [f"dp3-{service}"]
    build = services[service]["build"]
    if service == "dispatcher":  # the one image with a compiler stage
        assert build["dockerfile"] == "services/dispatcher/Dockerfile"
        assert 'CMD ["dp3-dispatcher"]' in (REPO_ROOT / "services" / "dispatcher" / "Dockerfile").read_text()
    else:  # one Dockerfile for the others: the SERVICE argument picks the package and the command
        assert build["dockerfile"] == "deploy/docker/service.Dockerfile" and build["args"]["SERVICE"] == service
        assert (REPO_ROOT / "services" / service / "pyproject.toml").is_file()
    entry = Path(sys.executable).parent / command[0]
    assert entry.exists(), f"{entry} is not installed"
    # A bad setting makes the entry point explain itself in one line and exit 2:
    # proof that it is the real service start-up, not a stub.
    result = subprocess.run(
        [str(entry)],
        env={"DP3_TIMEZONE": "Nowhere/Land", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"dp3-{service}: bad configuration: DP3_TIMEZONE")
