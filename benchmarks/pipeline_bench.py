"""Whole-pipeline throughput against the raw render, drop-to-collected latency, time per stage.

In one run, on the same cores:

1. ``raw``: this project's render code (``render_task.render``) over N camera-sized
   JPEGs in a process pool of one process per core: no broker, no hashing of
   inbox files, no archiving. The ceiling.
2. ``render + archive I/O``: the same pool, each photo also put through the file
   work the invariants ask for, with the services' own code but no broker, no
   service processes, no Work Queue: the scanner's hash, the render, the
   dispatcher's verification and durable staging, the archiver's verified copies
   and sidecars in two stores, the collector's read-back and deletion. What any
   pipeline keeping these invariants could reach at best on these cores.
3. ``pipeline``: the same N photos dropped at once into the inbox of the
   one-machine stack (``make up``: scanner, dispatcher with local Work Queue
   workers, archiver with two stores, portal with the embedded MongoDB-wire
   server), timed from the first drop to the last ``Collected``.
4. ``single``: photos dropped one at a time; drop-to-collected latency each.
5. Where the time goes, per stage, from the journal's timestamps.

Targets (issue 9): pipeline >= 0.7x the raw render rate; median single-photo
latency <= DP3_STABLE_SECONDS + 2 s.

``--split-cores`` (issue 17) measures the head node instead: the Work Queue
workers and their render tasks on one core, everything else (the stack under
supervisord, the MongoDB-wire server, RabbitMQ's server) on the other; it
reports the raw render on the worker core alone, the pipeline, the head core's
CPU per photo by program, the file-work floor on the head core, the capacity
model's prediction from those figures beside the measured rate
(``benchmarks/capacity.py``), and the ratios against their targets (see
``benchmarks/split_cores.py`` and docs/pipeline.md). ``--archivers N``
``--extra-archivers-on head|worker`` adds N-1 archivers on either core: the
check of the model.

Run from the repository root (RabbitMQ running; about 3 minutes)::

    .venv/bin/python benchmarks/pipeline_bench.py [--photos 200] [--singles 10] [--stable 1] [--split-cores]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import capacity, split_cores, timeline  # noqa: E402
from benchmarks.split_cores import CpuPair  # noqa: E402
from dp3 import render_task  # noqa: E402
from dp3.files import sha256_file  # noqa: E402
from dp3_archiver import sidecar  # noqa: E402
from dp3_archiver.deletion_rule import Deletion, collect_original  # noqa: E402
from dp3_archiver.naming import StoredFiles  # noqa: E402
from dp3_archiver.stores import Store  # noqa: E402
from dp3_dispatcher.settings import PASSWORD_FILE_NAME  # noqa: E402
from dp3_dispatcher.staging import Staging  # noqa: E402
from dp3_dispatcher.verify import verify_render  # noqa: E402
from dp3_dispatcher.workers import local_worker_environment  # noqa: E402
from tests.rabbit import create_vhost, delete_vhost, wait_for  # noqa: E402
from tests.stack import Stack, export_journal, metric_samples  # noqa: E402

ProgramKey = TypeVar("ProgramKey", str, tuple[str, str])

CORPUS = REPO.parent / "shared" / "corpus" / "exif-samples"
SIZE = (4032, 3024)  # 12.2 MP, a phone camera's frame
OWNERS = ("JAEGER-NICHOLAS", "REEDER-PHILIP", "COHEN-MIRIAM")


def make_photos(count: int, folder: Path) -> list[Path]:
    """N distinct 12 MP JPEGs with their camera's EXIF, from the corpus' larger photos (cached)."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = [folder / f"bench_{index:04d}.jpg" for index in range(count)]
    if all(path.exists() for path in wanted):
        return wanted
    sources = [p for p in sorted((CORPUS / "jpg").rglob("*.jpg")) if _pixels(p) >= 3_000_000]
    bases: list[tuple[Image.Image, bytes]] = []
    for source in sources:
        with Image.open(source) as image:
            exif = image.info.get("exif", b"")
            resized: Image.Image = image.convert("RGB").resize(SIZE, Image.Resampling.BILINEAR)
        # Sensor-like grain: an upscale alone is smooth, compresses to a third of a
        # camera file and decodes in a fraction of the time.
        grain = Image.effect_noise(SIZE, 24).convert("RGB")
        bases.append((Image.blend(resized, grain, 0.12), exif))
    for index, path in enumerate(wanted):
        if path.exists():
            continue
        base, exif = bases[index % len(bases)]
        photo = base.copy()
        # A distinct patch per photo: distinct bytes, distinct sha256, same cost to render.
        photo.paste((index * 37 % 256, index * 91 % 256, index * 53 % 256), (16, 16, 80 + index % 50, 80))
        photo.save(path, "JPEG", quality=90, exif=exif)
    return wanted


