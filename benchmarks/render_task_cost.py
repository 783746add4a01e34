"""What a render task costs on a worker beyond the render itself (issue 17: the worker core's side).

In the split-core runs the worker core spends about 1.5x the raw render's CPU
per photo. This splits that overhead without Work Queue, on one core, over the
same 12 MP photos, in one run:

1. ``render()`` in this process, photo after photo: the raw render;
2. ``render_isolated()`` in this process: each photo in a forked child under
   the dispatcher's default limits, as a single photo (and a failure) renders;
3. ``render_each()`` in this process: the photos in one shared forked child
   under those limits, as a batch renders them (docs/render.md, "Limits per
   photo");
4. the worker's own command (``dp3_dispatcher.dispatcher.render_command``) as a
   subprocess in a sandbox laid out as Work Queue lays it out (the shipped
   ``render_task.py`` and ``dp3_formats.py``, the photos as ``photo0..``), for
   batches of 1 and of ``DP3_RENDER_BATCH``'s default: Python's start, the
   imports, the warm-up and the results tar, shared by a batch's photos.

What is left of the pipeline's worker-core figure after (4) is Work Queue's:
the transfer of each input into the worker's cache and sandbox, and of the
results tar back. Run from the repository root (about two minutes)::

    .venv/bin/python benchmarks/render_task_cost.py [--photos 16] [--rounds 3] [--core 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.pipeline_bench import make_photos  # noqa: E402
from dp3 import render_task  # noqa: E402
from dp3_dispatcher.dispatcher import TASK_FILES, photo_remote, render_command  # noqa: E402
from dp3_dispatcher.settings import DispatcherSettings  # noqa: E402
from dp3_dispatcher.workers import local_worker_environment  # noqa: E402


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def per_photo_ms(photos: list[Path], run: Callable[[Path, Path], object], scratch: Path) -> float:
    """CPU (this process and its children) per photo of ``run(photo, outdir)`` over every photo."""
    before = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
    for index, photo in enumerate(photos):
        run(photo, scratch / f"out-{index}")
    after = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
    return (after - before) / len(photos) * 1000


def shared_child_ms(photos: list[Path], limits: render_task.Limits, scratch: Path) -> float:
    """CPU per photo of the photos rendered one after another in one shared child, as a batch renders them."""
    outdirs = [str(scratch / f"out-{index}") for index in range(len(photos))]
    before = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
    verdicts = list(render_task.render_each([str(photo) for photo in photos], outdirs, limits))
    after = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
    failed = [verdict for verdict in verdicts if verdict[1] != render_task.EXIT_OK]
    if failed:
        raise SystemExit(f"the shared child failed photos: {failed}")
    return (after - before) / len(photos) * 1000


def worker_commands_ms(photos: list[Path], batch: int, settings: DispatcherSettings, scratch: Path) -> float:
    """CPU per photo of the worker's command, run as Work Queue runs it, in batches of ``batch``."""
    before = cpu_seconds(resource.RUSAGE_CHILDREN)
    for start in range(0, len(photos), batch):
        chunk = photos[start : start + batch]
        sandbox = Path(tempfile.mkdtemp(prefix=f"sandbox-{batch}-", dir=scratch))
        for local, remote in TASK_FILES:
            shutil.copyfile(local, sandbox / remote)
        for index, photo in enumerate(chunk):
            (sandbox / photo_remote(index)).symlink_to(photo)
        command = render_command(settings.max_pixels, len(chunk), settings.task_memory_mb, settings.task_max_seconds)
        environment = {**os.environ, **local_worker_environment()}  # python3 with Pillow, as a local worker has
        subprocess.run(command, shell=True, cwd=sandbox, env=environment, check=True)  # noqa: S602 - fixed command
        if not (sandbox / "results.tar").is_file():
            raise SystemExit(f"the worker's command left no results.tar in {sandbox}")
    return (cpu_seconds(resource.RUSAGE_CHILDREN) - before) / len(photos) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="each way measured this many times, interleaved")
    parser.add_argument("--core", type=int, default=max(os.sched_getaffinity(0)))
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    settings = DispatcherSettings()
    photos = make_photos(args.photos, Path(tempfile.gettempdir()) / "dp3-bench-photos")
    limits = render_task.Limits(settings.max_pixels, settings.task_memory_mb, settings.task_max_seconds)
    largest = settings.render_batch
    print(f"{len(photos)} photos of 12 MP, core {args.core}, {args.rounds} rounds; the dispatcher's default limits")
    render_task.warm_up()
    ways: dict[str, Callable[[Path], float]] = {
        "render() in this process": lambda scratch: per_photo_ms(
            photos, lambda p, out: render_task.render(str(p), str(out)), scratch
        ),
        "each photo in a forked child": lambda scratch: per_photo_ms(
            photos, lambda p, out: render_task.render_isolated(str(p), str(out), limits), scratch
        ),
        "the photos in one shared child": lambda scratch: shared_child_ms(photos, limits, scratch),
        "the worker's command, 1 per task": lambda scratch: worker_commands_ms(photos, 1, settings, scratch),
        f"the worker's command, {largest} per task": lambda scratch: worker_commands_ms(
            photos, largest, settings, scratch
        ),
    }
    figures: dict[str, list[float]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory(prefix="dp3-task-cost-") as folder:
        per_photo_ms(photos, lambda p, out: render_task.render(str(p), str(out)), Path(folder))  # page cache
        for round_number in range(args.rounds):  # interleaved: the host's drift hits every way alike
            for name, way in ways.items():
                scratch = Path(tempfile.mkdtemp(prefix=f"round-{round_number}-", dir=folder))
                figures[name].append(way(scratch))
                shutil.rmtree(scratch)
            print(f"  round {round_number + 1} of {args.rounds} done", flush=True)
    median = {name: statistics.median(values) for name, values in figures.items()}
    raw = median["render() in this process"]
    print("CPU per photo (median of the rounds; min-max):")
    for name, values in figures.items():
        print(
            f"  {name:38s} {median[name]:6.1f} ms  ({min(values):5.1f}-{max(values):5.1f})  {median[name] / raw:.2f}x"
        )
    forked = median["each photo in a forked child"]
    start = median["the worker's command, 1 per task"] - forked  # a task of one photo, less its forked render
    print("what it is made of, from the medians:")
    shared = median["the photos in one shared child"]
    print(f"  the fork (the child's fresh memory, cold caches, its exit)   {forked - raw:5.1f} ms per photo")
    print(f"  ... shared by a batch's photos (one child for them all)      {shared - raw:5.1f} ms per photo")
    print(f"  a task's start (Python, Pillow, warm-up) and its tar          {start:5.1f} ms per task")
    print(f"  so at {largest} per task, the start's share                     {start / largest:5.1f} ms per photo")
    print("what the pipeline's worker core spends beyond the command's figure is Work Queue's (transfers, sandboxes)")


if __name__ == "__main__":
    main()
