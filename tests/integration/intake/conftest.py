"""The intake's test fixtures: one in-memory MongoDB-wire server per session, a fresh intake per test."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dp3 import layout
from tests.integration.intake.harness import IntakeProcess
from tests.rabbit import create_vhost, delete_vhost


@pytest.fixture(scope="module")
def module_amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost shared by one test module's intake."""
    vhost, url = create_vhost("dp3-intake")
    try:
        yield url
    finally:
        delete_vhost(vhost)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two initialised stores (each marker its own id: two alike would be one place, invariant 9)."""
    roots = [tmp_path_factory.mktemp("store-a"), tmp_path_factory.mktemp("store-b")]
    for root in roots:
        (root / layout.STORE_MARKER).write_text(json.dumps({"store": str(root), "id": uuid.uuid4().hex}))
    return roots


BODY_IDLE_SECONDS = 2.0
"""The module intake's body cut-off (default 20 s): short, so a dead link's PATCH is cut off within a test."""


@pytest.fixture(scope="module")
def intake(
    tmp_path_factory: pytest.TempPathFactory, mongo_url: str, module_amqp_url: str, stores: list[Path]
) -> Iterator[IntakeProcess]:
    """One real intake process per test module (starting one costs seconds); tests keep apart by owner."""
    process = IntakeProcess(
        home=tmp_path_factory.mktemp("intake") / "home",
        mongo_url=mongo_url,
        database=f"dp3test_{secrets.token_hex(4)}",
        amqp_url=module_amqp_url,
        env_extra={
            "DP3_STORES": ",".join(map(str, stores)),
            "DP3_INTAKE_PROGRESS_SECONDS": "0",
            "DP3_INTAKE_BODY_IDLE_SECONDS": str(BODY_IDLE_SECONDS),
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def intake_with_stores(intake: IntakeProcess) -> IntakeProcess:
    return intake


@pytest.fixture
def owner() -> str:
    """A photographer of this test's own, so tests sharing an intake never see each other's files."""
    return f"FIELD-{secrets.token_hex(3).upper()}"


@pytest.fixture(scope="session")
def photo(corpus: Path) -> Path:
    """The largest sound JPEG of the corpus: several chunks' worth of real bytes."""
    sound = [path for path in (corpus / "jpg").glob("*.jpg") if "corrupt" not in path.name]
    return max(sound, key=lambda path: path.stat().st_size)


@pytest.fixture(scope="session")
def small_photo(corpus: Path) -> Path:
    """A small sound JPEG, to stand for a preview."""
    sound = [path for path in (corpus / "jpg").glob("*.jpg") if "corrupt" not in path.name]
    return min(sound, key=lambda path: path.stat().st_size)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
