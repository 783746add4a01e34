"""SIGKILL an archiver at random points while it handles 200 photos; restart it each time.

After every kill the disk is frozen (the process is dead), so the invariant is
checked right there: every original is still in the inbox or verified in every
store, never neither. At the end every photo is Collected, each store holds
exactly one copy of each file, and each sidecar journals one Archived and one
Collected.
"""

from __future__ import annotations

import json
import os
import random
from functools import partial
from pathlib import Path

import pytest

from dp3.events import Status
from dp3.files import TEMP_PREFIX
from dp3_archiver.naming import StoredFiles
from tests.integration.archiver.harness import ArchiverProcess, Journal, archiver_env
from tests.rabbit import wait_for
from tests.unit.archiver.site import DATE, Site, sha256_of

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.slow]

PHOTOS = 200
KILLS = 12


def never_neither(site: Site, photos: list[tuple[str, str, str]]) -> None:
    for photo_id, path, sha256 in photos:
        in_inbox = Path(path).exists()
        everywhere = all(
            (root / DATE / photo_id).is_file() and sha256_of(root / DATE / photo_id) == sha256
            for root in site.store_roots
        )
        assert in_inbox or everywhere, f"{photo_id} is neither in the inbox nor verified in every store"


def test_sigkill_at_random_points_loses_nothing_and_duplicates_nothing(amqp_url: str, tmp_path: Path) -> None:
    seed = int(os.environ.get("DP3_CHAOS_SEED", random.randrange(1 << 30)))
    chance = random.Random(seed)
    print(f"chaos seed {seed} (DP3_CHAOS_SEED={seed} replays it)")
    site = Site.create(tmp_path / "site")
    journal = Journal(amqp_url)
    processes: list[ArchiverProcess] = []
    try:
        entries = [
            site.photo(f"IMG_{n:04d}.JPG", data=os.urandom(chance.randrange(8_000, 120_000))) for n in range(PHOTOS)
        ]
        photos = [(e.id, e.path, e.sha256 or "") for e in entries]
        for entry in entries:
            journal.publish(entry)
        env = archiver_env(site, amqp_url, DP3_ARCHIVE_WORKERS="4")

        def progress() -> int:
            return len(journal.with_status(Status.ARCHIVED)) + len(journal.with_status(Status.COLLECTED))

        def progressed(target: int) -> bool:
            return progress() >= target or len(journal.ids_with(Status.COLLECTED)) >= PHOTOS

        def consuming(process: ArchiverProcess) -> bool:
            return "consuming" in process.log_text()

        collected_at_kills: list[int] = []
        for kill in range(KILLS):
            process = ArchiverProcess(env, tmp_path / f"archiver-{kill}.log")
            processes.append(process)
            if chance.random() < 0.3:  # kill it as soon as it consumes: mid-start, first messages in flight
                wait_for(partial(consuming, process), 20, "the archiver to start consuming")
            else:  # kill it after a random amount of progress
                wait_for(partial(progressed, progress() + chance.randrange(1, 40)), 60, "progress")
            process.kill()
            never_neither(site, photos)
            collected_at_kills.append(len(journal.ids_with(Status.COLLECTED)))

        print(f"photos collected at each kill: {collected_at_kills}")
        assert sum(1 for n in collected_at_kills if 0 < n < PHOTOS) >= KILLS // 2  # killed in the middle of the work
        final = ArchiverProcess(env, tmp_path / "archiver-final.log")
        processes.append(final)
        journal.wait_all({photo_id for photo_id, _, _ in photos}, Status.COLLECTED, 120)
        never_neither(site, photos)
        for photo_id, path, sha256 in photos:
            assert not Path(path).exists()
            files = StoredFiles(photo_id)
            for root in site.store_roots:
                assert sha256_of(root / DATE / photo_id) == sha256
                journal_statuses = [
                    e["status"] for e in json.loads((root / DATE / files.sidecar).read_text())["journal"]
                ]
                assert journal_statuses.count("Archived") == 1 and journal_statuses.count("Collected") == 1
        for root in site.store_roots:
            names = [p.name for p in (root / DATE).iterdir() if not p.name.startswith(TEMP_PREFIX)]
            assert len(names) == PHOTOS * 4  # original, thumbnail, web, sidecar: no second copy of anything
        assert not list(site.inbox.glob("*/*"))
    finally:
        for process in processes:
            process.stop()
        journal.close()
