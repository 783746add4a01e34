"""``dp3-field run --free-space`` on the whole system: a laptop's copy goes only after the head node's receipt.

The real stack (scanner, dispatcher with local workers, archiver, portal)
and the real intake share one ``DP3_HOME``: the intake places each original
in the inbox, the pipeline archives it to both stores, and only then does
the receipt say archived. The agent then deletes its local copy, after
hashing it again. A photo the head node had before (dropped into the synced
folder) is archived too, but the agent did not send it, so it keeps it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.integration.field.harness import AgentProcess, wait_for
from tests.integration.intake.harness import IntakeProcess
from tests.stack import Stack, mongo_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OWNER = "ANN-FIELD"


def test_free_space_deletes_only_what_it_sent_after_an_archived_receipt(
    stack: Stack, corpus: Path, tmp_path: Path
) -> None:
    photos = sorted(path for path in corpus.rglob("*.jpg") if path.stat().st_size > 1_000_000)[:3]
    folder = tmp_path / "card"
    folder.mkdir()
    for source in photos:
        shutil.copy2(source, folder / source.name)
    had_before = folder / photos[0].name
    (stack.inbox / OWNER).mkdir(parents=True, exist_ok=True)
    shutil.copy2(had_before, stack.inbox / OWNER / had_before.name)  # through the synced folder, first
    wait_for(lambda: not (stack.inbox / OWNER / had_before.name).exists(), 180, "the synced photo collected")

    intake = IntakeProcess(
        home=stack.home,
        mongo_url=mongo_url(stack),
        database="dp3",
        amqp_url=stack.env["DP3_AMQP_URL"],
        # Beside the stack's own intake: a folder of its own for partial uploads (one intake per folder).
        env_extra={"DP3_INTAKE_UPLOADS": str(tmp_path / "uploads")},
    )
    intake.start()
    try:
        _record, token = intake.device(OWNER)
        agent = AgentProcess(
            home=tmp_path / "laptop", folder=folder, url=intake.url, token=token, owner=OWNER, args=("--free-space",)
        )
        agent.pair()
        agent.start()
        try:
            sent = {path.name for path in folder.iterdir()} - {had_before.name}
            wait_for(lambda: not any((folder / name).exists() for name in sent), 300, "the sent originals freed")
            time.sleep(3)  # a few more receipt rounds: the photo it did not send must stay
            rows = {row["name"]: row for row in agent.photos()}
            status = agent.status()
        finally:
            agent.stop()
    finally:
        intake.stop()

    assert had_before.exists()  # archived, but not sent by this agent: kept
    assert rows[had_before.name]["original_state"] == "already" and rows[had_before.name]["deleted_at"] is None
    for name in sent:
        row = rows[name]
        assert row["original_state"] == "sent" and row["archived"] == 1
        # Deleted after the receipt that said archived, never before it.
        assert row["deleted_at"] is not None and row["deleted_at"] >= row["receipt_asked_at"]
        assert '"archived": true' in row["receipt"]
        for store in stack.stores:
            assert any(path.name.endswith(name) for path in store.rglob("*"))  # the archive holds it
    assert "freed here: 2" in status
