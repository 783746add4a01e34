from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dp3.files import (
    TEMP_PREFIX,
    OutsideRoot,
    atomic_copy,
    atomic_write_bytes,
    atomic_writer,
    event_path_under,
    is_within,
    path_under,
    sha256_file,
)


def test_sha256_file_streams_large_files(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), len(data))


def test_sha256_file_refuses_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError):
        sha256_file(tmp_path / "link")


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "d" / "meta.json"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in target.parent.iterdir()] == ["meta.json"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "photo.jpg"
    target.write_bytes(b"original")
    with pytest.raises(RuntimeError), atomic_writer(target) as stream:
        stream.write(b"half")
        raise RuntimeError("disk pulled")
    assert target.read_bytes() == b"original"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_atomic_copy_hashes_what_it_copied(tmp_path: Path) -> None:
    source = tmp_path / "in" / "-rf 'quoted' (2) é.jpg"
    source.parent.mkdir()
    source.write_bytes(b"\xff\xd8photo bytes")
    digest, size = atomic_copy(source, tmp_path / "out" / source.name)
    assert (tmp_path / "out" / source.name).read_bytes() == source.read_bytes()
    assert (digest, size) == (hashlib.sha256(source.read_bytes()).hexdigest(), source.stat().st_size)


def test_path_under_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert path_under(root, "ok/file.jpg") == root / "ok" / "file.jpg"
    for bad in ("../x", "/etc/passwd", "ok/../../x", "link/file.jpg", ""):
        with pytest.raises(OutsideRoot):
            path_under(root, bad)


def test_is_within_is_lexical(tmp_path: Path) -> None:
    assert is_within(tmp_path, tmp_path / "a" / "b")
    assert not is_within(tmp_path / "a", tmp_path / "a" / ".." / "b")
    assert not is_within(tmp_path / "a", tmp_path / "ab")


def test_event_path_under_is_the_one_rule_for_event_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "inbox"
    (root / "ANNA" / "day").mkdir(parents=True)
    (root / "elsewhere").mkdir()
    (root / "ANNA" / "linked").symlink_to(root / "elsewhere")
    (root / "ANNA" / "link.jpg").symlink_to(root / "ANNA" / "day")
    inside = root / "ANNA" / "day" / "a.jpg"
    assert event_path_under(root, str(inside)) == inside
    assert event_path_under(root, inside) == inside
    # ``..`` that stays inside is normalised lexically; the path returned is the one checked.
    assert event_path_under(root, f"{root}/ANNA/x/../day/a.jpg") == inside
    # A relative root means the same folder as its absolute form.
    monkeypatch.chdir(tmp_path)
    assert event_path_under(Path("inbox"), str(inside)) == inside
    refused = [
        "ANNA/day/a.jpg",  # relative: no event carries one
        str(root),  # the root itself
        str(tmp_path / "other" / "a.jpg"),  # absolute, outside
        f"{root}/../other/a.jpg",  # ``..`` out of the root
        f"{root}x/a.jpg",  # a sibling sharing the root's prefix
        str(root / "ANNA" / "linked" / "a.jpg"),  # through a symlinked folder
        str(root / "ANNA" / "link.jpg"),  # the file itself a symlink
    ]
    for path in refused:
        with pytest.raises(OutsideRoot):
            event_path_under(root, path)


def test_event_path_under_keeps_the_exact_bytes_of_a_non_utf8_name(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    root.mkdir()
    raw = os.fsencode(root) + b"/caf\xe9.jpg"
    fs_path = os.fsdecode(raw)  # an entry's fs_path: surrogateescape str
    found = event_path_under(root, fs_path)
    assert os.fsencode(found) == raw
    found.write_bytes(b"x")
    assert os.listdir(os.fsencode(root)) == [b"caf\xe9.jpg"]
