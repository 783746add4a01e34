"""A field upload through the whole stack: the intake's original goes through the unchanged pipeline."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pymongo import MongoClient
from tusclient import client as tus

from dp3 import devices
from tests.rabbit import wait_for
from tests.stack import Stack, all_photos, export_journal, mongo_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OWNER = "JAEGER-NICHOLAS"


def device_token(stack: Stack, label: str) -> str:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url(stack))
    try:
        _, token = devices.create(client["dp3"][devices.COLLECTION], owner=OWNER, label=label)
    finally:
        client.close()
    return token


def test_an_uploaded_original_ends_collected_as_one_record_and_then_is_already_had(stack: Stack, corpus: Path) -> None:
    token = device_token(stack, "trench laptop")
    photo = corpus / "jpg" / "Canon_40D.jpg"
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    base = f"http://127.0.0.1:{stack.intake_port}"
    auth = {"Authorization": f"Bearer {token}"}
    metadata = {"owner": OWNER, "filename": photo.name, "sha256": sha}
    uploader = tus.TusClient(f"{base}/files", headers=auth).uploader(
        file_path=str(photo), chunk_size=64 * 1024, metadata=metadata
    )
    uploader.upload()

    def receipt() -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{base}/api/receipts/{sha}", headers=auth, timeout=10).json()
        return body

    wait_for(lambda: receipt()["state"] == "collected", 240, "the uploaded original collected")
    answer = receipt()
    assert answer["archived"] is True
    assert sorted(answer["verified"]) == sorted(answer["stores"]) and len(answer["stores"]) == 2
    assert not (stack.inbox / OWNER / photo.name).exists()  # the pipeline collected it from the inbox

    records = [item for item in all_photos(stack) if item.get("sha256") == sha]
    assert len(records) == 1, records
    statuses = [entry["status"] for entry in export_journal(stack) if entry.get("sha256") == sha]
    assert statuses.count("Collected") == 1 and statuses.count("Detected") == 1

    # Sent again (a laptop that never got the receipt): no upload is created, no byte is sent.
    meta = ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items())
    again = httpx.post(
        f"{base}/files",
        headers={**auth, "Tus-Resumable": "1.0.0", "Upload-Length": str(photo.stat().st_size), "Upload-Metadata": meta},
    )
    assert again.status_code == 409 and again.headers["dp3-receipt"] == "archived"


def test_a_preview_then_its_original_is_one_tile_then_one_collected_record(stack: Stack, corpus: Path) -> None:
    """The gallery shows the preview at once, never counted; the original joins it: one record, Collected."""
    token = device_token(stack, "dig-house laptop")
    photo = corpus / "jpg" / "Nikon_D70.jpg"
    data = photo.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    base = f"http://127.0.0.1:{stack.intake_port}"
    auth = {"Authorization": f"Bearer {token}"}
    with Image.open(photo) as image:
        image.thumbnail((640, 480))
        preview = io.BytesIO()
        image.convert("RGB").save(preview, "JPEG", quality=80)
    facts = {"owner": OWNER, "name": photo.name, "size": len(data), "captured_at": None}
    header = base64.b64encode(json.dumps(facts).encode()).decode()
    sent = httpx.put(
        f"{base}/api/previews/{sha}", headers={**auth, "DP3-Photo": header}, content=preview.getvalue(), timeout=10
    )
    assert sent.status_code == 201, sent.text
    stats_before = stack.api("/api/stats")

    def tiles() -> list[dict[str, Any]]:
        return [item for item in all_photos(stack) if item.get("sha256") == sha]

    wait_for(lambda: len(tiles()) == 1 and tiles()[0]["original_on_its_way"], 60, "the preview's tile in the gallery")
    assert tiles()[0]["id"] == f"preview:{sha}"
    assert stack.api("/api/stats") == stats_before  # a preview is never counted as a photo

    metadata = {"owner": OWNER, "filename": photo.name, "sha256": sha}
    tus.TusClient(f"{base}/files", headers=auth).uploader(
        file_path=str(photo), chunk_size=64 * 1024, metadata=metadata
    ).upload()
    wait_for(
        lambda: httpx.get(f"{base}/api/receipts/{sha}", headers=auth, timeout=10).json()["state"] == "collected",
        240,
        "the original collected",
    )
    wait_for(lambda: [item["status"] for item in tiles()] == ["Collected"], 60, "the catalog's one record Collected")
    (record,) = tiles()  # one record: the preview joined its original
    assert not record["original_on_its_way"] and not record["id"].startswith("preview:")
    assert stack.api("/api/stats")["Collected"] == stats_before["Collected"] + 1