def _pixels(path: Path) -> int:
    try:
        with Image.open(path) as image:
            return int(image.width * image.height)
    except OSError:
        return 0


def _render_one(source: str) -> float:
    with tempfile.TemporaryDirectory() as outdir:
        started = time.perf_counter()
        render_task.render(source, outdir)
        return time.perf_counter() - started


def raw_render(photos: list[Path]) -> tuple[float, float]:
    """Photos per second and median seconds per photo, one process per core."""
    cores = os.cpu_count() or 1
    with concurrent.futures.ProcessPoolExecutor(cores) as pool:
        list(pool.map(_render_one, [str(p) for p in photos[:cores]]))  # warm the processes
        started = time.perf_counter()
        times = list(pool.map(_render_one, [str(p) for p in photos]))
        elapsed = time.perf_counter() - started
    return len(photos) / elapsed, statistics.median(times)


FLOOR_STEPS = ("scanner hash", "render", "verify", "staging", "store copies", "collect")
FLOOR_DATE = "2000-01-01"  # the date folder in each store


class _StepClock:
    """CPU seconds (this process, all its threads) spent in each named step."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(FLOOR_STEPS, 0.0)
        self._last = self._now()

    @staticmethod
    def _now() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def done(self, step: str) -> None:
        now = self._now()
        self.seconds[step] += now - self._last
        self._last = now


def _render_and_archive_one(inbox_photo: str, home: str) -> dict[str, float]:
    """One photo through the invariants' file work, in this process: nothing of the broker or services.

    Returns the CPU seconds each step took.
    """
    photo, root = Path(inbox_photo), Path(home)
    clock = _StepClock()
    sha256, size = sha256_file(photo)
    clock.done("scanner hash")
    staging = Staging(root / "staging")
    workspace = staging.workspace()
    render_task.render(str(photo), str(workspace))
    clock.done("render")
    received = (
        workspace / render_task.THUMBNAIL_NAME,
        workspace / render_task.WEB_NAME,
        workspace / render_task.META_NAME,
    )
    thumbnail, web, meta = staging.name_artifacts(workspace, photo.stem, received)
    if not verify_render(thumbnail, web, meta, sha256).ok:
        raise RuntimeError(f"{photo.name} did not verify")
    clock.done("verify")
    staged = staging.commit(workspace, photo.stem)
    clock.done("staging")
    stores = [Store(root / name) for name in ("archive-a", "archive-b")]
    files = StoredFiles(photo.name)
    for store in stores:  # the archiver's verified copies, then the sidecar
        folder = store.root / FLOOR_DATE
        store.ensure_copy([photo], folder / files.original, sha256, size, may_replace=False)
        for artifact, name in ((staged / thumbnail.name, files.thumbnail), (staged / web.name, files.web)):
            digest, length = sha256_file(artifact)
            store.ensure_copy([artifact], folder / name, digest, length, may_replace=False)
        store.write_document(folder / files.sidecar, sidecar.dumps({"sha256": sha256, "journal": []}))
    clock.done("store copies")
    read_back = {}
    for store in stores:  # the collector: every copy read back, then the deletion rule
        found = store.read_hash(store.root / FLOOR_DATE / files.original)
        read_back[store.label] = found[0] if found else None
    labels = [store.label for store in stores]
    if collect_original(root / "inbox", photo, sha256, read_back, labels) is not Deletion.DELETED:
        raise RuntimeError(f"{photo.name} was not collected")
    staging.discard(staged)
    clock.done("collect")
    return clock.seconds


def render_and_archive(photos: list[Path]) -> tuple[float, dict[str, float]]:
    """Photos per second of :func:`_render_and_archive_one`, and its mean CPU seconds per photo by step.

    The inbox copies are made before the clock starts. Two processes per core,
    so one waiting for an fsync or a read-back leaves its core to the other: an
    upper bound, as generous as these cores allow.
    """
    home = Path(tempfile.mkdtemp(prefix="dp3-bench-floor-"))
    try:
        inbox = home / "inbox" / OWNERS[0]
        inbox.mkdir(parents=True)
        for name in ("archive-a", "archive-b"):
            (home / name).mkdir()
            Store(home / name).init()
        dropped = [inbox / photo.name for photo in photos]
        for photo, target in zip(photos, dropped, strict=True):
            shutil.copyfile(photo, target)
        os.sync()
        with concurrent.futures.ProcessPoolExecutor(2 * (os.cpu_count() or 1)) as pool:
            started = time.perf_counter()
            steps = list(pool.map(_render_and_archive_one, [str(p) for p in dropped], [str(home)] * len(dropped)))
            rate = len(photos) / (time.perf_counter() - started)
        return rate, {step: sum(each[step] for each in steps) / len(steps) for step in FLOOR_STEPS}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def at(entry: dict[str, Any]) -> float:
    return (
        time.mktime(time.strptime(entry["at"][:19], "%Y-%m-%dT%H:%M:%S"))
        - time.timezone
        + float("0." + entry["at"][20:-1] if len(entry["at"]) > 20 else 0)
    )


def collected_count(stack: Stack) -> int:
    return int(stack.api("/api/stats")["Collected"])


def cpu_by_program() -> dict[str, CpuPair]:
    """(user, kernel) CPU seconds so far per program name, children waited for included (render tasks)."""
    totals: dict[str, CpuPair] = {}
    for sample in split_cores.processes():
        user, kernel = totals.get(sample.program, (0.0, 0.0))
        totals[sample.program] = (user + sample.cpu[0], kernel + sample.cpu[1])
    return totals


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / ticks, sum(values) / ticks


def report_cpu(burst: Burst[str], photos: int) -> None:
    print(f"CPU during the burst: machine {100 * burst.busy:.0f} % busy; per photo, by program (ms):")
    print(f"  {'program':36s} {'total':>7s} {'user':>7s} {'kernel':>7s}")
    print_cpu_rows(burst.cpu.items(), photos, "  ")
    total = sum(user + kernel for user, kernel in burst.cpu.values()) * 1000 / photos
    print(f"  {'everything on the machine':36s} {total:7.1f}")


def print_cpu_rows(rows: Iterable[tuple[str, CpuPair]], photos: int, indent: str) -> None:
    """Programs that took at least 1 ms per photo, most first: total, user, kernel ms per photo."""
    for name, (user, kernel) in sorted(rows, key=lambda item: -sum(item[1])):
        if (user + kernel) * 1000 / photos >= 1:
            per = [value * 1000 / photos for value in (user + kernel, user, kernel)]
            print(f"{indent}{name:{38 - len(indent)}s} {per[0]:7.1f} {per[1]:7.1f} {per[2]:7.1f}")


@dataclass
class Burst(Generic[ProgramKey]):
    rate: float
    elapsed: float
    cpu: dict[ProgramKey, CpuPair]  # (user, kernel) CPU seconds per program during the burst
    busy: float  # share of the machine's CPU time that was busy
    first_drop: float  # epoch seconds
    core_samples: list[tuple[float, dict[int, tuple[int, int]]]]  # (epoch seconds, busy/total ticks per core)


def pipeline(
    stack: Stack,
    photos: list[Path],
    cpu_sample: Callable[[], dict[ProgramKey, CpuPair]],
    watch: Callable[[], None] | None = None,
) -> Burst[ProgramKey]:
    """Photos per second from first drop to last Collected, that elapsed time, the CPU it took.

    ``cpu_sample`` reads the CPU used so far by program; ``watch``, if given, is
    called about every 2 s while the burst runs (the split-core mode's pinning check).
    """
    before = collected_count(stack)
    cpu_before, busy_before = cpu_sample(), machine_busy()
    first_drop = time.time()
    core_samples = [(first_drop, timeline.cpu_ticks(Path("/proc/stat").read_text()))]
    for index, photo in enumerate(photos):
        folder = stack.inbox / OWNERS[index % len(OWNERS)]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, folder / photo.name)
    last = {"n": before, "watched": time.monotonic()}
    dropped = [stack.inbox / OWNERS[index % len(OWNERS)] / photo.name for index, photo in enumerate(photos)]

    def done() -> bool:
        if time.time() - core_samples[-1][0] >= 1:
            core_samples.append((time.time(), timeline.cpu_ticks(Path("/proc/stat").read_text())))
        if watch is not None and time.monotonic() - last["watched"] >= 2:
            watch()
            last["watched"] = time.monotonic()
        # The inbox first (a stat per photo): asking the portal costs the stack CPU the burst should have.
        left = sum(1 for path in dropped if path.exists())
        if left:
            if left % 20 == 0:
                print(f"  {left} still in the inbox", flush=True)
            return False
        count = collected_count(stack)
        if count != last["n"]:
            last["n"] = count
            print(f"  collected {count - before}/{len(photos)}", flush=True)
        return count - before >= len(photos)

    wait_for(done, 1800, "every photo collected", interval=0.25)
    cpu_after, busy_after = cpu_sample(), machine_busy()
    cpu = {
        name: (user - cpu_before.get(name, (0.0, 0.0))[0], kernel - cpu_before.get(name, (0.0, 0.0))[1])
        for name, (user, kernel) in cpu_after.items()
    }
    busy = (busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1])
    names = {photo.name for photo in photos}
    last_collected = max(
        at(e) for e in export_journal(stack) if e["status"] == "Collected" and Path(e["path"]).name in names
    )
    elapsed = last_collected - first_drop
    return Burst(len(photos) / elapsed, elapsed, cpu, busy, first_drop, core_samples)


def more_collected(stack: Stack, before: int) -> bool:
    return collected_count(stack) > before


def singles(stack: Stack, photos: list[Path]) -> list[float]:
    """Drop-to-collected seconds for photos dropped one at a time."""
    latencies = []
    folder = stack.inbox / OWNERS[0]
    folder.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        before = collected_count(stack)
        target = folder / f"single_{photo.name}"
        shutil.copyfile(photo, target)
        dropped = target.stat().st_mtime
        wait_for(functools.partial(more_collected, stack, before), 120, f"{target.name} collected", interval=0.05)
        entry = next(
            e for e in reversed(export_journal(stack)) if e["status"] == "Collected" and e["path"] == str(target)
        )
        latencies.append(at(entry) - dropped)
    return latencies


def stage_times(entries: list[dict[str, Any]], names: set[str]) -> dict[str, list[float]]:
    by_photo: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in entries:
        if Path(entry["path"]).name in names:
            by_photo.setdefault(entry["id"], {}).setdefault(entry["status"], entry)
    stages: dict[str, list[float]] = {"scan": [], "render": [], "archive": [], "collect": []}
    for events in by_photo.values():
        if not {"Detected", "Processed", "Archived", "Collected"} <= set(events):
            continue
        detected = events["Detected"]
        if detected.get("upload_finished_at"):
            stages["scan"].append(at(detected) - float(detected["upload_finished_at"]))
        stages["render"].append(at(events["Processed"]) - at(detected))
        stages["archive"].append(at(events["Archived"]) - at(events["Processed"]))
        stages["collect"].append(at(events["Collected"]) - at(events["Archived"]))
    return stages


def latency_line(latencies: list[float], stable: float) -> tuple[str, bool]:
    """The single-photo line and whether its median is within DP3_STABLE_SECONDS + 2 s."""
    median = statistics.median(latencies)
    bound = stable + 2
    met = median <= bound
    line = (
        f"single photo drop-to-collected: median {median:.2f} s, min {min(latencies):.2f} s, "
        f"max {max(latencies):.2f} s  (target <= {bound:g} s: {'met' if met else 'MISSED'})"
    )
    return line, met


def print_stages(stages: dict[str, list[float]]) -> None:
    print("where the time goes in the burst (median / p90 seconds per photo):")
    for stage, values in stages.items():
        if values:
            values.sort()
            p90 = values[int(0.9 * (len(values) - 1))]
            print(f"  {stage:8s} {statistics.median(values):7.2f} / {p90:6.2f}")


# ---------------------------------------------------------------- split-core mode


@dataclass(frozen=True)
class OneCoreRender:
    rate: float  # photos per second
    median: float  # seconds per photo
    cpu: float  # CPU seconds per photo (the process's, all its threads)


def _render_all(sources: list[str], outroot: str) -> tuple[float, list[float], float]:
    """Each photo rendered into ``outroot/<stem>/``, one after another, after one warm-up render.

    Returns the wall seconds for all, each photo's, and this process's CPU seconds for all.
    """
    with tempfile.TemporaryDirectory() as warm:
        render_task.render(sources[0], warm)
    times = []
    cpu_before, started = os.times(), time.perf_counter()
    for source in sources:
        begun = time.perf_counter()
        render_task.render(source, str(Path(outroot) / Path(source).stem))
        times.append(time.perf_counter() - begun)
    elapsed, cpu_after = time.perf_counter() - started, os.times()
    return elapsed, times, (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)


def render_on_core(core: int, photos: list[Path], outroot: Path) -> OneCoreRender:
    """The raw render in one process pinned to ``core``; the artifacts stay in ``outroot`` for the floor."""
    with concurrent.futures.ProcessPoolExecutor(1, initializer=split_cores.pin, initargs=(core,)) as pool:
        elapsed, times, cpu = pool.submit(_render_all, [str(p) for p in photos], str(outroot)).result()
    return OneCoreRender(len(photos) / elapsed, statistics.median(times), cpu / len(photos))


def floor_on_core(core: int, photos: list[Path], rendered: Path, home: Path) -> split_cores.FloorRun:
    """The file-work floor in one process pinned to ``core``; the inbox copies are made before the clock."""
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    jobs = []
    for photo in photos:
        shutil.copyfile(photo, inbox / photo.name)
        files = StoredFiles(photo.name)
        artifacts = (rendered / photo.stem / render_task.THUMBNAIL_NAME, rendered / photo.stem / render_task.WEB_NAME)
        jobs.append(split_cores.FloorPhoto(inbox / photo.name, artifacts, (files.original, files.thumbnail, files.web)))
    os.sync()
    folders = [home / name / FLOOR_DATE for name in ("archive-a", "archive-b")]
    with concurrent.futures.ProcessPoolExecutor(1, initializer=split_cores.pin, initargs=(core,)) as pool:
        return pool.submit(split_cores.file_work_floor, jobs, folders).result()


def start_workers(core: int, count: int, port: int, password_file: Path, folder: Path) -> list[subprocess.Popen[bytes]]:
    """``count`` Work Queue workers, pinned to ``core`` before they exist (``taskset`` execs the worker).

    They prove the dispatcher's password (``$DP3_HOME/work-queue-password``, made at its start): the manager
    refuses a worker without it.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("DP3_")}
    env.update(local_worker_environment())
    workers = []
    for index in range(count):
        workdir = folder / f"worker-{index}"
        workdir.mkdir(parents=True)
        with (workdir / "worker.log").open("ab") as log:
            command = ["taskset", "--cpu-list", str(core), "work_queue_worker", "--cores", "1"]
            command += ["--password", str(password_file), "--timeout", "3600", "--workdir", str(workdir)]
            command += ["127.0.0.1", str(port)]
            workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker, SIGKILL one that stays, and any render task left below them."""
    below = split_cores.tree([w.pid for w in workers], {s.pid: s.parent for s in split_cores.processes()})
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
    for pid in below - {w.pid for w in workers}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class AddedArchiver:
    process: subprocess.Popen[bytes]
    metrics_url: str


def added_core(args: argparse.Namespace, cores: split_cores.Cores) -> int:
    """The core of the added archivers (``--extra-archivers-on``): the worker core stands in for a second host."""
    return cores.worker if args.extra_archivers_on == "worker" else cores.head


def start_archivers(stack: Stack, core: int, count: int, folder: Path) -> list[AddedArchiver]:
    """``count`` more archivers beside the stack, as documented (``stack.py add archiver``), pinned to ``core``.

    ``taskset`` execs ``stack.py``, which execs the archiver: one pid, on ``core``
    before it exists. They consume the stack's queue with its own archiver
    (competing consumers).
    """
    added: list[AddedArchiver] = []
    try:
        for index in range(count):
            added.append(start_archiver(stack, core, folder / f"archiver-added-{index}.log"))
        for archiver in added:
            wait_for(
                functools.partial(healthy, archiver.metrics_url), 60, "the added archiver's /healthz", interval=0.5
            )
    except BaseException:
        stop_archivers(added)
        raise
    return added


def start_archiver(stack: Stack, core: int, log_path: Path) -> AddedArchiver:
    """One added archiver, once it has said its metrics port; its output goes to ``log_path``.

    A file, not a pipe: a pipe nobody reads would stall the archiver once full.
    """
    command = ["taskset", "--cpu-list", str(core), sys.executable, str(REPO / "deploy" / "local" / "stack.py")]
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, "add", "archiver"], env=stack.env, cwd=REPO, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        said = log_path.read_text(errors="replace")
        port = re.search(r"metrics on port (\d+)", said)
        if port:
            return AddedArchiver(process, f"http://127.0.0.1:{port.group(1)}/metrics")
        if process.poll() is not None:
            raise RuntimeError(f"the added archiver exited ({process.returncode}): {said[-2000:]}")
        time.sleep(0.2)
    process.kill()
    process.wait(5)
    raise RuntimeError(f"the added archiver did not say its metrics port within 30 s: {log_path}")


def healthy(metrics_url: str) -> bool:
    try:
        return httpx.get(metrics_url.replace("/metrics", "/healthz"), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop_archivers(added: Sequence[AddedArchiver]) -> None:
    """SIGTERM each added archiver (as Ctrl-C would), SIGKILL one that stays: none outlives the run."""
    for archiver in added:
        archiver.process.terminate()
    for archiver in added:
        try:
            archiver.process.wait(30)
        except subprocess.TimeoutExpired:
            archiver.process.kill()
            archiver.process.wait(5)


def archived_total(metrics_url: str) -> int:
    return int(sum(metric_samples(metrics_url, "dp3_archiver_archived_total").values()))


def render_tasks(stack: Stack) -> dict[str, float]:
    """The dispatcher's photos-per-task histogram so far: ``le`` bucket -> tasks, and ``count``."""
    url = f"http://127.0.0.1:{stack.metrics_ports['dispatcher']}/metrics"
    buckets = metric_samples(url, "dp3_dispatcher_photos_per_task_bucket")
    counts = {labels.split('"')[1]: value for labels, value in buckets.items()}
    counts["count"] = sum(metric_samples(url, "dp3_dispatcher_photos_per_task_count").values())
    return counts


