"""A file still in the inbox is emitted again, with growing intervals (issue 4, item 7)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dp3.events import Status
from tests.integration.scanner.conftest import Journal

pytestmark = pytest.mark.integration


def at(event_at: str) -> float:
    return dt.datetime.fromisoformat(event_at.replace("Z", "+00:00")).timestamp()


def test_a_file_left_in_the_inbox_is_re_driven_with_growing_intervals(
    scanner, journal: Journal, inbox: Path, corpus: Path
) -> None:
    scanner(redrive_seconds=1.0, rescan_seconds=0.2)
    path = inbox / "OLGA-K" / "stuck.jpg"
    path.parent.mkdir()
    path.write_bytes((corpus / "jpg/gps/DSCN0027.jpg").read_bytes())
    events = journal.wait(path, Status.DETECTED, count=3, timeout=30)
    first, second, third = events[:3]
    assert [e.attempt for e in (first, second, third)] == [0, 1, 2]
    assert len({e.event_id for e in events}) == len(events)
    assert {e.id for e in events} == {first.id} and {e.sha256 for e in events} == {first.sha256}
    gap1, gap2 = at(second.at) - at(first.at), at(third.at) - at(second.at)
    assert gap1 >= 1.0, gap1
    assert gap2 >= 2.0, gap2  # doubled


def test_a_file_that_left_the_inbox_is_not_re_driven(scanner, journal: Journal, inbox: Path, corpus: Path) -> None:
    running = scanner(redrive_seconds=1.0, rescan_seconds=0.2)
    path = inbox / "OLGA-K" / "collected.jpg"
    path.parent.mkdir()
    path.write_bytes((corpus / "jpg/gps/DSCN0029.jpg").read_bytes())
    journal.wait(path)
    path.unlink()  # as the archiver's collect would
    running.wait_rescans(10)  # 2 seconds: two re-drive intervals
    assert len(journal.about(path)) == 1
    assert running.app.index.get(str(path)) is None
