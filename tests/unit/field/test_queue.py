"""The durable queue (dp3_field.queue) on a real SQLite file: reopen, kill -9, counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from dp3_field.plan import OriginalState, PreviewState
from dp3_field.queue import Found, Queue

KEY = (1000, 1, 2, 3)


def found(name: str, sha: str, preview: str | None = "/p.jpg") -> Found:
    return Found(f"/card/{name}", name, sha, 1000, "2026-12-01", 1.0, None, preview)


def test_a_queued_photo_and_its_upload_url_survive_a_reopen(tmp_path: Path) -> None:
    queue = Queue(tmp_path / "q.sqlite3")
    assert queue.add(found("a.jpg", "a" * 64), KEY, now=1.0)
    assert not queue.add(found("copy-of-a.jpg", "a" * 64), KEY, now=1.0)  # the same bytes go once
    photo = queue.photos()[0]
    queue.set_upload_url(photo.id, "http://head/files/abc")
    queue.set_offset(photo.id, 512)
    queue.close()
    again = Queue(tmp_path / "q.sqlite3")
    [reopened] = again.photos()
    assert reopened.preview == PreviewState.PENDING and reopened.original == OriginalState.PENDING
    assert again.upload_url(reopened.id) == "http://head/files/abc"
    assert again.known_file("/card/a.jpg") == KEY
    counts = again.counts()
    assert (counts.previews_waiting, counts.originals_waiting, counts.bytes_to_go) == (1, 1, 488)


def test_a_file_the_render_refused_is_never_sent_and_says_why(tmp_path: Path) -> None:
    queue = Queue(tmp_path / "q.sqlite3")
    queue.add(Found("/card/n.txt", "n.txt", "b" * 64, 5, "2026-12-01", 1.0, None, None, "not a photo"), KEY, 1.0)
    [photo] = queue.photos()
    assert (photo.preview, photo.original) == (PreviewState.NONE, OriginalState.REFUSED)
    assert queue.problems() == [("n.txt", "not a photo")]


WRITER = """
import sys, time
from pathlib import Path
from dp3_field.queue import Found, Queue
queue = Queue(Path(sys.argv[1]))
for number in range(100000):
    queue.add(Found(f"/card/{number}.jpg", f"{number}.jpg", f"{number:064x}", 10, "2026-12-01", 1.0, None, "/p"),
              (10, number, number, number), time.time())
    print(number, flush=True)
"""


def test_kill_9_loses_no_committed_photo(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    acknowledged = -1
    for line in writer.stdout:
        acknowledged = int(line)
        if acknowledged >= 200:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    queue = Queue(path)
    names = {photo.name for photo in queue.photos()}
    # Every add that returned (printed) is there after the kill; nothing half-written.
    assert {f"{number}.jpg" for number in range(acknowledged + 1)} <= names
    assert queue.counts().previews_waiting == len(names)
