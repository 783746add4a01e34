"""Names are bytes and artifacts belong to their bytes, through the real archiver process (issue 14, items 2, 5)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dp3 import layout
from dp3.events import ErrorKind, Status, disambiguated_id
from dp3.filenames import NAME_MAX
from dp3_archiver.stores import Store
from tests.integration.archiver.harness import ArchiverProcess, Journal, archiver_env, unmount
from tests.rabbit import wait_for
from tests.unit.archiver.site import CAPTURE, DATE, Site, sha256_of

pytestmark = pytest.mark.integration


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def archiver(site: Site, amqp_url: str, tmp_path: Path) -> Iterator[ArchiverProcess]:
    process = ArchiverProcess(archiver_env(site, amqp_url), tmp_path / "archiver.log")
    yield process
    process.stop()


def test_non_utf8_and_255_byte_names_are_archived_collected_and_kept_byte_exact(
    site: Site, journal: Journal, archiver: ArchiverProcess, corpus: Path
) -> None:
    data = (corpus / "jpg" / "gps" / "DSCN0010.jpg").read_bytes()
    entries = [
        site.photo(os.fsdecode(b"caf\xe9 \xab1\xbb.jpg"), data=data + b"1"),
        site.photo("L" * 251 + ".JPG", data=data + b"2"),
        site.photo("é" * 125 + ".JPG", data=data + b"3"),
        site.photo("DSC00001.JPG", data=data + b"4", owner=os.fsdecode(b"M\xdcLLER-J\xd6RG")),
    ]
    for entry in entries:
        journal.publish(entry)
    journal.wait_all({e.id for e in entries}, Status.COLLECTED, 60)
    for entry in entries:
        for root in site.store_roots:
            folder = root / DATE
            assert sha256_of(folder / entry.id) == entry.sha256
            assert (folder / layout.thumbnail_name(entry.id)).is_file()
            assert all(len(os.fsencode(p.name)) <= NAME_MAX for p in folder.iterdir())
            document = json.loads((folder / layout.sidecar_name(entry.id)).read_bytes())
            assert document["path"] == entry.path
            assert document["path_bytes"] == entry.path_bytes
        assert not os.path.lexists(entry.fs_path)  # collected: the very bytes-named file
    assert entries[0].path_bytes is not None
    assert base64.b64decode(entries[0].path_bytes).endswith(b"/caf\xe9 \xab1\xbb.jpg")
    assert archiver.metric("dp3_archiver_store_errors_total") == 0


def test_a_name_a_store_refuses_fails_the_photo_and_never_marks_a_store_down(
    site: Site, journal: Journal, archiver: ArchiverProcess
) -> None:
    """An event whose id the old rule made from a 255-byte name: ENAMETOOLONG is that photo's fault."""
    good = site.photo("ok.JPG")
    long_name = "L" * 251 + ".JPG"
    too_long = site.photo(long_name, staged=False)
    legacy = too_long.model_copy(update={"id": f"{too_long.owner}_{CAPTURE}_{long_name}"})
    journal.publish(legacy)
    journal.publish(good)
    journal.wait_all({legacy.id}, Status.FAILED, 30)
    journal.wait_all({good.id}, Status.COLLECTED, 30)
    [failure] = [e for e in journal.with_status(Status.FAILED) if e.id == legacy.id]
    assert failure.error is not None and failure.error.kind is ErrorKind.BAD_NAME
    assert "rename" in failure.error.message
    assert os.path.exists(legacy.fs_path)  # the original stays in the inbox, untouched
    for root in site.store_roots:
        assert archiver.metric("dp3_archiver_store_up", store=str(root)) == 1
    assert archiver.metric("dp3_archiver_store_errors_total") == 0
    assert archiver.metric("dp3_archiver_photo_faults_total", reason="bad_name") == 1


def test_artifacts_staged_for_other_bytes_are_never_archived_with_a_photo(
    site: Site, journal: Journal, archiver: ArchiverProcess, corpus: Path
) -> None:
    """The original and its edited re-export shared an id under the old rule, and so ``staging/<id>``."""
    original = site.photo("DSC00372.JPG", data=b"original" * 300)
    staged = layout.staging_dir(site.staging, original.id)
    mine = {p.name: p.read_bytes() for p in staged.iterdir()}
    # The edited copy's render lands in the same folder (as the dispatcher's commit replaced it).
    (staged / layout.thumbnail_name(original.id)).write_bytes(b"thumb of the edited copy")
    (staged / layout.META_NAME).write_text(json.dumps({"width": 10, "sha256": "e" * 64}))
    journal.publish(original)
    wait_for(
        lambda: archiver.metric("dp3_archiver_photo_faults_total", reason="foreign_artifacts") == 1,
        30,
        "the archiver to refuse the foreign artifacts",
    )
    time.sleep(1)
    assert original.id not in journal.ids_with(Status.ARCHIVED)
    for root in site.store_roots:
        assert not (root / DATE / layout.thumbnail_name(original.id)).exists()
    assert os.path.exists(original.fs_path)

    # Rendered again (the re-drive's Detected, the dispatcher's fast path refuses the same folder): archived right.
    for name, content in mine.items():
        (staged / name).write_bytes(content)
    journal.publish(original.next(Status.PROCESSED, service="dispatcher"))
    journal.wait_all({original.id}, Status.COLLECTED, 30)
    for root in site.store_roots:
        thumbnail = root / DATE / layout.thumbnail_name(original.id)
        assert thumbnail.read_bytes() == mine[layout.thumbnail_name(original.id)]


