"""DurableStorage on real files: bytes past the acknowledged offset are cut before a resume appends."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from dp3_intake.storage import DurableStorage

UID = "0" * 32


def info(storage: DurableStorage) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((storage.root / f"{UID}.info").read_text())
    return loaded


def write_upload(storage: DurableStorage, data: bytes, offset: int) -> None:
    storage.root.mkdir(parents=True, exist_ok=True)
    (storage.root / UID).write_bytes(data)
    params = {"metadata": {}, "size": 100, "offset": offset, "created_at": "now", "expires": None}
    (storage.root / f"{UID}.info").write_text(json.dumps(params))


async def locked(storage: DurableStorage) -> None:
    async with storage.lock(UID):
        pass


def test_unacknowledged_bytes_are_cut_back_to_the_offset(tmp_path: Path) -> None:
    storage = DurableStorage(tmp_path / "uploads", expiry_days=7)
    write_upload(storage, b"a" * 40, offset=25)
    asyncio.run(locked(storage))
    assert (storage.root / UID).read_bytes() == b"a" * 25


def test_an_offset_past_the_bytes_comes_back_to_them(tmp_path: Path) -> None:
    storage = DurableStorage(tmp_path / "uploads", expiry_days=7)
    write_upload(storage, b"a" * 10, offset=25)
    asyncio.run(locked(storage))
    assert info(storage)["offset"] == 10 and (storage.root / UID).read_bytes() == b"a" * 10


def test_every_info_write_moves_the_expiry_and_names_a_filetype(tmp_path: Path) -> None:
    storage = DurableStorage(tmp_path / "uploads", expiry_days=7)
    storage.root.mkdir(parents=True)
    asyncio.run(storage.write_info(UID, {"metadata": {"filename": "x.jpg"}, "offset": 0, "expires": "old"}))
    written = info(storage)
    assert written["expires"] != "old" and str(written["expires"]).endswith("GMT")
    assert written["metadata"] == {"filetype": "application/octet-stream", "filename": "x.jpg"}


def test_appended_bytes_reach_the_file_only_in_order_and_flush_completes_them(tmp_path: Path) -> None:
    storage = DurableStorage(tmp_path / "uploads", expiry_days=7)
    storage.root.mkdir(parents=True)

    async def send() -> None:
        await storage.append(UID, b"x" * (1 << 20))  # one write-through
        await storage.append(UID, b"y" * 10)  # held until flush
        assert (storage.root / UID).stat().st_size == 1 << 20
        await storage.flush(UID)

    asyncio.run(send())
    assert (storage.root / UID).read_bytes() == b"x" * (1 << 20) + b"y" * 10


def test_a_request_refused_mid_body_leaves_nothing_for_the_next_one(tmp_path: Path) -> None:
    storage = DurableStorage(tmp_path / "uploads", expiry_days=7)
    write_upload(storage, b"", offset=0)

    async def refused_then_resumed() -> None:
        async with storage.lock(UID):
            await storage.append(UID, b"stale")  # the request then fails: no flush, no offset update
        async with storage.lock(UID):
            await storage.append(UID, b"fresh")
            await storage.flush(UID)

    asyncio.run(refused_then_resumed())
    assert (storage.root / UID).read_bytes() == b"fresh"