def describe_tasks(before: dict[str, float], after: dict[str, float], photos: int) -> str:
    """How many render tasks carried the burst, and how many of them carried how many photos."""
    tasks = after["count"] - before["count"]
    cumulative = {le: after[le] - before.get(le, 0.0) for le in after if le != "count"}
    cells, below = [], 0.0
    for le, total in cumulative.items():
        if total - below:
            cells.append(f"{total - below:.0f} of <= {le}")
        below = total
    return f"render tasks in the burst: {tasks:.0f}, {photos / tasks:.1f} photos per task ({', '.join(cells)})"


def workers_connected(stack: Stack) -> int:
    url = f"http://127.0.0.1:{stack.metrics_ports['dispatcher']}/metrics"
    return int(metric_samples(url, "dp3_dispatcher_workers_connected").get("", 0))


@dataclass
class SplitRun:
    burst: Burst[tuple[str, str]]
    latencies: list[float]
    stages: dict[str, list[float]]
    timeline: timeline.Timeline
    tasks: str  # the render tasks that carried the burst, described
    pinning: split_cores.PinningCheck
    archived: list[int]  # photos each archiver archived in the burst: the stack's, then the added ones


def split_pipeline(args: argparse.Namespace, run: split_cores.Run, photos: list[Path], work: Path) -> SplitRun:
    """The stack on the head core (inherited from this process), workers on the worker core; burst and singles."""
    burst, one_by_one = photos[: args.photos], photos[args.photos :]
    vhost, url = create_vhost("dp3-bench")
    stack = Stack(
        run.home,
        url,
        {
            "DP3_STABLE_SECONDS": f"{args.stable:g}",
            "DP3_WORKER_PROVIDER": "none",  # the benchmark starts the workers, on the worker core
            "DP3_RENDER_BATCH": str(args.batch),
        },
    )
    pinning = split_cores.PinningCheck()
    workers: list[subprocess.Popen[bytes]] = []
    added: list[AddedArchiver] = []
    try:
        stack.start()
        run.added_on_worker = args.extra_archivers_on == "worker"
        added = start_archivers(stack, added_core(args, run.cores), args.archivers - 1, work)
        run.added_pids = [archiver.process.pid for archiver in added]
        archivers = [f"http://127.0.0.1:{stack.metrics_ports['archiver']}/metrics"] + [a.metrics_url for a in added]
        port = int(stack.env["DP3_WORK_QUEUE_PORT"])
        wait_for((run.home / PASSWORD_FILE_NAME).exists, 30, "the dispatcher's Work Queue password")
        workers = start_workers(run.cores.worker, args.core_workers, port, run.home / PASSWORD_FILE_NAME, work)
        run.worker_pids = [worker.pid for worker in workers]
        wait_for(lambda: workers_connected(stack) >= len(workers), 60, "the workers connected", interval=0.5)
        pinning.look(run)
        archived_before = [archived_total(url) for url in archivers]
        tasks_before = render_tasks(stack)
        measured = pipeline(stack, burst, run.cpu_by_group, functools.partial(pinning.look, run))
        tasks = describe_tasks(tasks_before, render_tasks(stack), len(burst))
        archived = [archived_total(url) - before for url, before in zip(archivers, archived_before, strict=True)]
        pinning.look(run)
        latencies = singles(stack, one_by_one) if one_by_one else []
        pinning.look(run)
        entries, names = export_journal(stack), {p.name for p in burst}
        stages = stage_times(entries, names)
        steps = timeline.burst_timeline(entries, names, measured.first_drop, at)
    finally:
        stop_archivers(added)  # first: the stack's stop counts any process left with its DP3_HOME as an error
        stop_workers(workers)
        stack.stop()
        delete_vhost(vhost)
    return SplitRun(measured, latencies, stages, steps, tasks, pinning, archived)


