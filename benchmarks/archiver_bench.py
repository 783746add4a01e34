"""Benchmark: the archiver's verified copy into two stores vs ``cp`` + ``sha256sum`` into the same two folders.

Usage (from the repository root)::

    .venv/bin/python benchmarks/archiver_bench.py [--mb 256] [--rounds 3] [--dir DIR]

The originals are the real corpus photos plus random files up to ``--mb``
megabytes. Each round times, on the same files and the same disk:

* archiver: ``Archiver.archive`` of a Processed event per photo, i.e. for each
  store: copy to a temp file, fsync, rename, fsync the folder, drop the page
  cache, read back and compare sha256 (plus the artifacts and the sidecar);
* baseline: ``cp`` of the same originals and artifacts into two folders, then
  ``sha256sum`` of both copies (no fsync, read back from the page cache).

It prints MB/s for both and the ratio (target >= 0.7).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import zoneinfo
from pathlib import Path

from dp3 import layout
from dp3.events import JournalEntry, Status, make_photo_id
from dp3_archiver.archive import Archiver
from dp3_archiver.settings import ArchiverSettings
from dp3_archiver.stores import Store

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "exif-samples"
OWNER = "BENCH-MARK"


def make_originals(inbox: Path, staging: Path, total_mb: int) -> list[JournalEntry]:
    folder = inbox / OWNER
    folder.mkdir(parents=True)
    sources = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg"))
    entries, total, n = [], 0, 0
    while total < total_mb * 1_000_000:
        data = sources[n].read_bytes() if n < len(sources) else os.urandom(4_000_000)
        name = f"IMG_{n:05d}.JPG"
        (folder / name).write_bytes(data)
        photo_id = make_photo_id(OWNER, 1355517208, name)
        stage = layout.staging_dir(staging, photo_id)
        stage.mkdir(parents=True)
        (stage / layout.thumbnail_name(photo_id)).write_bytes(data[:8000])
        (stage / layout.web_name(photo_id)).write_bytes(data[:60000])
        entries.append(
            JournalEntry(
                id=photo_id,
                status=Status.PROCESSED,
                datetime=1355517208,
                owner=OWNER,
                path=str(folder / name),
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                service="bench",
            )
        )
        total += len(data)
        n += 1
    return entries


def artifacts(entry: JournalEntry, staging: Path) -> list[str]:
    stage = layout.staging_dir(staging, entry.id)
    return [str(stage / layout.thumbnail_name(entry.id)), str(stage / layout.web_name(entry.id))]


def fresh_stores(root: Path) -> list[Path]:
    stores = [root / "store-a", root / "store-b"]
    for store in stores:
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir()
        Store(store).init()
    return stores


def time_archiver(work: Path, entries: list[JournalEntry], inbox: Path, staging: Path, workers: int) -> float:
    stores = fresh_stores(work)
    subprocess.run(["sync"], check=True)
    archiver = Archiver([Store(s) for s in stores], inbox=inbox, staging=staging, zone=zoneinfo.ZoneInfo("UTC"))
    started = time.perf_counter()
    # As in the service: the consumer hands `workers` photos at a time to the archiver.
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for result in pool.map(archiver.archive, entries):
            assert result and result[0].status is Status.ARCHIVED
    return time.perf_counter() - started


def time_baseline(work: Path, entries: list[JournalEntry], staging: Path) -> float:
    stores = fresh_stores(work)
    subprocess.run(["sync"], check=True)
    files = [path for entry in entries for path in (entry.path, *artifacts(entry, staging))]
    started = time.perf_counter()
    for store in stores:
        target = store / "2012-12-14"
        target.mkdir()
        subprocess.run(["cp", "--", *files, str(target)], check=True)
    copies = [str(store / "2012-12-14" / Path(f).name) for store in stores for f in files]
    subprocess.run(["sha256sum", "--", *copies], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=256, help="megabytes of originals")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=ArchiverSettings.model_fields["archive_workers"].default)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the inbox and stores go (default: the system temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dp3-archiver-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        inbox, staging = work / "inbox", work / "staging"
        entries = make_originals(inbox, staging, args.mb)
        megabytes = sum(os.path.getsize(path) for e in entries for path in (e.path, *artifacts(e, staging))) / 1e6
        print(f"{len(entries)} originals + their 2 artifacts each, {megabytes:.1f} MB, two stores under {work}")
        print(f"{args.workers} archive workers (DP3_ARCHIVE_WORKERS)")
        archiver_times, baseline_times = [], []
        for round_ in range(args.rounds):
            # alternate the order so neither side always gets the warmer cache
            if round_ % 2 == 0:
                baseline_times.append(time_baseline(work, entries, staging))
                archiver_times.append(time_archiver(work, entries, inbox, staging, args.workers))
            else:
                archiver_times.append(time_archiver(work, entries, inbox, staging, args.workers))
                baseline_times.append(time_baseline(work, entries, staging))
            print(
                f"round {round_ + 1}: archiver {megabytes / archiver_times[-1]:7.1f} MB/s   "
                f"cp+sha256sum {megabytes / baseline_times[-1]:7.1f} MB/s"
            )
        archiver_rate = megabytes / statistics.median(archiver_times)
        baseline_rate = megabytes / statistics.median(baseline_times)
        print(f"median: archiver {archiver_rate:.1f} MB/s, cp+sha256sum {baseline_rate:.1f} MB/s")
        print(f"ratio archiver / (cp + sha256sum) = {archiver_rate / baseline_rate:.2f}  (target >= 0.70)")


if __name__ == "__main__":
    main()
