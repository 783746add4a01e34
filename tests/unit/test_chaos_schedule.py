"""The chaos plan (tests/chaos/schedule.py): pure, so its rules are checked here over many seeds."""

from __future__ import annotations

import itertools

import pytest

from tests.chaos.schedule import KILLS_PER_SERVICE, MIN_GAP_SECONDS, plan
from tests.stack import SERVICES

WINDOW, DROPS_END = 70.0, 40.0  # the CI run's: 300 photos dropped over 40 s, chaos for 30 s more


@pytest.mark.parametrize("seed", range(200))
def test_the_worker_is_killed_while_photos_still_arrive(seed: int) -> None:
    [kill_worker] = [a for a in plan(seed, WINDOW, drops_end=DROPS_END) if a.kind == "kill_worker"]
    assert 0.15 * DROPS_END <= kill_worker.at <= 0.6 * DROPS_END


@pytest.mark.parametrize("seed", range(50))
def test_every_service_dies_three_times_spaced_and_the_plan_replays(seed: int) -> None:
    actions = plan(seed, WINDOW, drops_end=DROPS_END)
    assert actions == plan(seed, WINDOW, drops_end=DROPS_END)
    for service in SERVICES:
        times = [a.at for a in actions if a.kind == "kill" and a.target == service]
        assert len(times) == KILLS_PER_SERVICE
        assert all(later - earlier >= MIN_GAP_SECONDS - 0.1 for earlier, later in itertools.pairwise(times))
        assert all(0 <= at <= WINDOW for at in times)
    assert [a.kind for a in actions].count("restart_broker") == 1


def test_drops_that_end_outside_the_window_are_refused() -> None:
    with pytest.raises(ValueError, match="drops_end"):
        plan(1, WINDOW, drops_end=WINDOW + 1)
