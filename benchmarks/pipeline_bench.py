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

Run from the repository root (RabbitMQ running; about 3 minutes)::

    .venv/bin/python benchmarks/pipeline_bench.py [--photos 200] [--singles 10] [--stable 1]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dp3.files import sha256_file  # noqa: E402
from dp3_archiver import sidecar  # noqa: E402
from dp3_archiver.collect import Outcome, collect_original  # noqa: E402
from dp3_archiver.naming import StoredFiles  # noqa: E402
from dp3_archiver.stores import Store  # noqa: E402
from dp3_dispatcher import render_task  # noqa: E402
from dp3_dispatcher.staging import Staging  # noqa: E402
from dp3_dispatcher.verify import verify_render  # noqa: E402
from tests.rabbit import create_vhost, delete_vhost, wait_for  # noqa: E402
from tests.stack import Stack, export_journal  # noqa: E402

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
    if collect_original(root / "inbox", photo, sha256, read_back, labels) is not Outcome.DELETED:
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


def cpu_by_program() -> dict[str, tuple[float, float]]:
    """(user, kernel) CPU seconds so far per program name, children waited for included (render tasks)."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, tuple[float, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        comm, fields = raw[raw.index("(") + 1 : raw.rindex(")")], raw[raw.rindex(")") + 2 :].split()
        utime, stime, cutime, cstime = (int(value) / ticks for value in fields[11:15])
        name = _program(comm, cmdline)
        user, kernel = totals.get(name, (0.0, 0.0))
        totals[name] = (user + utime + cutime, kernel + stime + cstime)
    return totals


def _program(comm: str, cmdline: list[bytes]) -> str:
    names = [Path(part.decode(errors="replace")).name for part in cmdline[:2]]
    if names and names[0].startswith("python") and len(names) > 1 and names[1]:
        return names[1]  # a script: dp3-archiver, supervisord, this benchmark...
    if comm.startswith("work_queue_work"):
        return "work_queue_worker (+ render tasks)"
    if comm in {"beam.smp", "erl_child_setup", "epmd", "inet_gethost"}:
        return "rabbitmq (erlang)"
    return comm


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / ticks, sum(values) / ticks


def report_cpu(burst: Burst, photos: int) -> None:
    print(f"CPU during the burst: machine {100 * burst.busy:.0f} % busy; per photo, by program (ms):")
    print(f"  {'program':36s} {'total':>7s} {'user':>7s} {'kernel':>7s}")
    rows = sorted(burst.cpu.items(), key=lambda item: -sum(item[1]))
    for name, (user, kernel) in rows:
        if (user + kernel) * 1000 / photos >= 1:
            per = [value * 1000 / photos for value in (user + kernel, user, kernel)]
            print(f"  {name:36s} {per[0]:7.1f} {per[1]:7.1f} {per[2]:7.1f}")
    total = sum(user + kernel for user, kernel in burst.cpu.values()) * 1000 / photos
    print(f"  {'everything on the machine':36s} {total:7.1f}")


@dataclass
class Burst:
    rate: float
    elapsed: float
    cpu: dict[str, tuple[float, float]]  # (user, kernel) CPU seconds per program during the burst
    busy: float  # share of the machine's CPU time that was busy


def pipeline(stack: Stack, photos: list[Path]) -> Burst:
    """Photos per second from first drop to last Collected, that elapsed time, the CPU it took."""
    before = collected_count(stack)
    cpu_before, busy_before = cpu_by_program(), machine_busy()
    first_drop = time.time()
    for index, photo in enumerate(photos):
        folder = stack.inbox / OWNERS[index % len(OWNERS)]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, folder / photo.name)
    last = {"n": before}
    dropped = [stack.inbox / OWNERS[index % len(OWNERS)] / photo.name for index, photo in enumerate(photos)]

    def done() -> bool:
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
    cpu_after, busy_after = cpu_by_program(), machine_busy()
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
    return Burst(len(photos) / elapsed, elapsed, cpu, busy)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--singles", type=int, default=10)
    parser.add_argument("--stable", type=float, default=1.0, help="DP3_STABLE_SECONDS for the stack")
    parser.add_argument("--batch", type=int, default=16, help="DP3_RENDER_BATCH: most photos per render task")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dp3-bench-photos")
    args = parser.parse_args()

    print(f"making {args.photos + args.singles} distinct {SIZE[0]}x{SIZE[1]} JPEGs in {args.cache} ...", flush=True)
    photos = make_photos(args.photos + args.singles, args.cache)
    burst, one_by_one = photos[: args.photos], photos[args.photos :]
    megabytes = sum(p.stat().st_size for p in burst) / 1e6
    print(f"{len(burst)} photos, {megabytes:.0f} MB; cores: {os.cpu_count()}", flush=True)

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
            "DP3_WORKERS": str(os.cpu_count() or 1),
            "DP3_WORKERS_MAX": str(os.cpu_count() or 1),
            "DP3_RENDER_BATCH": str(args.batch),
        },
    )
    try:
        stack.start()
        measured = pipeline(stack, burst)
        latencies = singles(stack, one_by_one) if one_by_one else []
        stages = stage_times(export_journal(stack), {p.name for p in burst})
    finally:
        stack.stop()
        delete_vhost(vhost)
        shutil.rmtree(home.parent, ignore_errors=True)

    ratio = measured.rate / raw_rate
    print(f"pipeline:    {measured.rate:6.2f} photos/s  ({measured.elapsed:.1f} s from first drop to last Collected)")
    print(f"ratio:       {ratio:.2f}x of the raw render  (target >= 0.70x: {'met' if ratio >= 0.7 else 'MISSED'})")
    if latencies:
        median = statistics.median(latencies)
        bound = args.stable + 2
        print(
            f"single photo drop-to-collected: median {median:.2f} s, min {min(latencies):.2f} s, "
            f"max {max(latencies):.2f} s  (target <= {bound:g} s: {'met' if median <= bound else 'MISSED'})"
        )
    report_cpu(measured, len(burst))
    print("where the time goes in the burst (median / p90 seconds per photo):")
    for stage, values in stages.items():
        if values:
            values.sort()
            p90 = values[int(0.9 * (len(values) - 1))]
            print(f"  {stage:8s} {statistics.median(values):7.2f} / {p90:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
