"""Store: marker, verified copies, replacement rules, error translation (real files, tmp dirs)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dp3 import layout
from dp3.files import TEMP_PREFIX
from dp3_archiver.stores import CopyOutcome, SourceMismatch, Store, StoreUnavailable


def source(tmp_path: Path, data: bytes = b"x" * 5000) -> tuple[Path, str]:
    path = tmp_path / "src.jpg"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def store(tmp_path: Path, init: bool = True) -> Store:
    root = tmp_path / "store"
    root.mkdir()
    result = Store(root)
    if init:
        result.init()
    return result


def test_copy_is_written_once_then_found_present(tmp_path: Path) -> None:
    src, sha = source(tmp_path)
    s = store(tmp_path)
    final = s.root / "2012-12-14" / "a.jpg"
    assert s.ensure_copy([src], final, sha, 5000, may_replace=False) is CopyOutcome.WRITTEN
    inode = final.stat().st_ino
    assert s.ensure_copy([src], final, sha, 5000, may_replace=False) is CopyOutcome.PRESENT
    assert final.stat().st_ino == inode
    assert final.read_bytes() == src.read_bytes()
    assert not [p for p in final.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_wrong_bytes_are_replaced_only_when_ours(tmp_path: Path) -> None:
    src, sha = source(tmp_path)
    s = store(tmp_path)
    final = s.root / "2012-12-14" / "a.jpg"
    final.parent.mkdir()
    final.write_bytes(b"rotten")
    assert s.ensure_copy([src], final, sha, 5000, may_replace=False) is CopyOutcome.TAKEN
    assert final.read_bytes() == b"rotten"
    assert s.ensure_copy([src], final, sha, 5000, may_replace=True) is CopyOutcome.WRITTEN
    assert final.read_bytes() == src.read_bytes()


def test_source_with_other_bytes_is_refused(tmp_path: Path) -> None:
    src, _sha = source(tmp_path)
    s = store(tmp_path)
    final = s.root / "2012-12-14" / "a.jpg"
    with pytest.raises(SourceMismatch):
        s.ensure_copy([src, tmp_path / "missing"], final, "0" * 64, 5000, may_replace=False)
    assert not final.exists()
    assert not list(final.parent.iterdir())


def test_second_source_is_used_when_the_first_changed(tmp_path: Path) -> None:
    src, sha = source(tmp_path)
    changed = tmp_path / "changed.jpg"
    changed.write_bytes(b"other")
    s = store(tmp_path)
    final = s.root / "2012-12-14" / "a.jpg"
    assert s.ensure_copy([changed, src], final, sha, 5000, may_replace=False) is CopyOutcome.WRITTEN
    assert final.read_bytes() == src.read_bytes()


def test_symlinked_source_is_not_followed(tmp_path: Path) -> None:
    src, sha = source(tmp_path)
    link = tmp_path / "link.jpg"
    link.symlink_to(src)
    s = store(tmp_path)
    with pytest.raises(SourceMismatch):
        s.ensure_copy([link], s.root / "2012-12-14" / "a.jpg", sha, 5000, may_replace=False)


def test_store_without_marker_is_down_and_never_written(tmp_path: Path) -> None:
    src, sha = source(tmp_path)
    s = store(tmp_path, init=False)
    with pytest.raises(StoreUnavailable) as caught:
        s.ensure_copy([src], s.root / "2012-12-14" / "a.jpg", sha, 5000, may_replace=False)
    assert caught.value.problem == "down" and str(s.root) in str(caught.value)
    assert list(s.root.iterdir()) == []


def test_init_refuses_a_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Store(tmp_path / "not-mounted").init()
    assert not (tmp_path / "not-mounted").exists()


def test_reserve_makes_a_store_full(tmp_path: Path) -> None:
    src, sha = source(tmp_path)
    s = store(tmp_path)
    s.reserve_bytes = s.free_bytes() + 1
    with pytest.raises(StoreUnavailable) as caught:
        s.ensure_copy([src], s.root / "2012-12-14" / "a.jpg", sha, 5000, may_replace=False)
    assert caught.value.problem == "full"


def test_marker_name_comes_from_the_layout(tmp_path: Path) -> None:
    s = store(tmp_path)
    assert (s.root / layout.STORE_MARKER).is_file() and s.is_marked()
    assert s.init() is False


def test_document_written_atomically_and_only_when_changed(tmp_path: Path) -> None:
    s = store(tmp_path)
    path = s.root / "2012-12-14" / "a.jpg.json"
    assert s.write_document(path, b"{}") is True
    assert s.write_document(path, b"{}") is False
    assert s.write_document(path, b'{"a": 1}') is True
    assert path.read_bytes() == b'{"a": 1}'


def test_a_fifo_is_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    s = store(tmp_path)
    with pytest.raises(SourceMismatch):
        s.ensure_copy([fifo], s.root / "2012-12-14" / "a.jpg", "0" * 64, 0, may_replace=False)
