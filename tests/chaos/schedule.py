"""The seeded chaos schedule: which process dies when. Pure, so a seed always gives the same plan.

``DP3_CHAOS_SEED`` replays a run: the plan (and the photos, their names and
drop order) depend on nothing else. What the stack is doing at each moment
still varies with the machine's speed, so a replay repeats the plan, not the
exact interleaving; the executed schedule, with the PIDs hit, is printed too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tests.stack import SERVICES

KILLS_PER_SERVICE = 3
MIN_GAP_SECONDS = 8.0
"""Between two kills of the same service: time for supervisord to restart it and for it to get busy."""


@dataclass(frozen=True, order=True)
class Action:
    at: float
    """Seconds after the first drop."""
    kind: str
    """``kill`` (SIGKILL a service), ``kill_worker`` (SIGKILL a worker mid-task) or ``restart_broker``."""
    target: str = ""

    def __str__(self) -> str:
        return f"t+{self.at:6.1f}s {self.kind} {self.target}".rstrip()


def plan(seed: int, window: float, *, drops_end: float, broker_restart: bool = True) -> list[Action]:
    """Every action, in time order, within ``window`` seconds of the first drop.

    The worker is killed while photos still arrive (before 0.6 of ``drops_end``,
    the last drop's time): after that, a fast pipeline may have rendered
    everything, and no worker is left with a task to be killed in (session 9's
    CI run: planned at t+41.5 s of a 70 s window whose drops ended at 40 s).
    """
    if not 0 < drops_end <= window:
        raise ValueError(f"drops_end {drops_end} must be within the window of {window} s")
    rng = random.Random(seed)
    actions: list[Action] = []
    for service in SERVICES:
        actions += [Action(at, "kill", service) for at in _spread(rng, KILLS_PER_SERVICE, 2.0, window)]
    actions.append(Action(round(rng.uniform(0.15 * drops_end, 0.6 * drops_end), 1), "kill_worker"))
    if broker_restart:
        actions.append(Action(round(rng.uniform(0.25 * window, 0.75 * window), 1), "restart_broker"))
    return sorted(actions)


def _spread(rng: random.Random, count: int, start: float, end: float) -> list[float]:
    """``count`` random moments in [start, end], at least MIN_GAP_SECONDS apart."""
    slack = (end - start) - MIN_GAP_SECONDS * (count - 1)
    assert slack > 0, "the chaos window is too short for the kills it must hold"
    offsets = sorted(rng.uniform(0, slack) for _ in range(count))
    return [round(start + offset + MIN_GAP_SECONDS * index, 1) for index, offset in enumerate(offsets)]
