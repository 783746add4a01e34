"""Fixtures of the archiver's integration tests: a site on disk, the journal, archiver processes, mounts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.archiver.harness import ArchiverProcess, Journal, unmount
from tests.unit.archiver.site import Site


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site.create(tmp_path)


@pytest.fixture
def journal(amqp_url: str) -> Iterator[Journal]:
    recorder = Journal(amqp_url)
    yield recorder
    recorder.close()


@pytest.fixture
def processes() -> Iterator[list[ArchiverProcess]]:
    started: list[ArchiverProcess] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Mount points a test made; unmounted afterwards, whatever happened."""
    made: list[Path] = []
    yield made
    for point in reversed(made):
        unmount(point)
