"""The re-drive schedule keeps to the monotonic clock: a wall clock stepped backwards does not stall it.

Real files and a real index; the two clocks are fakes (pure timing logic), so
that the wall clock can be stepped back a day as NTP or an operator might.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dp3.settings import load_settings
from dp3_scanner.index import Index
from dp3_scanner.scanner import Scanner
from dp3_scanner.settings import ScannerSettings
from tests.unit.scanner.test_scanner_loop import SMALL_JPEG, Clock, Published

DAY = 86400.0
REDRIVE = 600.0


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    (tmp_path / "inbox" / "A-B").mkdir(parents=True)
    return tmp_path / "inbox"


def scanner_with(tmp_path: Path, inbox: Path, monotonic: Clock, wall: Clock, published: Published) -> Scanner:
    settings = load_settings(
        ScannerSettings,
        home=tmp_path / "home",
        inbox=inbox,
        stable_seconds=5,
        rescan_seconds=10,
        redrive_seconds=REDRIVE,
        redrive_max_seconds=DAY,
    )
    return Scanner(settings, Index(settings.index_path), published, clock=monotonic, wall_clock=wall)


def run_for(scanner: Scanner, clocks: tuple[Clock, Clock], seconds: float, published: Published) -> int:
    """Step both clocks forward a second at a time; the number of events published meanwhile."""
    before = len(published)
    for _ in range(int(seconds)):
        for clock in clocks:
            clock.now += 1
        scanner.step()
    return len(published) - before


def detect(tmp_path: Path, inbox: Path) -> tuple[Scanner, Clock, Clock, Published]:
    monotonic, wall, published = Clock(), Clock(), Published()
    wall.now = 1_800_000_000.0
    scanner = scanner_with(tmp_path, inbox, monotonic, wall, published)
    (inbox / "A-B" / "x.jpg").write_bytes(SMALL_JPEG)
    scanner.step()
    run_for(scanner, (monotonic, wall), 6, published)
    assert [e.attempt for e in published] == [0]
    return scanner, monotonic, wall, published


def test_a_wall_clock_stepped_back_a_day_does_not_stall_the_redrive(tmp_path: Path, inbox: Path) -> None:
    scanner, monotonic, wall, published = detect(tmp_path, inbox)
    wall.now -= DAY
    assert run_for(scanner, (monotonic, wall), REDRIVE + 20, published) == 1
    assert published[-1].attempt == 1


def test_a_wall_clock_stepped_forward_does_not_redrive_early(tmp_path: Path, inbox: Path) -> None:
    scanner, monotonic, wall, published = detect(tmp_path, inbox)
    wall.now += DAY
    assert run_for(scanner, (monotonic, wall), REDRIVE - 30, published) == 0
    assert run_for(scanner, (monotonic, wall), 50, published) == 1


def test_a_clock_stepped_back_while_the_scanner_was_down_does_not_stall_it_after_the_restart(
    tmp_path: Path, inbox: Path
) -> None:
    _scanner, _monotonic, wall, published = detect(tmp_path, inbox)
    wall.now -= DAY  # and the machine rebooted: a new monotonic clock
    restarted_clock = Clock()
    restarted = scanner_with(tmp_path, inbox, restarted_clock, wall, published)
    assert run_for(restarted, (restarted_clock, wall), REDRIVE + 20, published) == 1


@pytest.mark.parametrize(
    ("next_at", "wall", "expected"),
    [
        (1600.0, 1000.0, 600.0),  # on schedule
        (1600.0, 1500.0, 100.0),
        (1600.0, 1700.0, 0.0),  # overdue
        (1600.0, 1000.0 - DAY, 600.0),  # the clock went back: no more than the interval
    ],
)
def test_remaining_wait(next_at: float, wall: float, expected: float) -> None:
    from dp3_scanner.scanner import remaining_wait  # here: the behaviour tests above run on any version

    assert remaining_wait(next_at, wall, 600.0) == expected
