"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("DP3_CORPUS", REPO.parent / "shared" / "corpus" / "exif-samples"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared real-photo corpus, used in place (never copied into the repo)."""
    if not CORPUS.is_dir():
        pytest.fail(f"the photo corpus is missing at {CORPUS} (set DP3_CORPUS)")
    return CORPUS
