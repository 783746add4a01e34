"""Archiver and Collector handlers on real directories (no broker): the invariants, case by case."""

from __future__ import annotations

import json
import time
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from dp3 import layout
from dp3.broker import Message
from dp3.errors import PublishNotConfirmed
from dp3.events import ErrorKind, Status
from dp3.testing import FakePublisher
from dp3_archiver.archive import Archiver
from dp3_archiver.collector import Collector, CopiesNotVerified, staging_is_of_other_bytes
from dp3_archiver.naming import StoredFiles, collision_name
from dp3_archiver.stores import StoreUnavailable
from tests.unit.archiver.site import DATE, Site, failed, sha256_of, snapshot

UTC = zoneinfo.ZoneInfo("UTC")


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site.create(tmp_path)


def archiver(site: Site, zone: zoneinfo.ZoneInfo = UTC) -> Archiver:
    return Archiver(site.stores(), inbox=site.inbox, staging=site.staging, zone=zone)


def collector(site: Site, publisher: FakePublisher | None = None) -> Collector:
    publisher = publisher or FakePublisher()
    return Collector(site.stores(), inbox=site.inbox, staging=site.staging, zone=UTC, publisher=publisher)


def sidecar_of(site: Site, store: int, name: str, date: str = DATE) -> Any:
    return json.loads((site.store_roots[store] / date / StoredFiles(name).sidecar).read_text())


def test_processed_photo_lands_in_every_store_with_artifacts_and_sidecar(site: Site) -> None:
    entry = site.photo()
    [archived] = archiver(site).archive(entry)
    assert archived.status is Status.ARCHIVED and archived.stored_name == entry.id
    assert archived.archives == [str(root / DATE) for root in site.store_roots]
    files = StoredFiles(entry.id)
    for root in site.store_roots:
        folder = root / DATE
        assert (folder / entry.id).read_bytes() == Path(entry.path).read_bytes()
        stage = layout.staging_dir(site.staging, entry.id)
        assert (folder / files.thumbnail).read_bytes() == (stage / layout.thumbnail_name(entry.id)).read_bytes()
        assert (folder / files.web).read_bytes() == (stage / layout.web_name(entry.id)).read_bytes()
    document = sidecar_of(site, 0, entry.id)
    assert document == sidecar_of(site, 1, entry.id)
    assert document["sha256"] == entry.sha256 and document["meta"] == {"width": 10} and document["error"] is None
    assert [item["status"] for item in document["journal"]] == ["Processed", "Archived"]
    assert set(document["files"]) == {"original", "thumbnail", "web"}


def test_date_folder_follows_the_site_time_zone(site: Site) -> None:
    entry = site.photo()  # 2012-12-14 20:33 UTC is already the 15th in Tokyo
    [archived] = archiver(site, zoneinfo.ZoneInfo("Asia/Tokyo")).archive(entry)
    assert all(folder.endswith("2012-12-15") for folder in archived.archives)


def test_redelivery_writes_nothing_and_re_emits_the_same_event(site: Site) -> None:
    entry = site.photo()
    [first] = archiver(site).archive(entry)
    before = {root: snapshot(root) for root in site.store_roots}
    [second] = archiver(site).archive(entry)
    assert second.event_id == first.event_id
    assert {root: snapshot(root) for root in site.store_roots} == before


def test_a_rotten_copy_is_replaced_on_redelivery(site: Site) -> None:
    entry = site.photo()
    archiver(site).archive(entry)
    copy = site.store_roots[1] / DATE / entry.id
    copy.write_bytes(b"rot" + copy.read_bytes()[3:])
    archiver(site).archive(entry)
    assert sha256_of(copy) == entry.sha256


