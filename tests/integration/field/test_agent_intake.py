"""The field agent against the real intake process: previews first, originals resumed across kill -9 of either.

Real processes (``dp3-field run``, ``dp3-intake``), real MongoDB-wire server
and RabbitMQ for the intake, real photos from the corpus, real HTTP. The
bytes move at a capped 4 Mbit/s so each original takes seconds: long
enough to kill the agent and then the intake in the middle of one.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from tests.integration.field.harness import AgentProcess, wait_for
from tests.integration.intake.harness import IntakeProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]

OWNER = "ANN-FIELD"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def uploading(agent: AgentProcess) -> dict[str, object] | None:
    """A photo whose original is part-way up (the head node acknowledged some bytes of it)."""
    for photo in agent.photos():
        if photo["original_state"] == "pending" and 0 < int(photo["offset"]) < int(photo["size"]):
            return photo
    return None


def test_previews_first_then_every_original_byte_identical_across_kill_9_of_agent_and_intake(
    intake: IntakeProcess, camera_photos: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / "card"
    folder.mkdir()
    sources = camera_photos[:4]
    for source in sources:
        shutil.copy2(source, folder / source.name)
    before = {path.name: sha256(path) for path in folder.iterdir()}
    _record, token = intake.device(OWNER)
    agent = AgentProcess(
        home=tmp_path / "agent",
        folder=folder,
        url=intake.url,
        token=token,
        owner=OWNER,
        args=("--max-kbps", "4000"),
        env_extra={"DP3_FIELD_CHUNK_BYTES": "65536", "DP3_FIELD_TIMEOUT_SECONDS": "5"},
    )
    agent.pair()
    agent.start()
    try:
        wait_for(lambda: uploading(agent), 60, "an original part-way up")
        agent.kill()
        agent.start()
        first = wait_for(lambda: uploading(agent), 60, "an original part-way up after the restart")
        intake.kill()
        intake.start()
        wait_for(
            lambda: all(photo["original_state"] == "sent" for photo in agent.photos()) and len(agent.photos()) == 4,
            120,
            "every original sent",
        )
        status = agent.status()
    finally:
        agent.stop()

    inbox = {path.name: path for path in (intake.inbox / OWNER).iterdir()}
    assert {name: sha256(path) for name, path in inbox.items()} == before  # byte-identical, each once
    previews = {path.stem: path for path in (intake.home / "previews" / OWNER).glob("*.jpg")}
    assert set(previews) == set(before.values())
    # Every preview was on the head node before any original had finished arriving.
    assert max(path.stat().st_mtime for path in previews.values()) <= min(
        path.stat().st_mtime for path in inbox.values()
    )
    # The kills cost no upload: each original was created once and resumed, never started again.
    created = re.findall(r"upload \w+ created for", intake.log())
    assert len(created) == 4, intake.log()[-3000:]
    assert first["name"] in inbox
    # Nothing local was deleted (no --free-space), and the photographer is told it is done.
    assert {path.name: sha256(path) for path in folder.iterdir()} == before
    assert "Originals: 4 sent, 0 waiting, 0.0 MB to go" in status
    assert "Previews: 4 sent, 0 waiting" in status
