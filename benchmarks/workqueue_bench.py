"""Work Queue overhead, measured with the dp3 binding against real local workers.

* round trip: one empty task (``true``) submitted and waited for, one at a time,
  on one connected worker: the fixed cost Work Queue adds to every render;
* throughput: N empty tasks submitted at once, with 1 and then 2 workers
  (one core each): tasks per second the manager sustains, and the ratio.

Run from the repository root::

    .venv/bin/python benchmarks/workqueue_bench.py [--tasks 400] [--round-trips 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from dp3_dispatcher.workqueue import Manager, Task


def _start_workers(port: int, count: int, workdir: Path) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            ["work_queue_worker", "--cores", "1", "--timeout", "60", "--workdir", str(workdir), "127.0.0.1", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def _wait_connected(manager: Manager, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while manager.stats().workers_connected < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {manager.stats().workers_connected} of {count} workers connected")
        manager.wait(1)
        time.sleep(0.05)


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(10)


def round_trips(count: int, workdir: Path) -> list[float]:
    with Manager(0) as manager:
        workers = _start_workers(manager.port, 1, workdir)
        try:
            _wait_connected(manager, 1)
            times = []
            for _ in range(count):
                started = time.perf_counter()
                manager.submit(Task("true", cores=1))
                while manager.wait(1) is None:
                    pass
                times.append(time.perf_counter() - started)
            return times
        finally:
            _stop(workers)


def throughput(tasks: int, worker_count: int, workdir: Path) -> float:
    with Manager(0) as manager:
        workers = _start_workers(manager.port, worker_count, workdir)
        try:
            _wait_connected(manager, worker_count)
            started = time.perf_counter()
            for _ in range(tasks):
                manager.submit(Task("true", cores=1))
            done = 0
            while done < tasks:
                if manager.wait(1) is not None:
                    done += 1
            return tasks / (time.perf_counter() - started)
        finally:
            _stop(workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--round-trips", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dp3-wq-bench-") as scratch:
        workdir = Path(scratch)
        times = round_trips(args.round_trips, workdir)
        one = throughput(args.tasks, 1, workdir)
        two = throughput(args.tasks, 2, workdir)
    ms = sorted(t * 1000 for t in times)
    print(f"empty-task round trip, 1 worker ({len(ms)} tasks, one at a time):")
    print(f"  median {statistics.median(ms):.2f} ms   p90 {ms[int(0.9 * len(ms)) - 1]:.2f} ms   min {ms[0]:.2f} ms")
    print(f"throughput, {args.tasks} empty tasks submitted at once:")
    print(f"  1 worker : {one:7.1f} tasks/s")
    print(f"  2 workers: {two:7.1f} tasks/s   (x{two / one:.2f} of 1 worker)")


if __name__ == "__main__":
    main()