def test_id_collision_gets_a_distinct_recorded_name(site: Site) -> None:
    first = site.photo()
    archiver(site).archive(first)
    collector(site).collect(first.next(Status.ARCHIVED, service="t", stored_name=first.id))
    second = site.photo()  # same owner, time and name: same id, other bytes
    assert second.id == first.id and second.sha256 != first.sha256
    [archived] = archiver(site).archive(second)
    expected = collision_name(first.id, second.sha256 or "")
    assert archived.stored_name == expected
    for root in site.store_roots:
        assert sha256_of(root / DATE / first.id) == first.sha256  # never overwritten
        assert sha256_of(root / DATE / expected) == second.sha256
    assert sidecar_of(site, 0, expected)["name"] == expected
    assert sidecar_of(site, 0, first.id)["sha256"] == first.sha256


def test_collision_with_an_original_whose_sidecar_is_not_written_yet(site: Site) -> None:
    first = site.photo(staged=False)
    for root in site.store_roots:
        (root / DATE).mkdir()
        (root / DATE / first.id).write_bytes(Path(first.path).read_bytes())
    second = site.photo(staged=False)
    [archived] = archiver(site).archive(second)
    assert archived.stored_name != first.id
    assert sha256_of(site.store_roots[0] / DATE / first.id) == first.sha256


def test_permanent_failure_archives_the_original_without_artifacts(site: Site) -> None:
    entry = failed(site.photo(staged=False), ErrorKind.CORRUPT_IMAGE)
    [archived] = archiver(site).archive(entry)
    assert archived.error is not None and archived.error.kind is ErrorKind.CORRUPT_IMAGE
    assert sorted(p.name for p in (site.store_roots[0] / DATE).iterdir()) == sorted([entry.id, f"{entry.id}.json"])
    assert sidecar_of(site, 0, entry.id)["error"]["kind"] == "corrupt_image"
    collected = collector(site).collect(archived)
    assert collected is not None and collected.error is not None and not Path(entry.path).exists()


@pytest.mark.parametrize("kind", [ErrorKind.NO_OWNER, ErrorKind.UNREADABLE])
def test_no_owner_and_unreadable_are_not_touched(site: Site, kind: ErrorKind) -> None:
    entry = failed(site.photo(staged=False), kind)
    assert archiver(site).archive(entry) == []
    assert Path(entry.path).exists()
    assert not (site.store_roots[0] / DATE).exists()


def test_original_changed_before_archiving_is_a_source_changed_failure(site: Site) -> None:
    entry = site.photo()
    Path(entry.path).write_bytes(b"replaced by the user")
    [failure] = archiver(site).archive(entry)
    assert failure.status is Status.FAILED and failure.error is not None
    assert failure.error.kind is ErrorKind.SOURCE_CHANGED and failure.error.stage == "archive"
    assert not (site.store_roots[0] / DATE / entry.id).exists()
    assert archiver(site).archive(failure) == []  # its own failure is not archived again
    assert Path(entry.path).read_bytes() == b"replaced by the user"


def test_missing_store_copy_is_restored_from_the_other_store_after_collection(site: Site) -> None:
    entry = site.photo()
    [archived] = archiver(site).archive(entry)
    collector(site).collect(archived)
    assert not Path(entry.path).exists()
    (site.store_roots[1] / DATE / entry.id).unlink()
    archiver(site).archive(entry)  # a late redelivery of Processed
    assert sha256_of(site.store_roots[1] / DATE / entry.id) == entry.sha256


def test_store_down_holds_the_photo_and_nothing_is_written_anywhere(site: Site) -> None:
    entry = site.photo()
    (site.store_roots[1] / layout.STORE_MARKER).unlink()
    with pytest.raises(StoreUnavailable) as caught:
        archiver(site).archive(entry)
    assert str(site.store_roots[1]) in str(caught.value)
    assert not (site.store_roots[0] / DATE).exists() and Path(entry.path).exists()


