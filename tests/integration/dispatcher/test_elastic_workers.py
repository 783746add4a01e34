"""The dispatcher's factory brings workers up for a burst and lets them go when idle."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dp3.events import Status
from dp3_dispatcher.processes import descendants
from tests.integration.dispatcher.harness import detected, publish, scrape, worker_processes
from tests.rabbit import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IDLE_TIMEOUT = 4


def _burst(corpus: Path) -> list[Path]:
    jpg = corpus / "jpg"
    photos = sorted(jpg.glob("*.jpg")) + sorted((jpg / "orientation").glob("*.jpg"))
    photos += sorted((jpg / "hdr").glob("*.jpg")) + sorted((jpg / "mobile").glob("*.jpg"))
    return photos[:40]


def _workers_below(pid: int) -> set[int]:
    return set(descendants(pid)) & set(worker_processes())


def test_a_burst_brings_two_workers_up_and_they_leave_when_idle(
    corpus: Path, amqp_url: str, outcomes, start_dispatcher
) -> None:
    photos = _burst(corpus)
    assert len(photos) == 40
    entries = [detected(photo, corpus) for photo in photos]
    dispatcher = start_dispatcher(
        DP3_WORKER_PROVIDER="local",
        DP3_WORKERS_MIN="0",
        DP3_WORKERS_MAX="2",
        DP3_WORKER_IDLE_TIMEOUT=str(IDLE_TIMEOUT),
    )
    metrics_port = dispatcher.metrics_port()
    # No demand yet: no factory, no worker.
    assert dispatcher.factory_pids() == [] and scrape(metrics_port)["dp3_dispatcher_workers_connected"] == 0

    seen: set[int] = set()
    most = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for pid in dispatcher.factory_pids()[-1:]:
                alive = _workers_below(pid)
                seen.update(alive)
                most[0] = max(most[0], len(alive))
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        publish(amqp_url, entries)
        final = outcomes.wait_all({e.id for e in entries}, timeout=120)
        assert {final[e.id].status for e in entries} <= {Status.PROCESSED, Status.FAILED}
        wait_for(lambda: most[0] == 2 or len(seen) >= 2, 5, "two workers seen")
        [factory] = dispatcher.factory_pids()
        # Idle: the workers leave by themselves; the factory stays, ready for the next burst.
        wait_for(lambda: not _workers_below(factory), IDLE_TIMEOUT + 30, "the idle workers to leave")
        wait_for(lambda: scrape(metrics_port)["dp3_dispatcher_workers_connected"] == 0, 10, "no worker connected")
    finally:
        stop.set()
        watcher.join()
    assert most[0] == 2, f"at most {most[0]} workers ran at once"
    assert len(seen) == 2  # never more than DP3_WORKERS_MAX
    assert dispatcher.factory_pids() == [factory] and not set(seen) & set(worker_processes())


def test_stopping_the_dispatcher_stops_the_factory_and_its_workers(start_dispatcher) -> None:
    dispatcher = start_dispatcher(
        DP3_WORKER_PROVIDER="local", DP3_WORKERS_MIN="2", DP3_WORKERS_MAX="2", DP3_WORKER_IDLE_TIMEOUT="300"
    )
    metrics_port = dispatcher.metrics_port()
    wait_for(lambda: scrape(metrics_port)["dp3_dispatcher_workers_connected"] == 2, 30, "two idle workers")
    [factory] = dispatcher.factory_pids()
    workers = _workers_below(factory)
    assert len(workers) == 2
    started = time.monotonic()
    assert dispatcher.stop(30) == 0
    assert time.monotonic() - started < 15
    # Killed by the factory as it stops; a worker may take a moment to be gone from /proc.
    wait_for(lambda: not workers & set(worker_processes()), 5, "the workers gone with the dispatcher")
    assert not Path(f"/proc/{factory}").exists() or "Z" in Path(f"/proc/{factory}/stat").read_text().split()[2]
