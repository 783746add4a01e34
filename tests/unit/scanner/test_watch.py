"""The inotify watch on a real folder: it hints what can end an upload, and not every write or read."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from dp3_scanner.watch import InboxWatcher


class Hints:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, path: str) -> None:
        with self.lock:
            self.paths.append(path)

    def settled(self, want: int, timeout: float = 10.0) -> list[str]:
        """The hints once ``want`` arrived, and a moment more for any extra one."""
        deadline = time.monotonic() + timeout
        while len(self.paths) < want and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        with self.lock:
            return list(self.paths)


def test_one_photo_written_in_chunks_read_three_times_and_deleted_gives_three_hints(tmp_path: Path) -> None:
    (tmp_path / "A-B").mkdir()
    hints = Hints()
    watcher = InboxWatcher(str(tmp_path), hints)
    assert watcher.start()
    try:
        path = tmp_path / "A-B" / "x.jpg"
        with open(path, "wb", buffering=0) as stream:
            for _chunk in range(32):  # a sync client's writes: one IN_MODIFY each
                stream.write(os.urandom(64 * 1024))
                time.sleep(0.002)
        assert hints.settled(2)[:2] == [str(path), str(path)]  # created, then closed after writing
        for _reader in range(3):  # the scanner's hash, the dispatcher, the archiver
            path.read_bytes()
        path.unlink()
        # created, closed after writing, deleted: nothing for 32 writes, three opens and closes, the folder
        assert hints.settled(3) == [str(path)] * 3
    finally:
        watcher.stop()
