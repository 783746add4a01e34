"""A store that is another store under a second name, against the real archiver process and `dp3 stores`.

Before invariant 9 was enforced, the archiver "verified" two copies that were
one file and deleted the original.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dp3 import layout, store_places
from dp3.events import Status
from tests.integration.archiver.harness import ArchiverProcess, Journal, archiver_env, unmount
from tests.rabbit import wait_for
from tests.unit.archiver.site import DATE, Site

pytestmark = pytest.mark.integration


def _nothing_happens_to(journal: Journal, photo_id: str, path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert photo_id not in journal.ids_with(Status.ARCHIVED) | journal.ids_with(Status.COLLECTED)
        assert path.is_file()
        time.sleep(0.2)


def test_a_symlinked_store_is_refused_and_the_original_stays(
    site: Site, amqp_url: str, journal: Journal, processes: list[ArchiverProcess], tmp_path: Path
) -> None:
    link = tmp_path / "archive-b-link"
    link.symlink_to(site.store_roots[0])
    stores = [site.store_roots[0], link]
    archiver = ArchiverProcess(archiver_env(site, amqp_url, stores=stores), tmp_path / "archiver.log")
    processes.append(archiver)
    entry = site.photo()
    journal.publish(entry)
    wait_for(lambda: "not distinct places" in archiver.log_text(), 20, "the archiver to refuse the stores")
    _nothing_happens_to(journal, entry.id, Path(entry.path), 3)
    [line] = [
        line for line in archiver.log_text().splitlines() if "not distinct places" in line and "level=error" in line
    ]
    assert str(site.store_roots[0]) in line and str(link) in line
    assert archiver.metric("dp3_archiver_stores_distinct") == 0
    assert archiver.metric("dp3_archiver_store_alias", store=str(site.store_roots[0]), other=str(link)) == 1
    assert archiver.metric("dp3_archiver_store_aliased", store=str(link)) == 1
    assert archiver.metric("dp3_archiver_store_up", store=str(link)) == 0
    with urllib.request.urlopen(f"http://127.0.0.1:{archiver.port}/healthz", timeout=5) as response:
        assert "stores not distinct places" in response.read().decode()
    assert not (site.store_roots[0] / DATE / entry.id).exists()


def test_a_bind_mount_made_while_running_stops_everything_until_it_is_gone(
    site: Site, amqp_url: str, journal: Journal, processes: list[ArchiverProcess], tmp_path: Path, mounts: list[Path]
) -> None:
    archiver = ArchiverProcess(archiver_env(site, amqp_url), tmp_path / "archiver.log")
    processes.append(archiver)
    first = site.photo("FIRST.JPG")
    journal.publish(first)
    journal.wait_all({first.id}, Status.COLLECTED, 30)
    assert archiver.metric("dp3_archiver_stores_distinct") == 1
    a, b = site.store_roots
    (a / "sub").mkdir()
    subprocess.run(["mount", "--bind", str(a / "sub"), str(b)], check=True)  # b is now a folder inside a
    mounts.append(b)
    (a / "sub" / layout.STORE_MARKER).write_text('{"id": "looks-initialised"}')  # b looks up and initialised
    second = site.photo("SECOND.JPG")
    journal.publish(second)
    _nothing_happens_to(journal, second.id, Path(second.path), 3)
    assert archiver.metric("dp3_archiver_stores_distinct") == 0
    lines = [line for line in archiver.log_text().splitlines() if "not distinct places" in line]
    assert lines and str(a) in lines[0] and str(b) in lines[0]
    unmount(b)
    mounts.remove(b)
    journal.wait_all({second.id}, Status.COLLECTED, 30)
    assert archiver.metric("dp3_archiver_stores_distinct") == 1
    assert (b / DATE / second.id).is_file() and (a / DATE / second.id).is_file()
    assert os.stat(b / DATE / second.id).st_ino != os.stat(a / DATE / second.id).st_ino


def _dp3(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dp3 = Path(sys.executable).with_name("dp3")
    return subprocess.run([str(dp3), *args], env=env, capture_output=True, text=True, timeout=60)


def test_stores_init_refuses_one_place_under_two_names(tmp_path: Path, mounts: list[Path]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DP3_")}
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    subprocess.run(["mount", "--bind", str(a), str(b)], check=True)
    mounts.append(b)
    for configured in (f"{a},{b}", f"{a},{a}/", f"{a},{tmp_path}/x/../a"):
        (tmp_path / "x").mkdir(exist_ok=True)
        result = _dp3("stores", "init", env={**env, "DP3_STORES": configured, "DP3_HOME": str(tmp_path)})
        assert result.returncode == 1, result.stdout + result.stderr
        [line] = result.stdout.splitlines()
        assert "not distinct places" in line and configured.split(",")[1].rstrip("/") in line
        assert not (a / layout.STORE_MARKER).exists()
    # named on the command line, against a configured store
    link = tmp_path / "link"
    link.symlink_to(a)
    result = _dp3("stores", "init", str(link), env={**env, "DP3_STORES": str(a), "DP3_HOME": str(tmp_path)})
    assert result.returncode == 1 and str(link) in result.stdout and not (a / layout.STORE_MARKER).exists()
    unmount(b)
    mounts.remove(b)
    ok = _dp3("stores", "init", env={**env, "DP3_STORES": f"{a},{b}", "DP3_HOME": str(tmp_path)})
    assert ok.returncode == 0, ok.stdout
    assert (a / layout.STORE_MARKER).is_file() and (b / layout.STORE_MARKER).is_file()
    # a marker copied from one store into another
    (b / layout.STORE_MARKER).write_bytes((a / layout.STORE_MARKER).read_bytes())
    status = _dp3("stores", "status", env={**env, "DP3_STORES": f"{a},{b}", "DP3_HOME": str(tmp_path)})
    assert status.returncode == 1
    assert "store marker id" in status.stdout and str(a) in status.stdout and str(b) in status.stdout


def test_a_mount_with_a_non_utf8_name_elsewhere_does_not_stop_distinct_stores(
    site: Site, amqp_url: str, journal: Journal, processes: list[ArchiverProcess], tmp_path: Path, mounts: list[Path]
) -> None:
    """The mount table holds every mount's name as bytes: a share mounted at ``caf\\xe9`` (any machine's mount,
    not a store) must neither stop the archiver nor count against two distinct stores."""
    latin = os.fsencode(tmp_path) + b"/caf\xe9 share"
    os.mkdir(latin)
    subprocess.run([b"mount", b"-t", b"tmpfs", b"none", latin], check=True)
    mounts.append(Path(os.fsdecode(latin)))
    archiver = ArchiverProcess(archiver_env(site, amqp_url), tmp_path / "archiver.log")
    processes.append(archiver)
    entry = site.photo()
    journal.publish(entry)
    journal.wait_all({entry.id}, Status.COLLECTED, 30)
    assert archiver.metric("dp3_archiver_stores_distinct") == 1


def test_a_bind_mount_at_a_non_utf8_name_of_a_folder_inside_a_store_is_refused(
    tmp_path: Path, mounts: list[Path]
) -> None:
    """Real mounts, names as bytes: the mount table's ``caf\\xe9`` must match the store's own path."""
    a = tmp_path / "a"
    (a / "sub").mkdir(parents=True)
    latin = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9 store"))
    latin.mkdir()
    subprocess.run(["mount", "--bind", str(a / "sub"), str(latin)], check=True)
    mounts.append(latin)
    [alias] = store_places.check_distinct([a, latin])
    assert alias.reason == "nested" and "'sub'" in alias.detail
    other = Path(os.fsdecode(os.fsencode(tmp_path) + b"/other \xe9"))
    other.mkdir()
    assert store_places.check_distinct([a, other]) == []


def test_a_store_that_is_an_overlay_over_the_other_is_refused(tmp_path: Path, mounts: list[Path]) -> None:
    """An overlay shows the other store's files as its own under another device number, and its own marker
    (in its upper folder) hides the other's: initialised first (``DP3_STORES=b,a``), it passed every check,
    and the archiver counted the other store's copy as its second one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DP3_")}
    a, b, upper, work = (tmp_path / name for name in ("a", "b", "upper", "work"))
    for folder in (a, b, upper, work):
        folder.mkdir()
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={a},upperdir={upper},workdir={work}", str(b)],
        check=True,
    )
    mounts.append(b)
    result = _dp3("stores", "init", env={**env, "DP3_STORES": f"{b},{a}", "DP3_HOME": str(tmp_path)})
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stdout.splitlines()
    assert "not distinct places" in line and "overlay" in line and str(a) in line and str(b) in line
    assert not (a / layout.STORE_MARKER).exists() and not (b / layout.STORE_MARKER).exists()
    # Both initialised by hand, one marker each: still one place.
    (b / layout.STORE_MARKER).write_text('{"id": "b"}')
    (a / layout.STORE_MARKER).write_text('{"id": "a"}')
    [alias] = store_places.check_distinct([b, a])
    assert alias.reason == "nested"
    # An overlay over a folder of its own is a store like any other.
    unmount(b)
    mounts.remove(b)
    lower = tmp_path / "lower"
    lower.mkdir()
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", str(b)],
        check=True,
    )
    mounts.append(b)
    assert store_places.check_distinct([b, a]) == []


