"""The head node for real: docker-compose.yml as shipped, on a real Docker engine.

One override (deploy/docker/compose.local.yml) swaps only the images this
machine cannot pull. The tests share one stack and run in file order, each
adding photos; every check is made through the containers, their published
ports and their volumes.
"""

from __future__ import annotations

import os
import signal
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from dp3 import ports
from tests.compose.stack import DP3_SERVICES, SECRETS, ComposeStack, drop_photos, run, wait_collected
from tests.rabbit import wait_for

pytestmark = [pytest.mark.compose, pytest.mark.slow]

# Small real camera JPEGs from the corpus, distinct files: the stack, not the render, is under test.
CAMERAS = (
    "Canon_40D.jpg",
    "Canon_DIGITAL_IXUS_400.jpg",
    "Canon_PowerShot_S40.jpg",
    "Fujifilm_FinePix6900ZOOM.jpg",
    "Fujifilm_FinePix_E500.jpg",
    "Kodak_CX7530.jpg",
    "Konica_Minolta_DiMAGE_Z3.jpg",
    "Nikon_COOLPIX_P1.jpg",
    "Nikon_D70.jpg",
    "Olympus_C8080WZ.jpg",
    "Panasonic_DMC-FZ30.jpg",
    "Pentax_K10D.jpg",
    "Ricoh_Caplio_RR330.jpg",
    "Samsung_Digimax_i50_MP3.jpg",
    "Sony_HDR-HC3.jpg",
    "Canon_40D_photoshop_import.jpg",
    "long_description.jpg",
)
STORES = ("archive-a", "archive-b")
METRICS_PORTS = {**ports.METRICS, "portal": ports.PORTAL}
# Where each service writes, as the compose file mounts it (named volumes and the inbox bind mount).
WRITABLE = {
    "scanner": ["/var/lib/dp3"],
    "dispatcher": ["/staging"],
    "archiver": ["/inbox", "/staging", "/stores/archive-a", "/stores/archive-b"],
    "intake": ["/inbox", "/var/lib/dp3", "/previews"],
    "rabbitmq": ["/var/lib/rabbitmq"],
    "mongodb": ["/data/db"],
    "prometheus": ["/prometheus"],
}


def photos(corpus: Path, first: int, count: int) -> list[Path]:
    return [corpus / "jpg" / name for name in CAMERAS[first : first + count]]


def originals_in_stores(stack: ComposeStack, dropped: dict[str, str]) -> None:
    """Each dropped photo is in both stores exactly once, byte for byte (the sidecar and artifacts beside it)."""
    for store in STORES:
        files = stack.store_files(store)
        for name, digest in dropped.items():
            basename = name.split("/", 1)[1]
            copies = [path for path in files if path.endswith("_" + basename)]
            assert len(copies) == 1, f"{store}: {name} stored {len(copies)} times: {copies}"
            assert files[copies[0]] == digest, f"{store}: {copies[0]} differs from the original"


def test_compose_refuses_to_start_without_the_secrets(base_image: str, tmp_path: Path) -> None:
    stack = ComposeStack(f"dp3nosecrets{os.getpid()}", tmp_path, base_image)
    for missing in SECRETS:
        lines = [line for line in stack.env_file.read_text().splitlines() if not line.startswith(missing)]
        env_file = tmp_path / f"without-{missing}.env"
        env_file.write_text("\n".join(lines) + "\n")
        with pytest.raises(AssertionError, match=f"set {missing} in deploy/.env"):
            run(stack.compose_command("up", "-d", env_file=env_file), env=stack.env)
    assert stack.containers() == []


def test_photos_end_collected_in_both_stores_and_in_the_gallery(compose_stack: ComposeStack, corpus: Path) -> None:
    stack = compose_stack
    dropped = drop_photos(stack.inbox, "alice", photos(corpus, 0, 2))
    dropped |= drop_photos(stack.inbox, "bob", photos(corpus, 2, 2))
    wait_collected(stack, len(dropped))
    assert stack.stats()["Failed"] == 0
    assert [p for p in stack.inbox.rglob("*") if p.is_file()] == [], "originals are deleted once stored twice"
    originals_in_stores(stack, dropped)

    # The gallery, over HTTP from the host, through the port published on 127.0.0.1.
    listed = stack.api("/api/photos", limit=50)["items"]
    assert {item["owner"] for item in listed} == {"alice", "bob"}
    assert len(listed) == len(dropped)
    page = stack.get("/")
    assert page.status_code == 200
    for item in listed:
        assert item["id"] in page.text
        thumbnail = stack.get(f"/api/photos/{item['id']}/thumbnail")
        assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"