def group_total(cpu: dict[tuple[str, str], CpuPair], group: str) -> float:
    """CPU seconds of one group, every program in it."""
    return sum(user + kernel for (where, _), (user, kernel) in cpu.items() if where == group)


def render_side_total(cpu: dict[tuple[str, str], CpuPair]) -> float:
    """CPU seconds of the worker core's workers and render tasks: not of an archiver added there."""
    return sum(
        user + kernel
        for (where, name), (user, kernel) in cpu.items()
        if where == split_cores.WORKER and not name.endswith(split_cores.ADDED)
    )


NOT_COUNTED = {
    split_cores.KERNEL: "kernel threads (whole machine)",
    split_cores.BENCHMARK: "this benchmark (watching)",
    split_cores.OTHER: "other processes (not this run)",
}


def group_model(burst: Burst[tuple[str, str]], photos: int, group: str, core: int) -> capacity.CoreGroup:
    """One core's group for the capacity model: its programs' CPU ms per photo in the burst (all, none left out)."""
    per_photo = {
        name: (user + kernel) * 1000 / photos for (where, name), (user, kernel) in burst.cpu.items() if where == group
    }
    return capacity.CoreGroup(f"{group} {core}", 1, per_photo)


def report_split_cpu(burst: Burst[tuple[str, str]], photos: int, cores: split_cores.Cores) -> float:
    """The CPU table split by core; returns the head node's CPU seconds per photo."""
    print(f"CPU during the burst: machine {100 * burst.busy:.0f} % busy; per photo, by program (ms):")
    print(f"  {'program':36s} {'total':>7s} {'user':>7s} {'kernel':>7s}")
    for group, core in ((split_cores.HEAD, cores.head), (split_cores.WORKER, cores.worker)):
        print(f"  {group} {core}:")
        print_cpu_rows([(name, pair) for (where, name), pair in burst.cpu.items() if where == group], photos, "    ")
        print(f"    {'all of the ' + group:34s} {group_total(burst.cpu, group) * 1000 / photos:7.1f}")
    print("  not counted for the head node:")
    for group, label in NOT_COUNTED.items():
        print(f"    {label:34s} {group_total(burst.cpu, group) * 1000 / photos:7.1f}")
    return group_total(burst.cpu, split_cores.HEAD) / photos


