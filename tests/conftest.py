"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("DP3_CORPUS", REPO.parent / "shared" / "corpus" / "exif-samples"))
# The whole-stack tests wait up to several minutes by their own deadlines (and print their
# diagnostics when one passes); pytest's global 300 s must not cut them off first on a slow day.
SLOW_TEST_TIMEOUT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT))
    # The compose tests last: their images build in the background meanwhile (tests/compose/prebuild.py).
    compose = REPO / "tests" / "compose"
    items.sort(key=lambda item: item.path.is_relative_to(compose))


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared real-photo corpus, used in place (never copied into the repo)."""
    if not CORPUS.is_dir():
        pytest.fail(f"the photo corpus is missing at {CORPUS} (set DP3_CORPUS)")
    return CORPUS
