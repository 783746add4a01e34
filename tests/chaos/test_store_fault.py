"""A store fault during a run of the whole stack: one store read-only for a while, then another full.

Both stores are tmpfs mounts made by the test (it runs as root, as the
archiver's own store tests do). While a store cannot take or prove a copy,
no photo of the batch in flight may leave the inbox; once the store is back
the backlog must complete by itself; and the archiver's metrics and the
portal's status page must name the store and say for how long it was the
problem.
"""

from __future__ import annotations

import errno
import html
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.chaos.conftest import StackFactory
from tests.chaos.final_state import Expected, assert_final_state, progress, settled
from tests.chaos.photos import make_photos
from tests.rabbit import wait_for
from tests.stack import Stack, all_photos, metric_samples

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

BATCH = 12
HOLD_RETRIES = 3
"""How many more failed attempts per held-back store the test waits for before it repairs the store."""


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False)


def fill_up(store: Path) -> Path:
    """Another user's data fills the store to the last byte."""
    ballast = store / "ballast.bin"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    chunk = b"\0" * (1 << 20)
    try:
        while len(chunk) >= 512:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)
    return ballast


class InboxWatch:
    """Records any of ``paths`` that leaves the inbox while the watch runs (it must not)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.gone: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.gone = [path for path in self.paths if not os.path.exists(path)]

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        return self.gone


class Archiver:
    def __init__(self, stack: Stack) -> None:
        self.url = f"http://127.0.0.1:{stack.metrics_ports['archiver']}/metrics"

    def sample(self, name: str, store: Path, kind: str | None = None) -> float:
        samples = metric_samples(self.url, f"dp3_archiver_store_{name}")
        for labels, value in samples.items():
            if f'store="{store}"' in labels and (kind is None or f'kind="{kind}"' in labels):
                return value
        return 0.0


def drop(stack: Stack, photos: list[Expected], names: list[Path]) -> list[str]:
    paths = []
    for photo, relative in zip(photos, names, strict=True):
        target = stack.inbox / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(photo.data)
        paths.append(str(target))
    return paths


def status_row(stack: Stack, store: Path) -> list[str]:
    """The cells of the store's row in the portal's status page."""
    page = httpx.get(f"http://127.0.0.1:{stack.portal_port}/status", auth=("admin", stack.password), timeout=10).text
    row = re.search(rf'<tr data-store="{re.escape(str(store))}">(.*?)</tr>', page, re.DOTALL)
    assert row, f"the status page has no row for {store}"
    return [html.unescape(cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.DOTALL)]


def hold_back(
    stack: Stack, archiver: Archiver, store: Path, kind: str, batch: list[str], expected: dict[str, Expected]
) -> None:
    """The batch waits in the inbox while ``store`` fails with ``kind``: counted, shown, nothing collected."""
    # The error is counted a moment before the store's up gauge drops.
    wait_for(
        lambda: archiver.sample("errors_total", store, kind) > 0 and archiver.sample("up", store) == 0,
        60,
        f"{kind} errors counted for {store}, and it is down",
    )
    seen = archiver.sample("errors_total", store, kind)
    wait_for(
        lambda: archiver.sample("errors_total", store, kind) >= seen + HOLD_RETRIES,
        60,
        f"the held-back photos retried against {store}",
        interval=0.5,
    )
    # The page reads the archiver's metrics through a cache of a few seconds.
    wait_for(lambda: status_row(stack, store)[1:3] == ["holding photos back", kind], 15, f"{store} on the status page")
    statuses = {p["path"]: p["status"] for p in all_photos(stack)}
    early = [path for path in batch if statuses.get(path) in ("Archived", "Collected")]
    assert not early, f"archived while {store} was {kind}: {early}"
    assert all(os.path.exists(path) for path in batch)
    assert not settled(stack, expected)


def test_a_read_only_then_a_full_store_hold_photos_back_until_they_return(
    chaos_stack: StackFactory, corpus: Path, tmp_path: Path
) -> None:
    generated = make_photos(corpus, 3 * BATCH, seed=7)
    photos = [Expected(p.data, p.failure) for p in generated]
    names = [p.relative for p in generated]
    home = tmp_path / "home"
    store_a, store_b = home / "archive-a", home / "archive-b"

    def mount_stores(home: Path) -> None:
        mount_tmpfs(store_a, "64m")
        mount_tmpfs(store_b, "16m")

    try:
        with chaos_stack({"DP3_STORE_RESERVE_BYTES": str(256 * 1024)}, mount_stores) as (stack, vhost):
            archiver = Archiver(stack)
            expected: dict[str, Expected] = {}

            def batch(number: int) -> list[str]:
                chosen = slice(number * BATCH, (number + 1) * BATCH)
                paths = drop(stack, photos[chosen], names[chosen])
                expected.update(zip(paths, photos[chosen], strict=True))
                return paths

            batch(0)
            wait_for(lambda: settled(stack, expected), 120, "the first batch collected", interval=1)
            assert archiver.sample("up", store_a) == archiver.sample("up", store_b) == 1

            # Store A turns read-only (a network drive remounted ro) while a batch arrives.
            # Each moment is taken just before the change: a retry may land right after it.
            read_only_from = time.time()
            remount(store_a, "ro")
            second = batch(1)
            watch = InboxWatch(second)
            hold_back(stack, archiver, store_a, "read_only", second, expected)
            assert not watch.stop(), "collected while store A was read-only"
            read_only_to = time.time()
            remount(store_a, "rw")
            wait_for(lambda: settled(stack, expected), 120, "the read-only backlog collected", interval=1)
            back_at = time.time()
            since, until = (
                archiver.sample("problem_since_seconds", store_a),
                archiver.sample("problem_until_seconds", store_a),
            )
            assert read_only_from <= since <= read_only_to and read_only_to <= until <= back_at, (since, until)
            assert archiver.sample("up", store_a) == 1

            # Then store B fills up (another user's data), while the next batch arrives.
            full_from = time.time()
            ballast = fill_up(store_b)
            third = batch(2)
            watch = InboxWatch(third)
            hold_back(stack, archiver, store_b, "full", third, expected)
            assert not watch.stop(), "collected while store B was full"
            full_to = time.time()
            ballast.unlink()
            try:
                wait_for(lambda: settled(stack, expected), 120, "the full-store backlog collected", interval=1)
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {progress(stack, expected)}") from None
            back_at = time.time()
            since, until = (
                archiver.sample("problem_since_seconds", store_b),
                archiver.sample("problem_until_seconds", store_b),
            )
            assert full_from <= since <= full_to and full_to <= until <= back_at, (since, until)

            # Which store, which problem, from when to when: on the status page too.
            for store, kind, seconds in ((store_a, "read_only", read_only_to - read_only_from), (store_b, "full", 0)):
                wait_for(lambda: status_row(stack, store)[1] == "ok", 15, f"{store} ok on the status page")  # noqa: B023
                _, state, problem, start, end, lasted, errors = status_row(stack, store)
                assert (state, problem) == ("ok", kind), (store, state, problem)
                assert start and end and end != "now", (store, start, end)
                assert int(lasted.split()[0]) >= int(seconds) - 2, (store, lasted, seconds)
                assert f"{kind}: " in errors, (store, errors)
            assert archiver.sample("errors_total", store_a, "full") == 0
            assert archiver.sample("errors_total", store_b, "read_only") == 0

            assert_final_state(stack, expected, vhost)
    finally:
        unmount(store_a)
        unmount(store_b)