def test_collection_needs_every_store_verified(site: Site) -> None:
    entry = site.photo()
    [archived] = archiver(site).archive(entry)
    copy = site.store_roots[0] / DATE / entry.id
    copy.write_bytes(b"flipped")
    with pytest.raises(CopiesNotVerified):
        collector(site).collect(archived)
    assert Path(entry.path).exists()
    copy.unlink()
    with pytest.raises(CopiesNotVerified):
        collector(site).collect(archived)
    (site.store_roots[1] / layout.STORE_MARKER).unlink()
    with pytest.raises(StoreUnavailable):
        collector(site).collect(archived)
    assert Path(entry.path).exists()


def test_collection_leaves_a_replaced_file_and_journals_collected(site: Site) -> None:
    entry = site.photo()
    [archived] = archiver(site).archive(entry)
    Path(entry.path).write_bytes(b"a new version")
    assert collector(site).collect(archived) is None
    assert Path(entry.path).read_bytes() == b"a new version"
    Path(entry.path).write_bytes(Path(site.store_roots[0] / DATE / entry.id).read_bytes())
    collected = collector(site).collect(archived)
    assert collected is not None and collected.status is Status.COLLECTED and not Path(entry.path).exists()
    again = collector(site).collect(archived)
    assert again is not None and again.event_id == collected.event_id
    statuses = [item["status"] for item in sidecar_of(site, 1, entry.id)["journal"]]
    assert statuses == ["Processed", "Archived", "Collected"]


def test_handler_publishes_collected_then_removes_staging(site: Site) -> None:
    entry = site.photo()
    [archived] = archiver(site).archive(entry)
    publisher = FakePublisher()
    handler = collector(site, publisher)
    assert handler.handle(Message(entry=archived, redelivered=False, handler_failures=0, retries=0, body=b"")) == []
    assert [e.status for e in publisher.published] == [Status.COLLECTED]
    assert not layout.staging_dir(site.staging, entry.id).exists()


def test_staging_that_now_holds_other_bytes_renders_is_left_to_them(site: Site) -> None:
    """The id handed out again (a scanner's index lost): the first photo's Collected removes only its own renders."""
    entry = site.photo(data=b"first" * 300)
    [archived] = archiver(site).archive(entry)
    again = site.photo(data=b"second" * 300, sub="again", photo_id=entry.id)  # committed under the same id
    staged = {p.name: p.read_bytes() for p in layout.staging_dir(site.staging, entry.id).iterdir()}
    handler = collector(site)
    handler.handle(Message(entry=archived, redelivered=False, handler_failures=0, retries=0, body=b""))
    folder = layout.staging_dir(site.staging, again.id)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == staged
    assert not [p for p in site.staging.iterdir() if p != folder]  # the claim taken for the check is gone


@pytest.mark.parametrize(
    ("staged_for", "other"),
    [(None, False), ("", False), ("a" * 64, False), ("b" * 64, True)],
    ids=["nothing staged", "meta.json unreadable", "these bytes", "other bytes"],
)
def test_which_staging_folders_are_another_photos(staged_for: str | None, other: bool) -> None:
    assert staging_is_of_other_bytes(staged_for, "a" * 64) is other


def test_a_collected_event_the_broker_does_not_confirm_keeps_staging_for_the_redelivery(site: Site) -> None:
    entry = site.photo()
    [archived] = archiver(site).archive(entry)
    publisher = FakePublisher()
    publisher.refuse = True
    with pytest.raises(PublishNotConfirmed):
        collector(site, publisher).handle(
            Message(entry=archived, redelivered=False, handler_failures=0, retries=0, body=b"")
        )
    assert layout.staging_dir(site.staging, entry.id).exists()  # the redelivered Archived still finds it


