"""Deterministic per-photo work of the head node's file stages: bytes read, files opened, calls made.

Wall-clock timings on a shared machine drift by 2x; these counts do not. Run
from the repository root (no broker needed)::

    .venv/bin/python benchmarks/head_work.py archiver [--photos 10]
    .venv/bin/python benchmarks/head_work.py scanner [--photos 10] [--profile]
    .venv/bin/python benchmarks/head_work.py watch [--photos 10]

``archiver``: real corpus photos in a temporary inbox, staged artifacts beside
them, two real stores; each photo goes through ``Archiver.archive`` and then
``Collector.collect`` with the *same* Store objects, as the archiver process
wires them. Per photo it reports the bytes the process read with ``read``
system calls (``/proc/self/io`` ``rchar``) as a multiple of the original's
size, split into the archive and the collection step, and how often the
original's files (the inbox file, each store's copy) were opened.

``scanner``: the same photos dropped into a temporary inbox, then one
``Scanner.step()`` detects them all (the broker replaced by a list: the
publish itself is the broker's cost, measured elsewhere); per photo it reports
the bytes read, ``read`` system calls, SQLite commits, and with ``--profile``
the functions with the most calls per photo (cProfile call counts, which do
not depend on the machine's load).

``watch``: the inotify events the scanner's watch receives over each photo's
life in the inbox (written in 64 KiB chunks as a sync client does, closed,
read whole three times: the scanner's hash, the dispatcher's send to a
worker, the archiver's copy; opened once more by the collector; deleted),
with watchdog's default event mask (the scanner before issue 17) and with the
scanner's :data:`~dp3_scanner.watch.WATCHED`. (The kernel merges an event
identical to the last one still unread, so the counts of repeated writes
vary a little with the reader's speed.)

For system-call counts by kind, run either under ``strace -f -c -e
trace=openat,read,pread64,write,fsync,fdatasync``.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import shutil
import sys
import tempfile
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dp3 import layout  # noqa: E402
from dp3.events import JournalEntry, Status, make_photo_id, path_fields  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "exif-samples"
OWNER = "JAEGER-NICHOLAS"
CAPTURE = 1355517208
UTC = zoneinfo.ZoneInfo("UTC")


def corpus_photos(count: int) -> list[Path]:
    """The ``count`` largest JPEGs of the shared corpus (real camera files, 1-3 MB)."""
    photos = sorted((p for p in (CORPUS / "jpg").rglob("*.jpg") if p.is_file()), key=lambda p: -p.stat().st_size)
    if len(photos) < count:
        raise SystemExit(f"the corpus has {len(photos)} JPEGs, fewer than {count}")
    return photos[:count]


def io_counters() -> dict[str, int]:
    """This process's ``/proc/self/io`` (all threads, living and ended)."""
    fields = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        name, value = line.split(":")
        fields[name] = int(value)
    return fields


