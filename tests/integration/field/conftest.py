"""The field agent's fixtures: the real intake (its own harness and fixtures, not copies), real photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.intake.conftest import intake

__all__ = ["camera_photos", "intake"]  # mongo_url: tests/integration/conftest.py


@pytest.fixture(scope="session")
def camera_photos(corpus: Path) -> list[Path]:
    """The corpus's camera-sized JPEGs (over 1 MB), several chunks each."""
    found = sorted(path for path in corpus.rglob("*.jpg") if path.stat().st_size > 1_000_000)
    assert len(found) >= 4, "the corpus lost its large JPEGs"
    return found
