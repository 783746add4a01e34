"""The archiver as a real process against the real RabbitMQ: the whole path, and stores that misbehave."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dp3 import layout
from dp3.events import ErrorKind, Status
from tests.integration.archiver.harness import (
    ArchiverProcess,
    Journal,
    archiver_env,
    mount_tmpfs,
    remount,
    unmount,
)
from tests.rabbit import wait_for
from tests.unit.archiver.site import DATE, Site, failed, sha256_of

pytestmark = pytest.mark.integration


def verified_everywhere(site: Site, stores: list[Path], photo_id: str, sha256: str | None) -> bool:
    return all((root / DATE / photo_id).is_file() and sha256_of(root / DATE / photo_id) == sha256 for root in stores)


def test_processed_failed_and_no_owner_end_to_end(
    site: Site, amqp_url: str, journal: Journal, processes: list[ArchiverProcess], tmp_path: Path
) -> None:
    processes.append(ArchiverProcess(archiver_env(site, amqp_url), tmp_path / "archiver.log"))
    good = [site.photo(f"IMG_{n}.JPG") for n in range(5)]
    corrupt = failed(site.photo("broken.JPG", staged=False), ErrorKind.CORRUPT_IMAGE)
    no_owner = failed(site.photo("loose.JPG", staged=False), ErrorKind.NO_OWNER)
    for entry in [*good, corrupt, no_owner]:
        journal.publish(entry)
    collected = {entry.id for entry in [*good, corrupt]}
    journal.wait_all(collected, Status.COLLECTED, 30)
    for entry in [*good, corrupt]:
        assert verified_everywhere(site, site.store_roots, entry.id, entry.sha256)
        assert not Path(entry.path).exists()
    # Staging goes once Collected is confirmed by the broker, a moment after the journal sees it.
    wait_for(
        lambda: not any(layout.staging_dir(site.staging, e.id).exists() for e in [*good, corrupt]),
        10,
        "staging removed after collection",
    )
    [archived_corrupt] = [e for e in journal.with_status(Status.ARCHIVED) if e.id == corrupt.id]
    assert archived_corrupt.error is not None and archived_corrupt.error.kind is ErrorKind.CORRUPT_IMAGE
    assert Path(no_owner.path).exists() and no_owner.id not in journal.ids_with(Status.ARCHIVED)
    assert processes[0].metric("dp3_archiver_collected_total") == 6
    assert processes[0].metric("dp3_archiver_archived_total") == 6
    assert processes[0].metric("dp3_archiver_bytes_total", store=str(site.store_roots[0])) > 6 * 2048
    assert processes[0].metric("dp3_archiver_copy_seconds_count") >= 6 * 2


def test_store_made_read_only_mid_run_holds_photos_until_it_returns(
    site: Site, amqp_url: str, journal: Journal, processes: list[ArchiverProcess], tmp_path: Path
) -> None:
    store_b = tmp_path / "network-drive"
    mount_tmpfs(store_b, "32m")
    try:
        from dp3_archiver.stores import Store

        Store(store_b).init()
        stores = [site.store_roots[0], store_b]
        archiver = ArchiverProcess(archiver_env(site, amqp_url, stores), tmp_path / "archiver.log")
        processes.append(archiver)
        first = [site.photo(f"A_{n}.JPG") for n in range(5)]
        for entry in first:
            journal.publish(entry)
        journal.wait_all({e.id for e in first}, Status.COLLECTED, 30)

        remount(store_b, "ro")
        second = [site.photo(f"B_{n}.JPG") for n in range(5)]
        for entry in second:
            journal.publish(entry)
        wait_for(
            lambda: archiver.metric("dp3_archiver_store_errors_total", store=str(store_b), kind="read_only") >= 5,
            30,
            "read-only errors counted for the store",
        )
        assert f"store {store_b} unavailable (read_only)" in archiver.log_text()
        assert not journal.ids_with(Status.ARCHIVED) & {e.id for e in second}
        assert all(Path(e.path).exists() for e in second)  # nothing collected

        remount(store_b, "rw")
        journal.wait_all({e.id for e in second}, Status.COLLECTED, 60)
        for entry in [*first, *second]:
            assert verified_everywhere(site, stores, entry.id, entry.sha256)
            assert not Path(entry.path).exists()
    finally:
        for process in processes:
            process.stop()
        unmount(store_b)


def test_unmounted_drive_is_down_and_its_mount_point_never_written(
    site: Site, amqp_url: str, journal: Journal, processes: list[ArchiverProcess], tmp_path: Path
) -> None:
    drive, mount_point = tmp_path / "network-share", tmp_path / "mnt-drive"
    drive.mkdir()
    mount_point.mkdir()
    subprocess.run(["mount", "--bind", str(drive), str(mount_point)], check=True)
    try:
        from dp3_archiver.stores import Store

        Store(mount_point).init()
        stores = [site.store_roots[0], mount_point]
        archiver = ArchiverProcess(archiver_env(site, amqp_url, stores), tmp_path / "archiver.log")
        processes.append(archiver)
        unmount(mount_point)
        assert not os.path.ismount(mount_point) and list(mount_point.iterdir()) == []
        photos = [site.photo(f"M_{n}.JPG") for n in range(3)]
        for entry in photos:
            journal.publish(entry)
        wait_for(
            lambda: archiver.metric("dp3_archiver_store_errors_total", store=str(mount_point), kind="down") >= 3,
            30,
            "down errors counted for the unmounted drive",
        )
        assert list(mount_point.iterdir()) == []  # the empty mount point was never written into
        assert all(Path(e.path).exists() for e in photos)
        assert not journal.ids_with(Status.ARCHIVED)

        subprocess.run(["mount", "--bind", str(drive), str(mount_point)], check=True)
        journal.wait_all({e.id for e in photos}, Status.COLLECTED, 60)
        for entry in photos:
            assert verified_everywhere(site, [site.store_roots[0], drive], entry.id, entry.sha256)
    finally:
        for process in processes:
            process.stop()
        unmount(mount_point)


def test_full_store_holds_photos_until_space_returns(
    site: Site, amqp_url: str, journal: Journal, processes: list[ArchiverProcess], tmp_path: Path
) -> None:
    store_b = tmp_path / "small-drive"
    mount_tmpfs(store_b, "2m")
    try:
        from dp3_archiver.stores import Store

        Store(store_b).init()
        stores = [site.store_roots[0], store_b]
        archiver = ArchiverProcess(archiver_env(site, amqp_url, stores), tmp_path / "archiver.log")
        processes.append(archiver)
        photos = [site.photo(f"BIG_{n}.JPG", data=os.urandom(300_000)) for n in range(12)]  # ~3.6 MB > 2 MB
        for entry in photos:
            journal.publish(entry)
        wait_for(
            lambda: archiver.metric("dp3_archiver_store_errors_total", store=str(store_b), kind="full") >= 3,
            30,
            "full errors counted for the small store",
        )
        assert archiver.metric("dp3_archiver_store_free_bytes", store=str(store_b)) < 600_000
        assert any(Path(e.path).exists() for e in photos)  # held back in the inbox
        for entry in photos:  # whatever was collected is verified in both stores; never neither
            assert Path(entry.path).exists() or verified_everywhere(site, stores, entry.id, entry.sha256)

        remount(store_b, "size=64m")
        journal.wait_all({e.id for e in photos}, Status.COLLECTED, 60)
        for entry in photos:
            assert verified_everywhere(site, stores, entry.id, entry.sha256)
    finally:
        for process in processes:
            process.stop()
        unmount(store_b)


def test_three_archivers_compete_without_double_work(
    site: Site, amqp_url: str, journal: Journal, processes: list[ArchiverProcess], tmp_path: Path
) -> None:
    env = archiver_env(site, amqp_url, DP3_ARCHIVE_WORKERS="2")
    for n in range(3):
        processes.append(ArchiverProcess(env, tmp_path / f"archiver-{n}.log"))
    for process in processes:
        assert process.port  # all three up before the work arrives
    wait_for(lambda: "consuming archiver.collect" in processes[2].log_text(), 20, "the third archiver to consume")
    photos = [site.photo(f"IMG_{n:03d}.JPG", data=os.urandom(20_000)) for n in range(60)]
    for entry in photos:
        journal.publish(entry)
    journal.wait_all({e.id for e in photos}, Status.COLLECTED, 90)
    archived = [p.metric("dp3_archiver_archived_total") for p in processes]
    collected = [p.metric("dp3_archiver_collected_total") for p in processes]
    assert sum(archived) == 60 and sum(collected) == 60, (archived, collected)
    for queue in ("archiver", "archiver.collect"):  # each message handled once, by one of them

        def counts(queue: str = queue) -> tuple[list[float], list[float]]:
            handled = [p.metric("dp3_broker_messages_total", queue=queue) for p in processes]
            acked = [p.metric("dp3_broker_messages_total", queue=queue, outcome="acked") for p in processes]
            return handled, acked

        # The last ack is counted after its Collected is confirmed, i.e. after the journal saw it.
        wait_for(lambda: sum(counts()[1]) >= 60, 10, f"every {queue} message acked")
        handled, acked = counts()
        assert sum(handled) == sum(acked) == 60, (queue, handled, acked)
    assert sum(1 for n in archived if n > 0) >= 2, archived  # the work was shared
    written = sum(p.metric("dp3_archiver_bytes_total", store=str(site.store_roots[0])) for p in processes)
    sidecars = sum((site.store_roots[0] / DATE / f"{e.id}.json").stat().st_size for e in photos)
    assert (
        written
        <= 60 * 20_000
        + sum(
            (site.store_roots[0] / DATE / name).stat().st_size
            for e in photos
            for name in (layout.thumbnail_name(e.id), layout.web_name(e.id))
        )
        + 2 * sidecars * 2
    )  # each file written once (sidecars: archive + collect versions)
    for entry in photos:
        assert verified_everywhere(site, site.store_roots, entry.id, entry.sha256)
    assert len(list((site.store_roots[0] / DATE).iterdir())) == 60 * 4  # no extra names
    by_id: dict[str, list[Status]] = {}
    for event in journal.events:
        by_id.setdefault(event.id, []).append(event.status)
    for statuses in by_id.values():
        assert statuses.index(Status.ARCHIVED) < statuses.index(Status.COLLECTED)
    assert {e.archives[0] for e in journal.with_status(Status.COLLECTED)} == {str(site.store_roots[0] / DATE)}


def run_dp3(site: Site, amqp_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dp3.cli", *args],
        env=archiver_env(site, amqp_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_stores_init_and_fsck_commands_find_and_repair(tmp_path: Path, amqp_url: str) -> None:
    site = Site.create(tmp_path, init=False)
    status = run_dp3(site, amqp_url, "stores", "status")
    assert status.returncode == 1 and "DOWN" in status.stdout
    init = run_dp3(site, amqp_url, "stores", "init")
    assert init.returncode == 0 and init.stdout.count("initialised") == 2, init.stdout + init.stderr
    import zoneinfo

    from dp3_archiver.archive import Archiver

    archiver = Archiver(site.stores(), inbox=site.inbox, staging=site.staging, zone=zoneinfo.ZoneInfo("UTC"))
    first, second = site.photo("one.JPG"), site.photo("two.JPG")
    archiver.archive(first)
    archiver.archive(second)
    flipped = site.store_roots[0] / DATE / first.id
    data = bytearray(flipped.read_bytes())
    data[100] ^= 0xFF
    flipped.write_bytes(bytes(data))
    deleted = site.store_roots[1] / DATE / second.id
    deleted.unlink()

    report = run_dp3(site, amqp_url, "fsck", "--no-repair")
    assert report.returncode == 1
    assert f"corrupt     NOT REPAIRED {flipped}" in report.stdout
    assert f"missing     NOT REPAIRED {deleted}" in report.stdout

    repaired = run_dp3(site, amqp_url, "fsck")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "2 problems, 2 repaired, 0 not repaired," in repaired.stdout
    assert sha256_of(flipped) == first.sha256 and sha256_of(deleted) == second.sha256
    assert (
        run_dp3(site, amqp_url, "fsck")
        .stdout.strip()
        .endswith("0 problems, 0 repaired, 0 not repaired, 0 stale temporary files removed")
    )


def test_periodic_fixity_audit_repairs_by_itself(
    site: Site, amqp_url: str, journal: Journal, processes: list[ArchiverProcess], tmp_path: Path
) -> None:
    archiver = ArchiverProcess(archiver_env(site, amqp_url, DP3_FIXITY_SECONDS="0.5"), tmp_path / "archiver.log")
    processes.append(archiver)
    entry = site.photo()
    journal.publish(entry)
    journal.wait_all({entry.id}, Status.COLLECTED, 30)
    copy = site.store_roots[1] / DATE / entry.id
    copy.write_bytes(b"bit rot")
    # The audit leaves a photo alone for WRITE_SETTLE_SECONDS after its last sidecar write.
    wait_for(lambda: sha256_of(copy) == entry.sha256, 40, "the periodic audit to repair the copy")
    assert archiver.metric("dp3_archiver_fixity_failures_total", store=str(site.store_roots[1])) >= 1


def test_real_photos_with_awkward_names(
    site: Site, amqp_url: str, journal: Journal, processes: list[ArchiverProcess], tmp_path: Path, corpus: Path
) -> None:
    """Corpus photos (their bytes, under names that are data, not code) go through and leave the inbox."""
    processes.append(ArchiverProcess(archiver_env(site, amqp_url), tmp_path / "archiver.log"))
    sources = sorted((corpus / "jpg").glob("*.jpg"))[:3] + sorted((corpus / "tiff").iterdir())[:2]
    names = ["-rf leading dash.JPG", 'it\'s "quoted" (1).jpg', "Ünïcödé 写真.jpg", "$(touch pwned).tif", "a;b|c.tif"]
    entries = [site.photo(name, data=source.read_bytes()) for name, source in zip(names, sources, strict=True)]
    for entry in entries:
        journal.publish(entry)
    journal.wait_all({e.id for e in entries}, Status.COLLECTED, 30)
    for entry, source in zip(entries, sources, strict=True):
        assert verified_everywhere(site, site.store_roots, entry.id, entry.sha256)
        assert (site.store_roots[1] / DATE / entry.id).read_bytes() == source.read_bytes()
        assert not Path(entry.path).exists()
    assert not (Path.cwd() / "pwned").exists() and not (site.root / "pwned").exists()