def split_main(args: argparse.Namespace, cores: split_cores.Cores, photos: list[Path]) -> int:
    """The split-core mode (``--split-cores``): see docs/pipeline.md."""
    split_cores.pin(cores.head)  # this process, and all it starts from here on: the stack included
    burst = photos[: args.photos]
    work = Path(tempfile.mkdtemp(prefix="dp3-bench-split-"))
    try:
        with split_cores.rabbitmq_pinned(cores.head) as rabbitmq:
            print(f"head core {cores.head}: this benchmark, the stack, RabbitMQ ({rabbitmq.threads} threads pinned)")
            print(f"worker core {cores.worker}: {args.core_workers} Work Queue workers and their render tasks")
            if args.archivers > 1:
                where = added_core(args, cores)
                print(f"archivers: the stack's on the head core, {args.archivers - 1} added on core {where}")
            raw = render_on_core(cores.worker, burst, work / "rendered")
            print(
                f"raw render on the worker core, one process: {raw.rate:6.2f} photos/s  "
                f"(median {raw.median * 1000:.0f} ms, CPU {raw.cpu * 1000:.0f} ms per photo)",
                flush=True,
            )
            floor = floor_on_core(cores.head, burst, work / "rendered", work / "floor")
            shutil.rmtree(work / "floor")
            print(
                f"file-work floor on the head core, one process: CPU {floor.cpu_ms_per_photo:.1f} ms per photo "
                f"(kernel {floor.system_ms_per_photo:.1f}), "
                f"{floor.rate:6.2f} photos/s wall",
                flush=True,
            )
            measured = split_pipeline(args, split_cores.Run(work / "home", cores, rabbitmq.roots), photos, work)
        print(
            f"RabbitMQ (pids {sorted(rabbitmq.roots)} and below): {rabbitmq.restored} threads have their own "
            f"affinity back, {rabbitmq.not_restored} do not"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    burst_run = measured.burst
    print(f"pipeline:    {burst_run.rate:6.2f} photos/s  ({burst_run.elapsed:.1f} s from first drop to last Collected)")
    print(measured.pinning.summary(cores))
    head_cpu = report_split_cpu(burst_run, len(burst), cores)
    model = capacity.capacity(
        group_model(burst_run, len(burst), split_cores.HEAD, cores.head),
        group_model(burst_run, len(burst), split_cores.WORKER, cores.worker),
    )
    print("\n".join(capacity.describe(model, burst_run.rate)))
    if len(measured.archived) > 1:
        print(f"photos archived in the burst by each archiver (the stack's first): {measured.archived}")
    worker_cpu = render_side_total(burst_run.cpu) / len(burst)
    print(
        f"workers' CPU per photo in the pipeline: {worker_cpu * 1000:.1f} ms, {worker_cpu / raw.cpu:.2f}x the "
        "raw render's (Work Queue's transfers, one Python start per task)"
    )
    print_stages(measured.stages)
    print("\n".join(measured.timeline.describe(raw.rate)))
    print(measured.tasks)
    for label, core in (
        (f"{split_cores.WORKER} {cores.worker}", cores.worker),
        (f"{split_cores.HEAD} {cores.head}", cores.head),
    ):
        shares = timeline.busy_by_interval(burst_run.core_samples, core)
        print(timeline.describe_busy(shares, burst_run.first_drop, label))
    to_raw = burst_run.rate / raw.rate
    to_floor = head_cpu * 1000 / floor.cpu_ms_per_photo
    print("targets, ratios from this one run:")
    print(
        f"  pipeline / raw render on the worker core       {to_raw:6.2f}x  "
        f"(target >= 0.90x: {split_cores.verdict(to_raw, 0.9, at_least=True)})"
    )
    print(
        f"  head-node CPU per photo / file-work floor      {to_floor:6.2f}x  "
        f"({head_cpu * 1000:.1f} / {floor.cpu_ms_per_photo:.1f} ms; "
        f"target <= 4x: {split_cores.verdict(to_floor, 4, at_least=False)}, "
        f"aim 2x: {split_cores.verdict(to_floor, 2, at_least=False)})"
    )
    if measured.latencies:
        print("  " + latency_line(measured.latencies, args.stable)[0])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--singles", type=int, default=10)
    parser.add_argument("--stable", type=float, default=1.0, help="DP3_STABLE_SECONDS for the stack")
    parser.add_argument("--batch", type=int, default=16, help="DP3_RENDER_BATCH: most photos per render task")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dp3-bench-photos")
    parser.add_argument(
        "--split-cores",
        action="store_true",
        help="workers and render tasks on one core, the rest of the stack on another; targets of issue 17",
    )
    parser.add_argument("--head-core", type=int, help="split-core mode: the head node's core (default: the lowest)")
    parser.add_argument("--worker-core", type=int, help="split-core mode: the workers' core (default: the highest)")
    parser.add_argument("--core-workers", type=int, default=2, help="split-core mode: workers on the worker core")
    parser.add_argument(
        "--archivers",
        type=int,
        default=1,
        help="split-core mode: archivers in all; N-1 are added (stack.py add archiver), competing for the queue",
    )
    parser.add_argument(
        "--extra-archivers-on",
        choices=("head", "worker"),
        default="head",
        help="split-core mode: the core of the added archivers ('worker' stands in for a second host)",
    )
    args = parser.parse_args()
    # A SIGTERM (a timeout, a CI job cancelled) runs the clean-ups too, as Ctrl-C does: the stack stops, its
    # vhost goes, and in split-core mode RabbitMQ gets its cores back.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.photos < 1 or args.singles < 0:
        parser.error("--photos must be at least 1 and --singles at least 0")
    if not args.split_cores and (args.archivers != 1 or args.extra_archivers_on != "head"):
        parser.error("--archivers and --extra-archivers-on belong to --split-cores")
    if args.split_cores:
        if args.core_workers < 1:
            parser.error(f"--core-workers {args.core_workers}: at least 1")
        if args.archivers < 1:
            parser.error(f"--archivers {args.archivers}: at least 1")
        try:
            cores = split_cores.choose_cores(os.sched_getaffinity(0), args.head_core, args.worker_core)
        except ValueError as exc:
            parser.error(str(exc))

    print(f"making {args.photos + args.singles} distinct {SIZE[0]}x{SIZE[1]} JPEGs in {args.cache} ...", flush=True)
    photos = make_photos(args.photos + args.singles, args.cache)
    burst, one_by_one = photos[: args.photos], photos[args.photos :]
    megabytes = sum(p.stat().st_size for p in burst) / 1e6
    print(f"{len(burst)} photos, {megabytes:.0f} MB; cores: {os.cpu_count()}", flush=True)
    if args.split_cores:
        return split_main(args, cores, photos)

    raw_rate, raw_median = raw_render(burst)
    print(f"raw render:  {raw_rate:6.2f} photos/s  (median {raw_median * 1000:.0f} ms per photo per core)", flush=True)
    floor_rate, floor_steps = render_and_archive(burst)
    print(
        f"render + archive I/O, no broker: {floor_rate:6.2f} photos/s  "
        f"({floor_rate / raw_rate:.2f}x of the raw render)",
        flush=True,
    )
    print("  CPU per photo by step (ms): " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in floor_steps.items()))
    beside = sum(floor_steps.values()) - floor_steps["render"]
    print(f"  beside the render: {beside * 1000:.1f} ms, {beside / floor_steps['render']:.2f}x the render's own CPU")

    vhost, url = create_vhost("dp3-bench")
    home = Path(tempfile.mkdtemp(prefix="dp3-bench-")) / "home"
    stack = Stack(
        home,
        url,
        {
            "DP3_STABLE_SECONDS": f"{args.stable:g}",
            "DP3_WORKERS_MAX": str(os.cpu_count() or 1),
            "DP3_RENDER_BATCH": str(args.batch),
        },
    )
    try:
        stack.start()
        measured = pipeline(stack, burst, cpu_by_program)
        latencies = singles(stack, one_by_one) if one_by_one else []
        entries, names = export_journal(stack), {p.name for p in burst}
        stages = stage_times(entries, names)
        steps = timeline.burst_timeline(entries, names, measured.first_drop, at)
    finally:
        stack.stop()
        delete_vhost(vhost)
        shutil.rmtree(home.parent, ignore_errors=True)

    ratio = measured.rate / raw_rate
    print(f"pipeline:    {measured.rate:6.2f} photos/s  ({measured.elapsed:.1f} s from first drop to last Collected)")
    print(f"ratio:       {ratio:.2f}x of the raw render  (target >= 0.70x: {'met' if ratio >= 0.7 else 'MISSED'})")
    if latencies:
        print(latency_line(latencies, args.stable)[0])
    report_cpu(measured, len(burst))
    print_stages(stages)
    print("\n".join(steps.describe(raw_rate)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
