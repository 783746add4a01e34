"""The recorder on a real RabbitMQ, the retry action, and the operator commands (export, rebuild, users)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pika
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from dp3 import cli
from dp3.broker import BrokerOptions, Publisher
from dp3.events import JournalEntry, Status
from dp3.topology import DISPATCHER
from dp3_portal.app import create_app
from tests.integration.portal.conftest import PASSWORD, login
from tests.integration.portal.site import write_sidecars
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration

FAST = BrokerOptions(retry_delays=(0.2, 0.4), max_attempts=3, reconnect_max_delay=1.0)


def recorded_total(status: str) -> float:
    return REGISTRY.get_sample_value("dp3_portal_events_recorded_total", {"status": status}) or 0.0


def test_the_portal_records_every_event_once_from_rabbitmq(portal_settings, site, amqp_url, db) -> None:
    settings = portal_settings.model_copy(update={"amqp_url": amqp_url})
    collected_before = recorded_total("Collected")
    with TestClient(create_app(settings, broker_options=FAST)) as client:
        publisher = Publisher(amqp_url, options=FAST)
        try:
            for entry in reversed(site.events):  # out of order ...
                publisher.publish(entry)
            for entry in site.events[:8]:  # ... and some twice
                publisher.publish(entry)
        finally:
            publisher.close()
        wait_for(lambda: db["journal"].count_documents({}) == len(site.events), 30, "every event in the journal")

        def settled() -> bool:
            stats = client.get("/api/stats", auth=("admin", PASSWORD)).json()
            return bool(stats["Collected"] == 5 and stats["Failed"] == 1)

        wait_for(settled, 30, "the catalog to show every photo's final state")
        photos = client.get("/api/photos", auth=("admin", PASSWORD)).json()["items"]
        assert all(
            len(client.get(f"/api/photos/{p['id']}", auth=("admin", PASSWORD)).json()["history"]) in (2, 4)
            for p in photos
        )
    assert recorded_total("Collected") - collected_before == 5


def test_retry_re_emits_the_detected_event_with_the_next_attempt(portal_settings, recorded, amqp_url) -> None:
    settings = portal_settings.model_copy(update={"amqp_url": amqp_url})
    failed_id = recorded.ids["jpg/corrupted.jpg"]
    with TestClient(create_app(settings, record=False, broker_options=FAST), follow_redirects=False) as client:
        login(client)
        token = client.cookies.get("dp3_csrf")
        assert client.post(f"/photos/{failed_id}/retry", data={}).status_code == 403
        collected = recorded.ids["jpg/Canon_40D.jpg"]
        assert client.post(f"/photos/{collected}/retry", data={"csrf_token": token}).status_code == 409
        response = client.post(f"/photos/{failed_id}/retry", data={"csrf_token": token})
        assert response.status_code == 303
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        method, _properties, body = connection.channel().basic_get(DISPATCHER.name, auto_ack=True)
    finally:
        connection.close()
    assert method is not None, "no Detected reached the dispatcher's queue"
    entry = JournalEntry.from_json(body)
    original = next(e for e in recorded.events if e.id == failed_id and e.status is Status.DETECTED)
    assert (entry.id, entry.status, entry.attempt, entry.error) == (failed_id, Status.DETECTED, 1, None)
    assert (entry.path, entry.sha256, entry.service) == (original.path, original.sha256, "portal")
    assert entry.event_id != original.event_id


def api_snapshot(client: TestClient) -> dict[str, object]:
    auth = ("admin", PASSWORD)
    listing = client.get("/api/photos", params={"limit": 200}, auth=auth).json()
    details = {item["id"]: client.get(f"/api/photos/{item['id']}", auth=auth).json() for item in listing["items"]}
    by_owner = client.get("/api/photos", params={"owner": "SMITH-ANNA"}, auth=auth).json()
    return {"list": listing, "details": details, "owner": by_owner, "stats": client.get("/api/stats", auth=auth).json()}


@pytest.fixture
def command_env(monkeypatch: pytest.MonkeyPatch, portal_settings) -> dict[str, str]:
    env = {
        "DP3_MONGO_URL": str(portal_settings.mongo_url),
        "DP3_MONGO_DATABASE": portal_settings.mongo_database,
        "DP3_HOME": str(portal_settings.home),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_rebuild_from_one_store_gives_the_same_answers(portal_settings, recorded, db, command_env) -> None:
    with TestClient(create_app(portal_settings, record=False)) as client:
        before = api_snapshot(client)
    # the photo that failed before archiving has no sidecar: it is the one thing a store cannot know
    failed_id = recorded.ids["jpg/corrupted.jpg"]
    before["details"].pop(failed_id)  # type: ignore[attr-defined]
    # sidecars hold what the archiver saw: from Processed on (Processed carries what Detected said)
    for detail in before["details"].values():  # type: ignore[attr-defined]
        detail["history"] = [item for item in detail["history"] if item["status"] != "Detected"]
    store = recorded.stores[0]
    write_sidecars(recorded, store)
    db["photos"].drop()
    db["journal"].drop()
    assert cli.main(["catalog", "rebuild", "--from", str(store)]) == 0
    with TestClient(create_app(portal_settings, record=False)) as client:
        after = api_snapshot(client)
    before_stats = dict(before["stats"])  # type: ignore[call-overload]
    before_stats["Failed"] = before_stats["failed"] = 0
    assert after["stats"] == before_stats
    assert after["details"] == before["details"]
    assert after["owner"] == before["owner"]
    assert [i for i in before["list"]["items"] if not i["failed"]] == after["list"]["items"]  # type: ignore[index]


def test_journal_export_writes_every_event_in_the_seed_form(recorded, tmp_path: Path, command_env) -> None:
    out = tmp_path / "journal.json"
    assert cli.main(["journal", "export", "--output", str(out)]) == 0
    exported = json.loads(out.read_text())
    assert sorted(e["event_id"] for e in exported) == sorted(e.event_id for e in recorded.events)
    assert all(list(e)[:6] == ["id", "status", "datetime", "archives", "owner", "path"] for e in exported)
    assert [e["at"] for e in exported] == sorted(e["at"] for e in exported)
    parsed = sorted((JournalEntry.model_validate(e) for e in exported), key=lambda e: e.event_id)
    assert parsed == sorted(recorded.events, key=lambda e: e.event_id)


def test_users_add_reads_the_password_from_stdin_and_the_user_can_log_in(client, command_env) -> None:
    dp3 = Path(sys.executable).with_name("dp3")
    result = subprocess.run(
        [str(dp3), "users", "add", "bob", "--password-stdin"],
        input="s3cret bob pass\n",
        capture_output=True,
        text=True,
        env={**os.environ, **command_env},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert login(client, "bob", "s3cret bob pass").status_code == 303
    client.cookies.clear()
    assert login(client, "bob", "wrong").status_code == 401
