"""The portal with the real intake and the real scanner: a device paired in the portal sends a preview first.

Three real processes on one DP3_HOME (as ``make up`` runs them), the embedded
MongoDB-wire server, a real RabbitMQ vhost and the real tus client: the
administrator adds a device in the portal; with its token the intake takes the
preview (a 640x480 rendering of a corpus photo) and a third of the original;
the gallery shows one tile, "original on its way", with the intake's stored
preview; the rest of the original arrives, the scanner detects it in the
inbox, and the tile is the photo's one record. Revoked in the portal, the
token is refused by the intake.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tusclient import client as tus

from dp3.events import preview_id
from dp3.ports import free_port
from tests.integration.intake.harness import IntakeProcess, photo_header
from tests.integration.portal.field import run_portal
from tests.integration.portal.running import RunningPortal
from tests.integration.portal.site import render
from tests.integration.portal.test_field_uploads import logged_in
from tests.rabbit import REPO_ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OWNER = "JAEGER-NICHOLAS"
PHOTO = "jpg/gps/DSCN0010.jpg"


@pytest.fixture
def portal(mongo_url: str, db_name: str, amqp_url: str, dp3_home: Path) -> Iterator[RunningPortal]:
    env = {"DP3_MONGO_URL": mongo_url, "DP3_MONGO_DATABASE": db_name, "DP3_AMQP_URL": amqp_url}
    yield from run_portal(None, env, dp3_home)


@pytest.fixture
def intake(mongo_url: str, db_name: str, amqp_url: str, dp3_home: Path) -> Iterator[IntakeProcess]:
    process = IntakeProcess(
        home=dp3_home,
        mongo_url=mongo_url,
        database=db_name,
        amqp_url=amqp_url,
        env_extra={"DP3_INTAKE_PROGRESS_SECONDS": "0"},  # a report per chunk: the test sees each
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def start_scanner(amqp_url: str, dp3_home: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        env = {
            **os.environ,
            "DP3_HOME": str(dp3_home),
            "DP3_AMQP_URL": amqp_url,
            "DP3_STABLE_SECONDS": "0.5",
            "DP3_RESCAN_SECONDS": "1",
            "DP3_METRICS_PORT": str(free_port()),
        }
        with (dp3_home / "scanner.log").open("ab") as log:
            started.append(
                subprocess.Popen([sys.executable, "-m", "dp3_scanner"], env=env, cwd=REPO_ROOT, stdout=log, stderr=log)
            )

    yield start
    for process in started:
        process.terminate()
        process.wait(20)


def test_a_device_paired_in_the_portal_sends_a_preview_first_and_its_photo_ends_as_one_record(
    portal: RunningPortal, intake: IntakeProcess, start_scanner: Any, corpus: Path, tmp_path: Path
) -> None:
    admin = logged_in(portal)
    added = admin.post(
        "/devices", data={"owner": OWNER, "label": "trench laptop", "csrf_token": admin.cookies["dp3_csrf"]}
    )
    token_found = re.search(r'<code id="device-token">(dp3d_[^<]+)</code>', added.text)
    assert token_found is not None
    token = token_found.group(1)
    auth = {"Authorization": f"Bearer {token}"}

    original = corpus / PHOTO
    data = original.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    preview = tmp_path / "preview.jpg"
    render(original, preview, (640, 480))
    facts = {"owner": OWNER, "name": original.name, "size": len(data), "captured_at": "2008-10-22T16:29:49"}
    sent = httpx.put(
        f"{intake.url}/api/previews/{sha}",
        headers={**auth, "DP3-Photo": photo_header(facts)},
        content=preview.read_bytes(),
        timeout=10,
    )
    assert sent.status_code == 201, sent.text
    metadata = {"owner": OWNER, "filename": original.name, "sha256": sha}
    uploader = tus.TusClient(f"{intake.url}/files", headers=auth).uploader(
        file_path=str(original), chunk_size=len(data) // 3 + 1, metadata=metadata
    )
    uploader.upload(stop_at=len(data) // 3 + 1)  # a third of the original, then the link is "lost" for a while

    def tile() -> str:
        found = re.findall(rf'<a class="tile[^"]*"[^>]*data-sha256="{sha}">.*?</a>', admin.get("/").text, flags=re.S)
        assert len(found) <= 1, found  # never two tiles of one photo
        return found[0] if found else ""

    wait_for(lambda: "33 % arrived" in tile(), 30, "the preview tile with a third of the original arrived")
    assert "original on its way" in tile() and f'data-photo-id="{preview_id(sha)}"' in tile()
    shown = admin.get(f"/api/photos/{preview_id(sha)}/thumbnail")
    assert shown.content == preview.read_bytes()  # the intake's stored preview, served by the portal
    assert admin.get("/api/stats").json()["Detected"] == 0

    uploader.upload()  # the rest: the intake verifies it and places it in the inbox
    assert (intake.inbox / OWNER / original.name).read_bytes() == data
    start_scanner()

    def one_record() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = admin.get("/api/photos").json()["items"]
        return [item for item in items if item["sha256"] == sha]

    wait_for(lambda: [i["status"] for i in one_record()] == ["Detected"], 60, "the scanner's Detected to join it")
    (record,) = one_record()
    assert record["id"].startswith(f"{OWNER}_") and record["id"].endswith(original.name)
    assert record["original_on_its_way"] is False
    history = admin.get(f"/api/photos/{record['id']}").json()["history"]
    assert [item["status"] for item in history] == ["Previewed", "Detected"]
    joined = tile()
    assert "waiting to be rendered" in joined and "original on its way" not in joined
    assert admin.get(f"/api/photos/{record['id']}/thumbnail").content == preview.read_bytes()  # its stand-in
    assert admin.get("/api/stats").json()["Detected"] == 1

    device_id = token.split("_")[1]
    revoked = admin.post(f"/devices/{device_id}/revoke", data={"csrf_token": admin.cookies["dp3_csrf"]})
    assert revoked.status_code == 303
    refused = httpx.put(
        f"{intake.url}/api/previews/{sha}",
        headers={**auth, "DP3-Photo": photo_header(facts)},
        content=preview.read_bytes(),
        timeout=10,
    )
    assert refused.status_code == 401 and refused.json()["error"] == "revoked_token"
