"""Chaos: photos pour in while every service is SIGKILLed, a worker dies mid-task and RabbitMQ restarts.

The whole stack runs as separate processes under supervisord (``make up``):
real RabbitMQ, the embedded MongoDB-wire server, real Work Queue workers.
Nobody intervenes: supervisord restarts what was killed, the services
reconnect, and the scanner's re-drive heals whatever a crash left undone.
At the end every photo must be exactly where invariants 1-3 say.

``DP3_CHAOS_SEED=N`` replays a run's plan; ``DP3_CHAOS_PHOTOS=3000`` is the
long variant (on demand); ``DP3_CHAOS_BROKER_RESTART=0`` leaves RabbitMQ alone
(it is shared: restarting it disturbs other test runs on this machine).
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chaos.conftest import StackFactory
from tests.chaos.final_state import Expected, assert_final_state, progress, settled
from tests.chaos.inflict import ChaosRun
from tests.chaos.photos import Photo, make_photos
from tests.chaos.schedule import plan
from tests.rabbit import wait_for
from tests.stack import Stack, write_slowly

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

SLOW_DROP_CHANCE = 0.6
"""Chance that a drop is one slow upload (chunks with pauses shorter than the stability window), not a burst."""


@dataclass(frozen=True)
class Drop:
    at: float
    photos: tuple[Photo, ...]
    slow: bool


def drop_plan(photos: list[Photo], seed: int, window: float) -> list[Drop]:
    """Bursts of 5-40 photos and single slow uploads, spread over ``window`` seconds."""
    rng = random.Random(seed ^ 0x5EED)
    shuffled = list(photos)
    rng.shuffle(shuffled)
    drops: list[Drop] = []
    index = 0
    while index < len(shuffled):
        if rng.random() < SLOW_DROP_CHANCE:
            drops.append(Drop(0.0, (shuffled[index],), slow=True))
            index += 1
        else:
            size = rng.randint(5, 40)
            drops.append(Drop(0.0, tuple(shuffled[index : index + size]), slow=False))
            index += size
    times = sorted(rng.uniform(0, window) for _ in drops)
    return [Drop(round(at, 1), drop.photos, drop.slow) for at, drop in zip(times, drops, strict=True)]


def drop_all(stack: Stack, drops: list[Drop], started: float) -> None:
    writers: list[threading.Thread] = []
    for drop in drops:
        time.sleep(max(0.0, started + drop.at - time.monotonic()))
        for photo in drop.photos:
            target = stack.inbox / photo.relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if drop.slow:
                writer = threading.Thread(target=write_slowly, args=(target, photo.data, 3.0))
                writer.start()
                writers.append(writer)
            else:
                target.write_bytes(photo.data)
    for writer in writers:
        writer.join()


def test_nothing_lost_or_doubled_under_chaos(chaos_stack: StackFactory, corpus: Path) -> None:
    seed = int(os.environ.get("DP3_CHAOS_SEED") or secrets.randbelow(1_000_000))
    count = int(os.environ.get("DP3_CHAOS_PHOTOS", "300"))
    broker_restart = os.environ.get("DP3_CHAOS_BROKER_RESTART", "1") != "0"
    drop_window = max(40.0, count * 0.12)
    chaos_window = drop_window + 30.0
    photos = make_photos(corpus, count, seed)
    drops = drop_plan(photos, seed, drop_window)
    actions = plan(seed, chaos_window, drops_end=drop_window, broker_restart=broker_restart)
    print(f"chaos seed {seed} (replay: DP3_CHAOS_SEED={seed}); {count} photos over {drop_window:.0f}s", flush=True)
    print(f"chaos plan: {len(drops)} drops ({sum(d.slow for d in drops)} slow uploads)", flush=True)
    for action in actions:
        print(f"chaos plan: {action}", flush=True)

    with chaos_stack() as (stack, vhost):
        expected = {str(stack.inbox / p.relative): Expected(p.data, p.failure) for p in photos}
        chaos = ChaosRun(stack, actions)
        started = time.monotonic()
        monkey = threading.Thread(target=chaos.run, args=(started,), name="chaos")
        monkey.start()
        try:
            drop_all(stack, drops, started)
            monkey.join()
        finally:
            chaos.stop.set()
            monkey.join()
        assert not chaos.errors, f"seed {seed}: chaos steps not carried out: {chaos.errors}"
        print(f"chaos: all actions done at t+{time.monotonic() - started:.0f}s; waiting for the stack to settle")

        timeout = 240 + count * 0.1
        try:
            wait_for(lambda: settled(stack, expected), timeout, "every photo collected", interval=2)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}: {progress(stack, expected)}") from None
        print(f"chaos: settled at t+{time.monotonic() - started:.0f}s", flush=True)
        try:
            assert_final_state(stack, expected, vhost)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}") from exc