def test_two_photos_that_once_shared_an_id_keep_two_records_in_the_stores(
    site: Site, journal: Journal, archiver: ArchiverProcess
) -> None:
    """With the scanner's ids (the second one disambiguated), each photo has its own files and sidecar."""
    original = site.photo("DSC00372.JPG", data=b"original" * 300)
    edited_id = disambiguated_id(original.id, sha256_hex(b"edited" * 300))
    edited = site.photo("DSC00372.JPG", data=b"edited" * 300, sub="edited", photo_id=edited_id)
    for entry in (original, edited):
        journal.publish(entry)
    journal.wait_all({original.id, edited.id}, Status.COLLECTED, 30)
    for root in site.store_roots:
        for entry in (original, edited):
            assert sha256_of(root / DATE / entry.id) == entry.sha256
            document = json.loads((root / DATE / layout.sidecar_name(entry.id)).read_bytes())
            assert document["sha256"] == entry.sha256 and document["id"] == entry.id


@pytest.mark.parametrize("order", ["original first", "edited first"])
def test_a_photo_under_an_id_the_stores_hold_for_other_bytes_never_touches_the_first(
    site: Site, journal: Journal, archiver: ArchiverProcess, order: str
) -> None:
    """The scanner's index lost (a fresh one hands out the same id again): the stores' sidecars keep them apart."""
    first = site.photo("DSC00372.JPG", data=b"original" * 300)
    if order == "edited first":
        first = site.photo("DSC00372.JPG", data=b"edited" * 300, sub="edited")
    journal.publish(first)
    journal.wait_all({first.id}, Status.COLLECTED, 30)
    # Collected is published before the archiver removes staging: a test that stages in place, as Site does,
    # waits for that removal (the dispatcher commits by a rename, which the removal leaves to the new photo)
    wait_for(lambda: not layout.staging_dir(site.staging, first.id).exists(), 30, "the first photo's staging to go")
    kept = {root: {p.name: p.read_bytes() for p in (root / DATE).iterdir()} for root in site.store_roots}
    if order == "edited first":
        second = site.photo("DSC00372.JPG", data=b"original" * 300)
    else:
        second = site.photo("DSC00372.JPG", data=b"edited" * 300, sub="edited")
    assert second.id == first.id and second.sha256 != first.sha256
    journal.publish(second)
    wait_for(lambda: len(journal.with_status(Status.COLLECTED)) >= 2, 30, "the second photo to be collected")
    [archived] = [e for e in journal.with_status(Status.ARCHIVED) if e.sha256 == second.sha256]
    assert archived.stored_name and archived.stored_name != first.id
    for root in site.store_roots:
        for name, content in kept[root].items():
            if name != layout.sidecar_name(first.id):
                assert (root / DATE / name).read_bytes() == content, name  # the first photo's files untouched
        document = json.loads((root / DATE / layout.sidecar_name(first.id)).read_bytes())
        assert document["sha256"] == first.sha256
        assert sha256_of(root / DATE / archived.stored_name) == second.sha256
        assert (root / DATE / layout.thumbnail_name(archived.stored_name)).read_bytes().startswith(b"thumb:")
        theirs = json.loads((root / DATE / layout.sidecar_name(archived.stored_name)).read_bytes())
        assert theirs["sha256"] == second.sha256


@pytest.fixture
def windows_names_store(site: Site, tmp_path: Path) -> Iterator[Path]:
    """The second store on a real NTFS volume (ntfs-3g, ``windows_names``), as a USB disk or a Windows share is:
    it refuses ``:`` ``?`` ``*``, a trailing dot, ``CON`` with EINVAL, and bytes that are not UTF-8 with EILSEQ."""
    if not (shutil.which("mkntfs") and shutil.which("ntfs-3g")):
        pytest.skip("needs Debian's ntfs-3g (mkntfs, ntfs-3g) for a real NTFS store")
    image = tmp_path / "ntfs.img"
    with open(image, "wb") as stream:
        stream.truncate(16 * 1024 * 1024)
    subprocess.run(["mkntfs", "-q", "-F", "-f", str(image)], check=True, capture_output=True)
    root = site.store_roots[1]
    subprocess.run(["ntfs-3g", "-o", "windows_names", str(image), str(root)], check=True)
    try:
        Store(root).init()
        yield root
    finally:
        unmount(root)


def test_names_a_windows_store_refuses_fail_the_photo_and_never_mark_the_store_down(
    site: Site, journal: Journal, windows_names_store: Path, amqp_url: str, tmp_path: Path
) -> None:
    """EINVAL from creating or opening a photo's file is its name's fault (bad_name), not the store's (io)."""
    archiver = ArchiverProcess(archiver_env(site, amqp_url), tmp_path / "archiver.log")
    try:
        refused = [site.photo(name) for name in ("a:b.JPG", "why?.JPG", "star*.JPG", "dot.")]
        good = site.photo("ok.JPG")
        for entry in (*refused, good):
            journal.publish(entry)
        journal.wait_all({entry.id for entry in refused}, Status.FAILED, 30)
        journal.wait_all({good.id}, Status.COLLECTED, 30)
        for entry in refused:
            [failure] = [e for e in journal.with_status(Status.FAILED) if e.id == entry.id]
            assert failure.error is not None and failure.error.kind is ErrorKind.BAD_NAME, failure.error
            assert os.path.exists(entry.fs_path)  # the original stays in the inbox
        for root in site.store_roots:
            assert archiver.metric("dp3_archiver_store_up", store=str(root)) == 1
        assert archiver.metric("dp3_archiver_store_errors_total") == 0
        assert archiver.metric("dp3_archiver_photo_faults_total", reason="bad_name") == len(refused)
    finally:
        archiver.stop()
