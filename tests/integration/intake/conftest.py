"""The intake's test fixtures: one in-memory MongoDB-wire server per session, a fresh intake per test."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from dp3_portal.embedded import EmbeddedMongo
from tests.integration.intake.harness import IntakeProcess


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedMongo(None, run_dir=tmp_path_factory.mktemp("nx-27017"))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def intake(tmp_path: Path, mongo_url: str, amqp_url: str) -> Iterator[IntakeProcess]:
    process = IntakeProcess(
        home=tmp_path / "home", mongo_url=mongo_url, database=f"dp3test_{secrets.token_hex(4)}", amqp_url=amqp_url
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


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
