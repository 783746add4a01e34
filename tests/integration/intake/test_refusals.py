"""Every bad input of issue 18 item 5 gets its own error from the real intake, and nothing reaches the inbox."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from dp3 import devices
from tests.integration.intake.conftest import sha256_of
from tests.integration.intake.harness import IntakeProcess, metadata_header, photo_header

pytestmark = pytest.mark.integration


def creation(intake: IntakeProcess, token: str | None, metadata: dict[str, str], length: int) -> httpx.Response:
    headers = {"Tus-Resumable": "1.0.0", "Upload-Length": str(length), "Upload-Metadata": metadata_header(metadata)}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{intake.url}/files", headers=headers)


def test_each_bad_request_gets_its_error_and_writes_nothing(intake: IntakeProcess, photo: Path, owner: str) -> None:
    device, token = intake.device(owner)
    revoked, revoked_token = intake.device(owner, "stolen laptop")
    intake.revoke(revoked.id)
    good = {"owner": owner, "filename": photo.name, "sha256": sha256_of(photo)}
    size = photo.stat().st_size

    def refused(response: httpx.Response, status: int, error: str) -> None:
        assert response.status_code == status, (error, response.status_code, response.text)
        assert response.json()["error"] == error, response.text
        assert response.json()["detail"]
        assert "location" not in response.headers

    refused(creation(intake, None, good, size), 401, "no_token")
    refused(creation(intake, "dp3d_nothex_x", good, size), 401, "malformed_token")
    refused(creation(intake, devices.new_token(), good, size), 401, "unknown_token")
    refused(creation(intake, devices.new_token(device.id), good, size), 401, "unknown_token")
    refused(creation(intake, revoked_token, good, size), 401, "revoked_token")
    refused(creation(intake, token, {**good, "owner": owner + "-OTHER"}, size), 403, "wrong_owner")
    for name in ("../escape.jpg", "a/b.jpg", "a\\b.jpg", "..", ".hidden.jpg", "x.jpg.part", "nul\0.jpg"):
        refused(creation(intake, token, {**good, "filename": name}, size), 400, "bad_name")
    refused(creation(intake, token, {**good, "sha256": "ABC"}, size), 400, "bad_sha256")
    refused(creation(intake, token, {"owner": owner, "filename": photo.name}, size), 400, "bad_metadata")
    refused(creation(intake, token, good, 3 * 1024**3), 413, "too_large")

    # A preview that is not an image, or is a broken one.
    facts = {"owner": owner, "name": photo.name, "size": size, "captured_at": None}
    preview_headers = {"Authorization": f"Bearer {token}", "DP3-Photo": photo_header(facts)}
    sha = sha256_of(photo)
    not_image = httpx.put(f"{intake.url}/api/previews/{sha}", headers=preview_headers, content=b"%PDF-1.4 hello")
    refused(not_image, 415, "not_an_image")
    truncated = photo.read_bytes()[: size // 3]
    refused(
        httpx.put(f"{intake.url}/api/previews/{sha}", headers=preview_headers, content=truncated), 415, "not_an_image"
    )
    other_owner = {**preview_headers, "DP3-Photo": photo_header({**facts, "owner": owner + "-OTHER"})}
    refused(
        httpx.put(f"{intake.url}/api/previews/{sha}", headers=other_owner, content=photo.read_bytes()),
        403,
        "wrong_owner",
    )
    # Receipts need a token too.
    refused(httpx.get(f"{intake.url}/api/receipts/{sha}"), 401, "no_token")

    assert intake.inbox_files(owner) == [] and intake.inbox_files(owner + "-OTHER") == []
    assert not any((intake.home / "previews").glob(f"{owner}*/*.jpg"))


def test_another_owners_upload_cannot_be_read_written_or_deleted(
    intake: IntakeProcess, photo: Path, owner: str
) -> None:
    _, ann = intake.device(owner)
    _, bob = intake.device(owner + "-OTHER")
    good = {"owner": owner, "filename": photo.name, "sha256": sha256_of(photo)}
    created = creation(intake, ann, good, photo.stat().st_size)
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    as_bob = {"Authorization": f"Bearer {bob}", "Tus-Resumable": "1.0.0"}
    assert httpx.head(url, headers=as_bob).status_code == 404
    patch = {**as_bob, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    assert httpx.patch(url, headers=patch, content=photo.read_bytes()).status_code == 404
    assert httpx.delete(url, headers=as_bob).status_code == 404
    as_ann = {"Authorization": f"Bearer {ann}", "Tus-Resumable": "1.0.0"}
    assert httpx.head(url, headers=as_ann).headers["upload-offset"] == "0"
    wrong = hashlib.sha256(b"x").hexdigest()
    assert (
        httpx.get(f"{intake.url}/api/receipts/{wrong}", headers={"Authorization": f"Bearer {bob}"}).json()["state"]
        == "unknown"
    )
