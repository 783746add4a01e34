from __future__ import annotations

from dp3.stability import FileState, is_stable, observe, stable_at

A = FileState(size=10, mtime_ns=1, inode=7)
GROWN = FileState(size=20, mtime_ns=2, inode=7)


def test_the_clock_starts_at_the_first_observation_and_keeps_running_while_unchanged() -> None:
    watched = observe(None, A, now=100.0)
    assert observe(watched, A, now=103.0) is watched
    assert not is_stable(watched, A, now=104.9, stable_seconds=5)
    assert is_stable(watched, A, now=105.0, stable_seconds=5)
    assert stable_at(watched, 5) == 105.0


def test_any_change_restarts_the_clock() -> None:
    watched = observe(observe(None, A, now=100.0), GROWN, now=104.0)
    assert watched.since == 104.0
    assert not is_stable(watched, GROWN, now=108.0, stable_seconds=5)
    assert is_stable(watched, GROWN, now=109.0, stable_seconds=5)


def test_a_state_other_than_the_watched_one_is_never_stable() -> None:
    watched = observe(None, A, now=0.0)
    assert not is_stable(watched, GROWN, now=1000.0, stable_seconds=5)
    replaced = FileState(size=10, mtime_ns=1, inode=8)  # same size and mtime, another file
    assert not is_stable(watched, replaced, now=1000.0, stable_seconds=5)