@contextmanager
def counting_opens(paths: dict[str, str]) -> Iterator[Counter[str]]:
    """Count ``open`` audit events (``os.open`` and ``open``) of the given paths, by the role each is given."""
    counts: Counter[str] = Counter()
    active = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if active[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            role = paths.get(os.fsdecode(args[0]))
            if role is not None:
                counts[role] += 1

    sys.addaudithook(hook)  # audit hooks cannot be removed: switched off instead
    try:
        yield counts
    finally:
        active[0] = False


@dataclass
class ArchiverWork:
    size: int
    archive_read: int
    collect_read: int
    opens: Counter[str]

    @property
    def reads_per_photo(self) -> float:
        return (self.archive_read + self.collect_read) / self.size


def archiver_work(root: Path, photos: list[Path]) -> list[ArchiverWork]:
    """Archive and collect each photo with shared Store objects; the work each one cost."""
    from dp3_archiver.archive import Archiver
    from dp3_archiver.collector import Collector
    from dp3_archiver.naming import StoredFiles
    from dp3_archiver.stores import Store

    inbox, staging = root / "inbox", root / "staging"
    roots = [root / "archive-a", root / "archive-b"]
    for folder in (inbox / OWNER, staging, *roots):
        folder.mkdir(parents=True)
    stores = [Store(store_root) for store_root in roots]
    for store in stores:
        store.init()

    class Published:
        def publish(self, entry: JournalEntry) -> None:
            pass

    archiver = Archiver(stores, inbox=inbox, staging=staging, zone=UTC)
    collector = Collector(stores, inbox=inbox, staging=staging, zone=UTC, publisher=Published())
    results = []
    for index, source in enumerate(photos):
        name = f"IMG_{index:04d}.JPG"
        entry = _processed(inbox / OWNER / name, source.read_bytes(), staging)
        date = layout.date_folder(entry.datetime, UTC)
        paths = {os.fsdecode(entry.fs_path): "inbox original"}
        paths.update(
            {str(r / date / StoredFiles(entry.id).original): f"copy in store {i}" for i, r in enumerate(roots)}
        )
        with counting_opens(paths) as opens:
            before = io_counters()["rchar"]
            [archived] = archiver.archive(entry)
            middle = io_counters()["rchar"]
            collected = collector.collect(archived)
            after = io_counters()["rchar"]
        if collected is None or os.path.lexists(entry.fs_path):
            raise SystemExit(f"{name} was not collected")
        results.append(ArchiverWork(entry.size or 0, middle - before, after - middle, opens))
    return results


def _processed(path: Path, data: bytes, staging: Path) -> JournalEntry:
    path.write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    photo_id = make_photo_id(OWNER, CAPTURE, path.name)
    stage = layout.staging_dir(staging, photo_id)
    stage.mkdir(parents=True)
    (stage / layout.thumbnail_name(photo_id)).write_bytes(data[:6000])  # artifact-sized stand-ins
    (stage / layout.web_name(photo_id)).write_bytes(data[:60000])
    (stage / layout.META_NAME).write_text(json.dumps({"sha256": sha256}))
    return JournalEntry(
        id=photo_id,
        status=Status.PROCESSED,
        datetime=CAPTURE,
        owner=OWNER,
        **path_fields(str(path)),
        sha256=sha256,
        size=len(data),
        service="dispatcher",
    )


def report_archiver(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="dp3-head-work-") as work:
        results = archiver_work(Path(work), corpus_photos(count))
    total = sum(r.size for r in results)
    archive = sum(r.archive_read for r in results) / total
    collect = sum(r.collect_read for r in results) / total
    opens: Counter[str] = Counter()
    for result in results:
        opens.update(result.opens)
    print(f"archiver, {len(results)} photos, {total / len(results) / 1e6:.2f} MB each on average")
    print(f"  bytes read per byte of original: {archive + collect:.2f} (archive {archive:.2f}, collect {collect:.2f})")
    for role in sorted(opens):
        print(f"  opens of the {role}: {opens[role] / len(results):.1f} per photo")


def report_scanner(count: int, profile: bool) -> None:
    from dp3.settings import load_settings
    from dp3_scanner.index import Index
    from dp3_scanner.scanner import Scanner
    from dp3_scanner.settings import ScannerSettings

    with tempfile.TemporaryDirectory(prefix="dp3-head-work-") as work:
        root = Path(work)
        inbox = root / "inbox"
        (inbox / OWNER).mkdir(parents=True)
        settings = load_settings(ScannerSettings, home=root / "home", inbox=inbox, stable_seconds=1, rescan_seconds=60)
        index = Index(settings.index_path)
        published: list[JournalEntry] = []
        clock = [1000.0]
        scanner = Scanner(settings, index, published.append, clock=lambda: clock[0], wall_clock=lambda: clock[0])
        scanner.step()  # the start-up rescan of an empty inbox
        photos = corpus_photos(count)
        for index_, source in enumerate(photos):
            shutil.copyfile(source, inbox / OWNER / f"IMG_{index_:04d}.JPG")
        size = sum(p.stat().st_size for p in photos)
        statements: Counter[str] = Counter()
        # Every write is its own transaction (BEGIN ... COMMIT): counting BEGINs counts commits.
        index._db.set_trace_callback(lambda sql: statements.update([sql.split()[0].upper()]))
        profiler = cProfile.Profile()
        before = io_counters()
        clock[0] += 1.0
        scanner.request_rescan()
        if profile:
            profiler.enable()
        scanner.step()  # rescan: every photo pending
        clock[0] += 1.0
        scanner.step()  # stable: every photo hashed, dated, published, recorded
        profiler.disable()
        after = io_counters()
        index.close()
    detected = [e for e in published if e.status is Status.DETECTED]
    if len(detected) != count:
        raise SystemExit(f"{len(detected)} of {count} photos detected")
    print(f"scanner, {count} photos, {size / count / 1e6:.2f} MB each on average")
    print(f"  bytes read per byte of photo: {(after['rchar'] - before['rchar']) / size:.2f}")
    print(f"  read system calls per photo: {(after['syscr'] - before['syscr']) / count:.1f}")
    print(f"  index transactions per photo: {statements['BEGIN'] / count:.1f}")
    print(f"  index statements per photo: {sum(statements.values()) / count:.1f}")
    if profile:
        stats = pstats.Stats(profiler)
        print(f"  Python calls per photo (cProfile): {stats.total_calls / count:.0f}")  # type: ignore[attr-defined]
        rows = sorted(stats.stats.items(), key=lambda item: -item[1][1])  # type: ignore[attr-defined]
        print("  most-called functions (calls per photo):")
        for (file, line, function), (_cc, calls, _tt, _ct, _callers) in rows[:15]:
            print(f"    {calls / count:8.1f}  {function}  {Path(file).name}:{line}")


def report_watch(count: int) -> None:
    import time

    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    from dp3_scanner.watch import WATCHED

    class Counting(FileSystemEventHandler):
        def __init__(self) -> None:
            self.events: Counter[str] = Counter()

        def on_any_event(self, event: FileSystemEvent) -> None:
            self.events[event.event_type] += 1

    photos = corpus_photos(count)
    for label, event_filter in (("watchdog's default mask", None), ("the scanner's WATCHED", WATCHED)):
        with tempfile.TemporaryDirectory(prefix="dp3-head-work-") as work:
            inbox = Path(work)
            (inbox / OWNER).mkdir()
            handler = Counting()
            observer = Observer()
            observer.schedule(handler, str(inbox), recursive=True, event_filter=event_filter)
            observer.start()
            for index, source in enumerate(photos):
                _inbox_life(inbox / OWNER / f"IMG_{index:04d}.JPG", source.read_bytes())
            time.sleep(1.0)  # let the emitter drain the queue
            observer.stop()
            observer.join()
        total = sum(handler.events.values())
        kinds = ", ".join(f"{kind} {n / count:.1f}" for kind, n in sorted(handler.events.items()))
        print(f"watch with {label}: {total / count:.1f} events per photo ({kinds})")


def _inbox_life(path: Path, data: bytes) -> None:
    """What happens to a photo in the inbox, as system calls: written, read by three stages, deleted."""
    with open(path, "wb", buffering=0) as stream:
        for start in range(0, len(data), 64 * 1024):
            stream.write(data[start : start + 64 * 1024])
    for _reader in range(3):
        with open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
    os.close(os.open(path, os.O_RDONLY))
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("archiver", "scanner", "watch"))
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="scanner: cProfile call counts per photo")
    args = parser.parse_args()
    if args.stage == "archiver":
        report_archiver(args.photos)
    elif args.stage == "watch":
        report_watch(args.photos)
    else:
        report_scanner(args.photos, args.profile)


if __name__ == "__main__":
    main()