def test_every_service_runs_as_non_root_and_writes_its_volumes(compose_stack: ComposeStack) -> None:
    for container in compose_stack.containers():
        service = compose_stack.service_of(container)
        uid = compose_stack.exec(container, "id", "-u").strip()
        assert uid != "0", f"{service} runs as root"
        for folder in WRITABLE.get(service, []):
            probe = f"{folder}/.dp3-write-probe"
            compose_stack.exec(container, "sh", "-c", f"echo probe > {probe} && rm {probe}")


def test_prometheus_scrapes_every_target_as_up(compose_stack: ComposeStack) -> None:
    expected = {*DP3_SERVICES, "rabbitmq", "prometheus"}

    def all_up() -> bool:
        targets = compose_stack.prometheus_targets()
        return {t["labels"]["job"] for t in targets} == expected and all(t["health"] == "up" for t in targets)

    try:
        wait_for(all_up, 90, "every Prometheus target up", interval=2)
    except AssertionError:
        print([(t["labels"]["job"], t["health"], t.get("lastError")) for t in compose_stack.prometheus_targets()])
        raise


def test_scaled_workers_connect_and_scaled_archivers_share_the_work(compose_stack: ComposeStack, corpus: Path) -> None:
    stack = compose_stack
    before = stack.stats()["Collected"]
    stack.up("--scale", "worker=3", "--scale", "archiver=2")
    assert len(stack.containers("worker")) == 3 and len(stack.containers("archiver")) == 2
    dispatcher = stack.containers("dispatcher")[0]
    wait_for(
        lambda: stack.metric(dispatcher, ports.DISPATCHER_METRICS, "dp3_dispatcher_workers_connected") == 3,
        60,
        "three workers connected to the dispatcher",
        interval=1,
    )
    archivers = stack.containers("archiver")
    collected_before = [stack.metric(a, ports.ARCHIVER_METRICS, "dp3_archiver_collected_total") for a in archivers]
    dropped = drop_photos(stack.inbox, "carol", photos(corpus, 4, 6))
    wait_collected(stack, before + len(dropped))
    originals_in_stores(stack, dropped)
    collected_after = [stack.metric(a, ports.ARCHIVER_METRICS, "dp3_archiver_collected_total") for a in archivers]
    collected = [after - b for after, b in zip(collected_after, collected_before, strict=True)]
    # Competing consumers: each replica collected some, and together exactly the photos (none twice).
    assert all(n > 0 for n in collected) and sum(collected) == len(dropped), collected


def host_pid(container: dict[str, Any]) -> int:
    return int(run(["docker", "inspect", "-f", "{{.State.Pid}}", container["Id"]]).strip())


def restarts(container: dict[str, Any]) -> int:
    return int(run(["docker", "inspect", "-f", "{{.RestartCount}}", container["Id"]]).strip())


def crash_and_wait_for_restart(container: dict[str, Any], service: str) -> None:
    count = restarts(container)
    os.kill(host_pid(container), signal.SIGKILL)
    wait_for(lambda: restarts(container) > count, 60, f"{service} restarted by its policy", interval=1)


def test_a_killed_service_comes_back_and_nothing_is_lost_or_stored_twice(
    compose_stack: ComposeStack, corpus: Path
) -> None:
    stack = compose_stack
    before = stack.stats()["Collected"]
    dropped = drop_photos(stack.inbox, "dave", photos(corpus, 10, 6))
    # A crash: the main process of every container SIGKILLed from the host, one after another while
    # the photos go through. The restart policy alone must bring each back.
    for service in (*DP3_SERVICES, "worker", "rabbitmq", "mongodb"):
        crash_and_wait_for_restart(stack.containers(service)[0], service)
    stack.wait_healthy()
    # `docker kill` is a stop by hand: Docker disables the restart policy until the next start
    # (docker-kill(1)), so the operator's `up -d` brings the container back; nothing is lost either.
    for service in DP3_SERVICES:
        run(["docker", "kill", stack.containers(service)[0]["Id"]])
    assert not stack.healthy()
    stack.up("--scale", "worker=3", "--scale", "archiver=2")
    wait_collected(stack, before + len(dropped), timeout=300)
    assert stack.stats()["Failed"] == 0
    originals_in_stores(stack, dropped)