def test_duplicate_is_verified_against_the_existing_copies_and_collected(site: Site) -> None:
    entry = site.photo()
    [archived] = archiver(site).archive(entry)
    collector(site).collect(archived)
    data = (site.store_roots[0] / DATE / entry.id).read_bytes()
    again = site.photo("DSC00372 copy.JPG", data=data, staged=False, sub="later")
    duplicate = again.model_copy(
        update={"status": Status.DUPLICATE, "duplicate_of": entry.id, "archives": archived.archives}
    )
    before = snapshot(site.store_roots[0])
    [dup_archived] = archiver(site).archive(duplicate)
    assert dup_archived.stored_name == entry.id and dup_archived.duplicate_of == entry.id
    assert dup_archived.path == again.path
    assert set(snapshot(site.store_roots[0])) == set(before)  # no new file: the copy is shared
    document = sidecar_of(site, 0, entry.id)
    assert document["duplicates"][0]["path"] == again.path
    collected = collector(site).collect(dup_archived)
    assert collected is not None and not Path(again.path).exists()


def test_duplicate_whose_copies_do_not_verify_is_not_collected(site: Site) -> None:
    entry = site.photo()
    [archived] = archiver(site).archive(entry)
    collector(site).collect(archived)
    data = (site.store_roots[0] / DATE / entry.id).read_bytes()
    again = site.photo("other.JPG", data=data, staged=False)
    duplicate = again.model_copy(update={"status": Status.DUPLICATE, "duplicate_of": entry.id})
    for root in site.store_roots:
        (root / DATE / entry.id).write_bytes(b"rotten")
    [dup_archived] = archiver(site).archive(duplicate)  # restored from the re-upload's bytes
    for root in site.store_roots:
        assert sha256_of(root / DATE / entry.id) == entry.sha256
    (site.store_roots[0] / DATE / entry.id).write_bytes(b"rotten again")
    with pytest.raises(CopiesNotVerified):
        collector(site).collect(dup_archived)
    assert Path(again.path).exists()


def test_collection_observes_drop_to_collected_latency_and_store_gauges(site: Site) -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    entry = site.photo().model_copy(update={"upload_finished_at": time.time() - 42.0})
    [archived] = archiver(site).archive(entry)
    count_before = sample("dp3_archiver_drop_to_collected_seconds_count")
    sum_before = sample("dp3_archiver_drop_to_collected_seconds_sum")
    assert collector(site).collect(archived) is not None
    assert sample("dp3_archiver_drop_to_collected_seconds_count") == count_before + 1
    assert 42.0 <= sample("dp3_archiver_drop_to_collected_seconds_sum") - sum_before < 60.0
    label = str(site.store_roots[0])
    assert sample("dp3_archiver_store_up", store=label) == 1.0
    assert (
        sample("dp3_archiver_store_size_bytes", store=label) >= sample("dp3_archiver_store_free_bytes", store=label) > 0
    )
    (site.store_roots[0] / layout.STORE_MARKER).unlink()
    with pytest.raises(StoreUnavailable):
        archiver(site).archive(site.photo(name="second.jpg"))
    assert sample("dp3_archiver_store_up", store=label) == 0.0


def test_a_version_replaced_before_collection_is_archived_as_a_new_upload(site: Site) -> None:
    # The user replaces the file between Archived and Collected: the first version is kept in
    # the stores, the new one stays in the inbox until it too is archived (under a name of its
    # own: same owner, time and name give the same id), and only then leaves.
    first = site.photo()
    [archived] = archiver(site).archive(first)
    new_bytes = b"the photographer's better exposure" * 64
    Path(first.path).write_bytes(new_bytes)
    assert collector(site).collect(archived) is None
    assert Path(first.path).read_bytes() == new_bytes
    second = site.photo(data=new_bytes)  # what the scanner's Detected of the new version leads to
    assert second.path == first.path and second.id == first.id and second.sha256 != first.sha256
    [archived_second] = archiver(site).archive(second)
    assert archived_second.stored_name == collision_name(first.id, second.sha256 or "")
    collected = collector(site).collect(archived_second)
    assert collected is not None and collected.status is Status.COLLECTED and not Path(first.path).exists()
    for root in site.store_roots:
        assert sha256_of(root / DATE / first.id) == first.sha256
        assert (root / DATE / (archived_second.stored_name or "")).read_bytes() == new_bytes
