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


def test_a_problem_is_timed_from_first_failure_until_a_copy_succeeds(tmp_path: Path) -> None:
    """store_up and the problem gauges say which store held photos back, and for how long."""
    from prometheus_client import REGISTRY

    def gauge(name: str) -> float | None:
        return REGISTRY.get_sample_value(f"dp3_archiver_store_{name}", {"store": s.label})

    src, sha = source(tmp_path)
    s = store(tmp_path)
    s.reserve_bytes = s.free_bytes() + 1
    for name in ("a.jpg", "b.jpg"):
        with pytest.raises(StoreUnavailable):
            s.ensure_copy([src], s.root / "2012-12-14" / name, sha, 5000, may_replace=False)
    assert s.trouble is not None and s.trouble.problem == "full" and s.trouble.until is None
    since = s.trouble.since
    assert gauge("up") == 0 and gauge("problem_since_seconds") == since and gauge("problem_until_seconds") == 0
    s.ensure_usable()  # the marker is there, but that does not end a "full"
    assert gauge("up") == 0

    s.reserve_bytes = 0
    assert s.ensure_copy([src], s.root / "2012-12-14" / "a.jpg", sha, 5000, may_replace=False) is CopyOutcome.WRITTEN
    assert s.trouble.until is not None and s.trouble.since == since <= s.trouble.until
    assert gauge("up") == 1 and gauge("problem_until_seconds") == s.trouble.until

    (s.root / layout.STORE_MARKER).unlink()  # a new problem starts a new stretch
    with pytest.raises(StoreUnavailable):
        s.ensure_usable()
    assert s.trouble.problem == "down" and s.trouble.until is None and gauge("up") == 0
    s.init()
    s.ensure_usable()  # the marker is back: "down" is over
    assert s.trouble.until is not None and gauge("up") == 1