def test_down_then_up_keeps_the_catalog_the_stores_and_the_journal(compose_stack: ComposeStack) -> None:
    stack = compose_stack
    stats = stack.stats()
    photos_before = {item["id"] for item in stack.api("/api/photos", limit=100)["items"]}
    stores_before = {store: stack.store_files(store) for store in STORES}
    stack.down()
    assert stack.containers() == []
    stack.up()
    wait_for(lambda: stack.stats() == stats, 60, "the catalog's counts as before `down`", interval=1)
    assert {item["id"] for item in stack.api("/api/photos", limit=100)["items"]} == photos_before
    # Each store holds every photo's journal beside it (the .json sidecar): unchanged, as are the copies.
    assert {store: stack.store_files(store) for store in STORES} == stores_before
    response = httpx.get(f"http://127.0.0.1:{stack.portal_port}/healthz", timeout=5)
    assert response.status_code == 200


def test_the_condor_profile_renders_with_htcondor_jobs_as_workers(
    compose_stack: ComposeStack, trixie_base: str, corpus: Path
) -> None:
    """No `worker` containers: the photos can only be rendered by workers the factory ran as HTCondor jobs."""
    stack = compose_stack
    stack.env["DP3_LOCAL_TRIXIE_BASE"] = trixie_base
    stack.set("DP3_WORKERS_MIN", "1")
    stack.compose("--profile", "condor", "build", "condor", timeout=1800)
    stack.compose("--profile", "condor", "up", "-d", "--scale", "worker=0")
    dispatcher = stack.containers("dispatcher")[0]
    condor = stack.containers("condor")[0]
    try:
        wait_for(
            lambda: stack.metric(dispatcher, ports.DISPATCHER_METRICS, "dp3_dispatcher_workers_connected") == 1,
            180,
            "an HTCondor job's worker connected to the dispatcher",
            interval=2,
        )
    except AssertionError:
        print(stack.compose("logs", "--tail", "40", "condor"))
        raise
    # The factory's jobs: its worker wrapper (condor.sh), submitted by the unprivileged user.
    # A loaded schedd may not answer one query in condor_q's own timeout: ask until it does.
    jobs: list[str] = []

    def running_jobs() -> bool:
        nonlocal jobs
        try:
            jobs = stack.exec(condor, "condor_q", "-allusers", "-run", "-af", "Owner", "Cmd").splitlines()
        except AssertionError as error:
            print(f"condor_q: {error}")
            return False
        return bool(jobs)

    wait_for(running_jobs, 60, "condor_q lists the factory's running jobs", interval=3)
    assert all(job.split() == ["dp3", "/tmp/dp3-factory/condor.sh"] for job in jobs), jobs
    before = stack.stats()["Collected"]
    dropped = drop_photos(stack.inbox, "erin", photos(corpus, 16, 1))
    wait_collected(stack, before + len(dropped))
    originals_in_stores(stack, dropped)
    stack.compose("--profile", "condor", "rm", "-f", "-s", "condor")
    stack.up()


def test_the_gallery_over_https_through_caddy(compose_stack: ComposeStack, tmp_path: Path) -> None:
    """The `tls` profile with Caddy's own CA (DP3_TLS=internal): what a real certificate changes is only its issuer."""
    stack = compose_stack
    stack.set("DP3_SECURE_COOKIES", "true")
    stack.compose("--profile", "tls", "up", "-d")
    stack.wait_healthy()
    caddy = stack.containers("caddy")[0]
    assert stack.exec(caddy, "id", "-u").strip() != "0"
    root = tmp_path / "caddy-root.crt"
    wait_for(
        lambda: stack.exec(caddy, "sh", "-c", "ls /data/caddy/pki/authorities/local/ 2>/dev/null") != "",
        30,
        "Caddy's local CA",
        interval=1,
    )
    root.write_text(stack.exec(caddy, "cat", "/data/caddy/pki/authorities/local/root.crt"))
    site = f"https://localhost:{stack.https_port}"
    with httpx.Client(base_url=site, verify=ssl.create_default_context(cafile=str(root)), timeout=10) as client:
        wait_for(lambda: https_answers(client), 60, "the gallery over HTTPS", interval=1)
        form = client.get("/login")
        token = form.cookies.get("dp3_csrf") or client.cookies.get("dp3_csrf")
        login = client.post(
            "/login",
            data={"username": "admin", "password": stack.password, "csrf_token": token, "next": "/"},
        )
        assert login.status_code == 303, login.text
        assert "secure" in login.headers["set-cookie"].lower(), login.headers["set-cookie"]
        assert client.get("/").status_code == 200
        assert client.get("/metrics").status_code == 404, "/metrics stays inside the compose network"
    plain = httpx.get(f"http://127.0.0.1:{stack.http_port}/", headers={"Host": "localhost"}, timeout=10)
    assert plain.status_code in (301, 308) and plain.headers["location"] == "https://localhost/"


def https_answers(client: httpx.Client) -> bool:
    try:
        return client.get("/login").status_code == 200
    except httpx.HTTPError:
        return False
