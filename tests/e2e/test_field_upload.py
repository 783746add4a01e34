"""A field upload through the whole stack: the intake's original goes through the unchanged pipeline."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from tusclient import client as tus

from dp3 import devices
from tests.rabbit import wait_for
from tests.stack import Stack, all_photos, export_journal, mongo_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OWNER = "JAEGER-NICHOLAS"


def test_an_uploaded_original_ends_collected_as_one_record_and_then_is_already_had(stack: Stack, corpus: Path) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url(stack))
    try:
        _, token = devices.create(client["dp3"][devices.COLLECTION], owner=OWNER, label="trench laptop")
    finally:
        client.close()
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
