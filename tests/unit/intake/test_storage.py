"""DurableStorage on real files: bytes past the acknowledged offset are cut before a resume appends."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dp3_intake.storage import DurableStorage, hold_uploads_folder

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


def test_one_request_at_a_time_holds_an_upload_whatever_the_order_of_arrival(tmp_path: Path) -> None:
    # The order that broke tuspyserver's flock-and-unlink lock: A holds, B waits, A lets go
    # (unlinking the lock file B waits on), C arrives and takes a new file's lock: B and C together.
    storage = DurableStorage(tmp_path / "uploads", expiry_days=7)
    write_upload(storage, b"a" * 10, offset=10)
    inside: list[str] = []
    most = 0

    async def request(name: str, hold: float) -> None:
        nonlocal most
        async with storage.lock(UID):
            inside.append(name)
            most = max(most, len(inside))
            await asyncio.sleep(hold)
            inside.remove(name)

    async def arrivals() -> None:
        first = asyncio.create_task(request("A", 0.3))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(request("B", 0.3))
        await asyncio.sleep(0.3)  # A has let go by now; B is taking over
        late = asyncio.create_task(request("C", 0.3))
        await asyncio.gather(first, waiting, late)

    asyncio.run(arrivals())
    assert most == 1
    assert not storage._locks and not storage._lock_users  # nothing kept per upload once no request holds it


def test_a_request_that_cannot_have_the_upload_in_time_gets_a_timeout(tmp_path: Path) -> None:
    storage = DurableStorage(tmp_path / "uploads", expiry_days=7, lock_wait=0.1)
    write_upload(storage, b"", offset=0)

    async def both() -> None:
        async with storage.lock(UID):
            with pytest.raises(TimeoutError):  # tuspyserver answers it with 503: the device tries again
                await locked(storage)

    asyncio.run(both())
    asyncio.run(locked(storage))  # and the upload is free afterwards


def test_a_second_intake_on_the_same_uploads_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    held = hold_uploads_folder(folder)
    try:
        probe = (
            "import sys; from pathlib import Path; from dp3_intake.storage import FolderInUse, hold_uploads_folder\n"
            "try:\n    hold_uploads_folder(Path(sys.argv[1]))\nexcept FolderInUse as exc:\n    print(exc)\n"
        )
        other = subprocess.run([sys.executable, "-c", probe, str(folder)], capture_output=True, text=True, check=True)
        assert other.stdout.strip() == f"another dp3-intake is using {folder} (one intake per uploads folder)"
    finally:
        os.close(held)
    os.close(hold_uploads_folder(folder))  # free again once the holder is gone
