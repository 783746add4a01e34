"""Previews and receipts through the real intake, its real journal queue and real store copies."""

from __future__ import annotations

import json
import shutil
import time
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest

from dp3 import layout
from dp3.broker import Publisher
from dp3.events import JournalEntry, Status, make_photo_id
from dp3.topology import QueueSpec
from tests.integration.intake.conftest import sha256_of
from tests.integration.intake.harness import IntakeProcess, metadata_header, photo_header

pytestmark = pytest.mark.integration

TAKEN = 1355517208
UTC = zoneinfo.ZoneInfo("UTC")


def journal_listener(amqp_url: str) -> Callable[[], list[dict[str, Any]]]:
    """Every photo.previewed / photo.uploading on the journal since now."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.exchange_declare("dp3.journal", "topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    for key in ("photo.previewed", "photo.uploading"):
        channel.queue_bind(queue, "dp3.journal", key)

    def received() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append(json.loads(body))

    return received


def archive(stores: list[Path], photo: Path, publisher: Publisher, *, owner: str) -> JournalEntry:
    """What the archiver leaves behind: a verified copy per store, and the event."""
    photo_id = make_photo_id(owner, TAKEN, photo.name)
    folders = [root / layout.date_folder(TAKEN, UTC) for root in stores]
    for folder in folders:
        folder.mkdir(exist_ok=True)
        shutil.copyfile(photo, folder / photo_id)
    entry = JournalEntry(
        id=photo_id,
        status=Status.ARCHIVED,
        datetime=TAKEN,
        owner=owner,
        path=f"/inbox/{owner}/{photo.name}",
        sha256=sha256_of(photo),
        size=photo.stat().st_size,
        archives=[str(folder) for folder in folders],
        service="archiver",
    )
    publisher.publish(entry)
    return entry


def gather(found: list[dict[str, Any]], events: Callable[[], list[dict[str, Any]]]) -> bool:
    found.extend(events())
    return True


def receipt_of(intake: IntakeProcess, token: str, sha256: str) -> dict[str, Any]:
    response = httpx.get(f"{intake.url}/api/receipts/{sha256}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_preview_is_stored_once_and_announced_as_previewed(
    intake_with_stores: IntakeProcess, photo: Path, small_photo: Path, owner: str
) -> None:
    intake = intake_with_stores
    _, token = intake.device(owner)
    events = journal_listener(intake.amqp_url)
    sha = sha256_of(photo)
    facts = {"owner": owner, "name": photo.name, "size": photo.stat().st_size, "captured_at": "2012-12-14T20:33:28"}
    headers = {"Authorization": f"Bearer {token}", "DP3-Photo": photo_header(facts)}
    first = httpx.put(f"{intake.url}/api/previews/{sha}", headers=headers, content=small_photo.read_bytes())
    assert first.status_code == 201, first.text
    again = httpx.put(f"{intake.url}/api/previews/{sha}", headers=headers, content=small_photo.read_bytes())
    assert again.status_code == 200
    stored = intake.home / "previews" / owner / f"{sha}.jpg"
    assert stored.read_bytes() == small_photo.read_bytes()
    assert intake.inbox_files(owner) == []  # a preview is never an original
    found: list[dict[str, Any]] = []
    wait_for(lambda: gather(found, events) and bool(found))
    (previewed,) = [event for event in found if event["status"] == "Previewed"]
    assert previewed["id"] == f"preview:{sha}" and previewed["sha256"] == sha
    assert previewed["owner"] == owner and previewed["path"].endswith(f"/{owner}/{photo.name}")
    assert previewed["meta"] == {"preview": f"{owner}/{sha}.jpg"}
    assert previewed["datetime"] == TAKEN
    state = receipt_of(intake, token, sha)
    assert state["state"] == "preview" and state["archived"] is False


def test_upload_progress_is_announced_up_to_completion(
    intake_with_stores: IntakeProcess, photo: Path, owner: str
) -> None:
    from tests.integration.intake.test_uploads import uploader

    intake = intake_with_stores
    _, token = intake.device(owner)
    events = journal_listener(intake.amqp_url)
    uploader(intake.url, token, photo, chunk=128 * 1024, owner=owner).upload()
    size = photo.stat().st_size
    found: list[dict[str, Any]] = []
    wait_for(lambda: gather(found, events) and any(e["meta"]["offset"] == size for e in found))
    offsets = [event["meta"]["offset"] for event in found if event["status"] == "Uploading"]
    assert offsets[-1] == size and all(event["meta"]["length"] == size for event in found)
    assert {event["id"] for event in found} == {f"preview:{sha256_of(photo)}"}


def test_archived_means_a_verified_copy_in_every_store_and_then_no_bytes_are_taken(
    intake_with_stores: IntakeProcess, stores: list[Path], photo: Path, owner: str
) -> None:
    intake = intake_with_stores
    _, token = intake.device(owner)
    _, bob = intake.device(owner + "-OTHER")
    sha = sha256_of(photo)
    assert receipt_of(intake, token, sha) == {
        "sha256": sha,
        "archived": False,
        "stores": [],
        "verified": [],
        "state": "unknown",
    } | {"stores": [str(root) for root in stores]}
    publisher = Publisher(intake.amqp_url)
    entry = archive(stores, photo, publisher, owner=owner)
    wait_for(lambda: receipt_of(intake, token, sha)["archived"])
    answer = receipt_of(intake, token, sha)
    assert answer["verified"] == [str(root) for root in stores] and answer["state"] == "archived"
    assert receipt_of(intake, bob, sha)["state"] == "unknown"  # another owner's photo is not told

    # Many photos in one question: the same answers, in the order asked, each photo once.
    unknown = "0" * 64
    asked = httpx.post(
        f"{intake.url}/api/receipts",
        headers={"Authorization": f"Bearer {token}"},
        json={"sha256": [unknown, sha, unknown]},
    )
    assert asked.status_code == 200, asked.text
    assert asked.json() == {"receipts": [receipt_of(intake, token, unknown), answer]}
    told_bob = httpx.post(
        f"{intake.url}/api/receipts", headers={"Authorization": f"Bearer {bob}"}, json={"sha256": [sha]}
    )
    assert told_bob.json()["receipts"][0]["state"] == "unknown"
    bad = httpx.post(f"{intake.url}/api/receipts", headers={"Authorization": f"Bearer {token}"}, content=b"{")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"
    anonymous = httpx.post(f"{intake.url}/api/receipts", json={"sha256": [sha]})
    assert anonymous.status_code == 401

    # One rotten copy: no longer archived (the collector would keep the original too).
    rotten = Path(entry.archives[1]) / entry.id
    rotten.write_bytes(b"\0" + photo.read_bytes()[1:])
    answer = receipt_of(intake, token, sha)
    assert answer["archived"] is False and answer["verified"] == [str(stores[0])]
    shutil.copyfile(photo, rotten)

    # Archived: a new upload of it is refused before any byte is sent; the preview is not shown.
    meta = metadata_header({"owner": owner, "filename": photo.name, "sha256": sha})
    headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", "Upload-Metadata": meta}
    created = httpx.post(f"{intake.url}/files", headers={**headers, "Upload-Length": str(photo.stat().st_size)})
    assert created.status_code == 409 and created.json()["error"] == "already_have_it"
    assert created.headers["dp3-receipt"] == "archived" and "location" not in created.headers
    facts = {"owner": owner, "name": photo.name, "size": photo.stat().st_size, "captured_at": None}
    preview = httpx.put(
        f"{intake.url}/api/previews/{sha}",
        headers={"Authorization": f"Bearer {token}", "DP3-Photo": photo_header(facts)},
        content=photo.read_bytes(),
    )
    assert preview.status_code == 200 and preview.json()["outcome"] == "archived"
    assert intake.inbox_files(owner) == [] and not (intake.home / "previews" / owner / f"{sha}.jpg").exists()

    publisher.publish(entry.next(Status.COLLECTED, service="archiver"))
    wait_for(lambda: receipt_of(intake, token, sha)["state"] == "collected")
    publisher.close()


def test_the_receipt_queue_is_the_intakes_own() -> None:
    from dp3.topology import ALL_QUEUES
    from dp3_intake.receipts import QUEUE

    assert isinstance(QUEUE, QueueSpec) and QUEUE not in ALL_QUEUES
    assert not {"photo.previewed", "photo.uploading"} & set(QUEUE.bindings)
