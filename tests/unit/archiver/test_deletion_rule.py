"""The deletion rule (invariant 1 and 8) on real files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

import pytest

from dp3.files import sha256_stream
from dp3_archiver import deletion_rule
from dp3_archiver.deletion_rule import Deletion, collect_original

STORES = ["/a", "/b"]


def inbox_file(tmp_path: Path, data: bytes = b"photo bytes") -> tuple[Path, Path, str]:
    inbox = tmp_path / "inbox"
    (inbox / "OWNER-X").mkdir(parents=True)
    path = inbox / "OWNER-X" / "IMG 1 (copy).jpg"
    path.write_bytes(data)
    return inbox, path, hashlib.sha256(data).hexdigest()


def test_deletes_when_every_store_verified_and_inbox_unchanged(tmp_path: Path) -> None:
    inbox, path, sha = inbox_file(tmp_path)
    assert collect_original(inbox, path, sha, {"/a": sha, "/b": sha}, STORES) is Deletion.DELETED
    assert not path.exists()


def test_keeps_when_one_store_lacks_a_verified_copy(tmp_path: Path) -> None:
    inbox, path, sha = inbox_file(tmp_path)
    assert collect_original(inbox, path, sha, {"/a": sha, "/b": None}, STORES) is Deletion.NOT_VERIFIED
    assert collect_original(inbox, path, sha, {"/a": sha, "/b": "0" * 64}, STORES) is Deletion.NOT_VERIFIED
    assert collect_original(inbox, path, sha, {"/a": sha}, STORES) is Deletion.NOT_VERIFIED
    assert collect_original(inbox, path, sha, {}, []) is Deletion.NOT_VERIFIED
    assert path.exists()


def test_keeps_a_file_the_user_replaced(tmp_path: Path) -> None:
    inbox, path, sha = inbox_file(tmp_path)
    path.write_bytes(b"a new version")
    assert collect_original(inbox, path, sha, {"/a": sha, "/b": sha}, STORES) is Deletion.CHANGED
    assert path.read_bytes() == b"a new version"


def test_absent_file_is_reported_not_an_error(tmp_path: Path) -> None:
    inbox, path, sha = inbox_file(tmp_path)
    path.unlink()
    assert collect_original(inbox, path, sha, {"/a": sha, "/b": sha}, STORES) is Deletion.ABSENT


def test_never_follows_a_symlinked_file(tmp_path: Path) -> None:
    inbox, path, sha = inbox_file(tmp_path)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"photo bytes")
    path.unlink()
    path.symlink_to(outside)
    assert collect_original(inbox, path, sha, {"/a": sha, "/b": sha}, STORES) is Deletion.REFUSED
    assert outside.exists() and path.is_symlink()


def test_never_goes_through_a_symlinked_folder(tmp_path: Path) -> None:
    inbox, _path, sha = inbox_file(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "x.jpg"
    victim.write_bytes(b"photo bytes")
    (inbox / "LINKED-OWNER").symlink_to(elsewhere)
    path = inbox / "LINKED-OWNER" / "x.jpg"
    assert collect_original(inbox, path, sha, {"/a": sha, "/b": sha}, STORES) is Deletion.REFUSED
    assert victim.exists()


def test_never_deletes_outside_the_inbox(tmp_path: Path) -> None:
    inbox, _path, sha = inbox_file(tmp_path)
    victim = tmp_path / "victim.jpg"
    victim.write_bytes(b"photo bytes")
    for path in (victim, inbox / ".." / "victim.jpg", Path("victim.jpg"), inbox):
        assert collect_original(inbox, path, sha, {"/a": sha, "/b": sha}, STORES) is Deletion.REFUSED
    assert victim.exists()


def test_refuses_a_fifo_or_folder(tmp_path: Path) -> None:
    inbox, _path, sha = inbox_file(tmp_path)
    fifo = inbox / "OWNER-X" / "pipe.jpg"
    os.mkfifo(fifo)
    assert collect_original(inbox, fifo, sha, {"/a": sha, "/b": sha}, STORES) is Deletion.REFUSED
    assert collect_original(inbox, inbox / "OWNER-X", sha, {"/a": sha, "/b": sha}, STORES) is Deletion.REFUSED


def test_keeps_a_file_rewritten_in_place_while_it_was_hashed_even_with_its_mtime_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same inode, the same size, the old mtime restored (touch -r, os.utime): only the ctime tells.
    inbox, path, sha = inbox_file(tmp_path, b"photo bytes")

    def hash_then_rewrite(stream: BinaryIO) -> tuple[str, int]:
        result = sha256_stream(stream)
        before = path.stat()
        with path.open("r+b") as rewrite:  # in place: same inode
            rewrite.write(b"PHOTO BYTES")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        return result

    monkeypatch.setattr(deletion_rule, "sha256_stream", hash_then_rewrite)
    assert collect_original(inbox, path, sha, {"/a": sha, "/b": sha}, STORES) is Deletion.CHANGED
    assert path.read_bytes() == b"PHOTO BYTES"  # the new version stays, to be detected as a new upload
