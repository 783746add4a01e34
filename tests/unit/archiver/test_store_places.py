"""Stores that are one place under two names (invariant 9): the pure comparison, and real links and mounts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from dp3 import layout
from dp3.broker import Publisher
from dp3.store_places import Alias, StorePlace, aliases, check_distinct, marker_id
from dp3_archiver.archive import Archiver
from dp3_archiver.collector import Collector
from dp3_archiver.metrics import archiver_metrics
from dp3_archiver.stores import Store, StoresNotDistinct, ensure_all_usable
from tests.unit.archiver.site import Site


def place(label: str, dev: int = 1, ino: int = 0, real: str = "", fs: str | None = None, **kw: str) -> StorePlace:
    return StorePlace(label, dev, ino or hash(label) % 10**6, real or label, fs, kw.get("in_fs"), kw.get("marker"))


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        (place("/a", ino=5), place("/b", ino=5, real="/a"), "same_folder"),
        (place("/a"), place("/a/sub"), "nested"),
        (place("/x/b"), place("/x"), "nested"),
        (place("/a", fs="8:1", in_fs="/data/a"), place("/mnt/b", fs="8:1", in_fs="/data/a/sub"), "nested"),
        (place("/a", fs="8:1", in_fs="/data/a/sub"), place("/mnt/b", fs="8:1", in_fs="/data/a"), "nested"),
        (place("/a", marker="m1"), place("/b", dev=2, marker="m1"), "same_marker"),
    ],
)
def test_one_place_under_two_names_is_named_in_one_line(a: StorePlace, b: StorePlace, reason: str) -> None:
    [alias] = aliases([a, b])
    assert (alias.first, alias.second, alias.reason) == (a.label, b.label, reason)
    line = alias.line()
    assert "\n" not in line and a.label in line and b.label in line


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (place("/a"), place("/ab")),  # a common prefix is not nesting
        (place("/a", fs="8:1", in_fs="/data/a"), place("/b", fs="8:1", in_fs="/data/ab")),
        (place("/a", fs="8:1", in_fs="/"), place("/b", fs="8:2", in_fs="/")),  # two file systems' roots
        (place("/a", marker="m1"), place("/b", marker="m2")),
        # two NFS exports sharing a superblock: both roots show "/" in the mount table
        (place("/mnt/a", fs="0:53", in_fs="/"), place("/mnt/b", fs="0:53", in_fs="/")),
    ],
)
def test_distinct_places_are_not_aliases(a: StorePlace, b: StorePlace) -> None:
    assert aliases([a, b]) == []


def test_marker_ids() -> None:
    assert marker_id(b"") is None and marker_id(b"  \n") is None
    assert marker_id(json.dumps({"id": "abc"}).encode()) == "abc"
    legacy = json.dumps({"store": "/a", "initialised_at": 1.5}).encode()
    assert marker_id(legacy) == marker_id(legacy) and (marker_id(legacy) or "").startswith("sha256:")


@pytest.fixture
def bind_mounts() -> Iterator[list[Path]]:
    """Bind mounts a test makes, always undone."""
    made: list[Path] = []
    yield made
    for point in reversed(made):
        subprocess.run(["umount", str(point)], check=False)
        if os.path.ismount(point):
            subprocess.run(["umount", "-l", str(point)], check=False)


def bind(source: Path, target: Path, made: list[Path]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    made.append(target)


def reasons(roots: list[Path]) -> list[str]:
    return [alias.reason for alias in check_distinct(roots)]


def test_real_names_of_one_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        root.mkdir()
        Store(root).init()
    (tmp_path / "link").symlink_to(a)
    monkeypatch.chdir(tmp_path)
    assert reasons([a, b]) == []
    assert reasons([a, a]) == ["same_folder"]
    assert reasons([a, Path(f"{a}/")]) == ["same_folder"]
    assert reasons([a, b / ".." / "a"]) == ["same_folder"]
    assert reasons([a, Path("a")]) == ["same_folder"]  # relative, from the working folder
    assert reasons([tmp_path / "link", b]) == []
    assert reasons([a, tmp_path / "link"]) == ["same_folder"]
    (a / "inner").mkdir()
    assert reasons([a, a / "inner"]) == ["nested"]
    assert reasons([tmp_path / "link" / "inner", a]) == ["nested"]


def test_a_marker_copied_into_another_store(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        root.mkdir()
    Store(a).init()
    shutil.copy(a / layout.STORE_MARKER, b / layout.STORE_MARKER)
    [alias] = check_distinct([a, b])
    assert alias.reason == "same_marker" and str(a) in alias.line() and str(b) in alias.line()
    (b / layout.STORE_MARKER).unlink()
    assert Store(b).init() and check_distinct([a, b]) == []


def test_real_bind_mounts(tmp_path: Path, bind_mounts: list[Path]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    outside = tmp_path / "outside"
    bind(a, tmp_path / "bind-of-a", bind_mounts)
    bind(a / "sub", tmp_path / "bind-of-sub", bind_mounts)
    bind(tmp_path, outside, bind_mounts)  # a folder that holds store a, under another name
    assert reasons([a, b]) == []
    assert reasons([a, tmp_path / "bind-of-a"]) == ["same_folder"]
    assert reasons([a, tmp_path / "bind-of-sub"]) == ["nested"]
    assert reasons([tmp_path / "bind-of-sub", a]) == ["nested"]
    assert reasons([outside / "b", a]) == []
    assert reasons([outside, a]) == ["nested"]


def test_ensure_all_usable_refuses_aliases_and_metrics_say_so(tmp_path: Path) -> None:
    site = Site.create(tmp_path)
    link = tmp_path / "link-to-a"
    link.symlink_to(site.store_roots[0])
    stores = [Store(site.store_roots[0]), Store(link)]
    with pytest.raises(StoresNotDistinct) as raised:
        ensure_all_usable(stores)
    assert str(site.store_roots[0]) in str(raised.value) and str(link) in str(raised.value)
    assert archiver_metrics().stores_distinct._value.get() == 0
    assert archiver_metrics().store_alias.labels(str(site.store_roots[0]), str(link), "same_folder")._value.get() == 1
    assert archiver_metrics().store_aliased.labels(str(link))._value.get() == 1
    assert stores[1].trouble is not None and stores[1].trouble.problem == "aliased"
    ensure_all_usable(site.stores())
    assert archiver_metrics().stores_distinct._value.get() == 1


def _collector(site: Site, stores: list[Store]) -> Collector:
    return Collector(
        stores, inbox=site.inbox, staging=site.staging, zone=zoneinfo.ZoneInfo("UTC"), publisher=mock.Mock(Publisher)
    )


def test_a_bind_mount_made_after_archiving_never_lets_the_original_go(tmp_path: Path, bind_mounts: list[Path]) -> None:
    site = Site.create(tmp_path)
    stores = site.stores()
    archiver = Archiver(stores, inbox=site.inbox, staging=site.staging, zone=zoneinfo.ZoneInfo("UTC"))
    entry = site.photo()
    [archived] = archiver.archive(entry)
    bind(site.store_roots[0], site.store_roots[1], bind_mounts)  # store b is now store a under its name
    with pytest.raises(StoresNotDistinct):
        _collector(site, stores).collect(archived)
    assert Path(entry.path).is_file()


def test_two_copies_that_are_one_file_never_count_as_two(tmp_path: Path) -> None:
    """Even if the places look distinct (a mount table the archiver cannot read), one file is one copy."""
    site = Site.create(tmp_path)
    stores = site.stores()
    archiver = Archiver(stores, inbox=site.inbox, staging=site.staging, zone=zoneinfo.ZoneInfo("UTC"))
    entry = site.photo()
    [archived] = archiver.archive(entry)
    copy_a, copy_b = (Path(folder) / archived.id for folder in archived.archives)
    copy_b.unlink()
    os.link(copy_a, copy_b)  # one file under both stores' names
    with pytest.raises(StoresNotDistinct) as raised:
        _collector(site, stores).collect(archived)
    assert raised.value.aliases[0].reason == "same_file"
    assert Path(entry.path).is_file()


def test_alias_line_names_both() -> None:
    line = Alias("/data/a", "/data/b", "nested", "x").line()
    assert line.startswith("stores /data/a and /data/b are not distinct places")


def test_a_mount_point_named_in_latin_1_anywhere_does_not_break_the_check(
    tmp_path: Path, bind_mounts: list[Path]
) -> None:
    """The mount table is bytes: one non-UTF-8 mount point on the machine (an SMB share, a test) is no crash."""
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    latin = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9 mount"))
    bind(a / "sub", latin, bind_mounts)
    assert b"caf\xe9" in Path("/proc/self/mountinfo").read_bytes()
    assert reasons([a, b]) == []
    assert reasons([a, latin]) == ["nested"]  # and the mount under that name is still seen for what it is