def test_a_mount_table_that_shows_every_root_as_slash_refuses_no_distinct_stores(
    tmp_path: Path, mounts: list[Path]
) -> None:
    """NFS shows ``/`` as the root of every mount, and two mounts of one server file system share a device:
    ``srv:/e/a`` at A and ``srv:/e`` at X read as if X/b were a folder of A. Real mounts, the table as NFS
    writes it: two distinct stores are never refused; the real bind mount of A's folder still is."""
    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(shared)], check=True)
    mounts.append(shared)
    (shared / "a").mkdir()
    (shared / "b").mkdir()
    a, x = tmp_path / "A", tmp_path / "X"
    a.mkdir()
    x.mkdir()
    subprocess.run(["mount", "--bind", str(shared / "a"), str(a)], check=True)
    mounts.append(a)
    subprocess.run(["mount", "--bind", str(shared), str(x)], check=True)
    mounts.append(x)
    table = store_places.read_mount_table()
    assert table is not None
    as_nfs = []
    for line in table.splitlines():
        fields = line.split(" ")
        if fields[4] == str(a):
            fields[3] = "/"  # NFS: "/" whatever the mount's root in the server's file system
        as_nfs.append(" ".join(fields))
    assert store_places.check_distinct([a, x / "b"], "\n".join(as_nfs) + "\n") == []
    (a / "sub").mkdir()
    for roots in ([a, x / "a" / "sub"], [x, a]):  # with the real table, each is a folder of the other's
        [alias] = store_places.check_distinct(roots)
        assert alias.reason == "nested" and "mounted under a second name" in alias.detail
