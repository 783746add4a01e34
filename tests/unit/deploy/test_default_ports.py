"""The YAML that cannot import dp3.ports (compose, Prometheus) repeats its numbers; these keep them equal."""

from __future__ import annotations

import yaml

from dp3 import ports
from tests.rabbit import REPO_ROOT

SERVED = {**ports.METRICS, "portal": ports.PORTAL, "intake": ports.INTAKE}


def test_compose_checks_each_service_on_its_default_port() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    for service, port in SERVED.items():
        check = " ".join(compose["services"][service]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in check, service
    assert compose["services"]["dispatcher"]["environment"]["DP3_WORK_QUEUE_PORT"] == str(ports.WORK_QUEUE)


def test_prometheus_scrapes_the_default_ports() -> None:
    local = (REPO_ROOT / "deploy" / "prometheus" / "prometheus.local.yml").read_text()
    compose = (REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    for service, port in SERVED.items():
        assert f'"127.0.0.1:{port}"' in local, service
        assert f"port: {port}\n" in compose, service
