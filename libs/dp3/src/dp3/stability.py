"""Pure rule for "the file has finished arriving": size and mtime unchanged for a while.

A sync client over a slow link writes a file in pieces for minutes; every
piece changes the size and the mtime. A file is judged finished once the
watcher has seen the same ``(size, mtime_ns, inode)`` for ``stable_seconds``
of its own clock.

Two watchers use this one rule: the scanner on the head node's inbox, and the
field agent (``dp3-field``) on the folder a camera card is imported into, so
a photo counts as finished by the same test in both places. The clock starts at the first observation of a state, not
at the file's mtime, so a client that preserves an old mtime while writing
is still waited for. A file that looks cut off (a JPEG without its end
marker) is held for longer: ``hold_seconds`` replaces the window when larger.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FileState:
    """What a stat says about a file, enough to notice any rewrite."""

    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int = 0  # a rewrite that puts the old mtime back still moves it


@dataclass(frozen=True, slots=True)
class Watched:
    """A state, the monotonic time it was first seen, and how long it must rest if longer than the window."""

    state: FileState
    since: float
    hold_seconds: float = 0.0


def observe(previous: Watched | None, state: FileState, now: float) -> Watched:
    """Keep the clock running if nothing changed, restart it otherwise."""
    if previous is not None and previous.state == state:
        return previous
    return Watched(state, now)


def stable_at(watched: Watched, stable_seconds: float) -> float:
    """The monotonic time the file will count as finished if it does not change."""
    return watched.since + max(stable_seconds, watched.hold_seconds)


def is_stable(watched: Watched, current: FileState, now: float, stable_seconds: float) -> bool:
    """True when ``current`` is the watched state and it has rested long enough."""
    return watched.state == current and now >= stable_at(watched, stable_seconds)
