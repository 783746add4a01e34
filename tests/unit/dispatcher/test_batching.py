"""How photos are grouped into render tasks, and how a task's results tar is read."""

from __future__ import annotations

import io
import itertools
import json
import tarfile
from pathlib import Path

import pytest

from dp3_dispatcher.batch_results import Missing, Rendered, RenderFailed, read_results
from dp3_dispatcher.batching import batch_sizes


def test_an_idle_pool_takes_a_lone_photo_at_once() -> None:
    assert batch_sizes(waiting=1, tasks_out=0, workers=2, batch_max=8) == [1]


def test_a_burst_is_spread_over_the_free_workers() -> None:
    assert batch_sizes(waiting=6, tasks_out=0, workers=2, batch_max=8) == [3, 3]
    sizes = batch_sizes(waiting=40, tasks_out=0, workers=16, batch_max=8)
    assert len(sizes) == 16 and sum(sizes) == 40 and max(sizes) - min(sizes) <= 1


def test_a_busy_pool_gathers_full_batches_and_keeps_the_rest_back() -> None:
    assert batch_sizes(waiting=7, tasks_out=2, workers=2, batch_max=8) == []
    assert batch_sizes(waiting=20, tasks_out=2, workers=2, batch_max=8) == [8, 8]


def test_a_pool_with_no_worker_yet_still_gets_its_first_task() -> None:
    assert batch_sizes(waiting=3, tasks_out=0, workers=0, batch_max=8) == [3]
    assert batch_sizes(waiting=3, tasks_out=1, workers=0, batch_max=8) == []


def test_batch_of_one_means_one_photo_per_task() -> None:
    assert batch_sizes(waiting=5, tasks_out=9, workers=2, batch_max=1) == [1] * 5


def test_sizes_never_exceed_the_batch_nor_what_waits_and_a_free_worker_gets_work() -> None:
    for waiting, tasks_out, workers, batch_max in itertools.product(range(30), range(4), range(4), (1, 3, 8)):
        sizes = batch_sizes(waiting, tasks_out, workers, batch_max)
        case = (waiting, tasks_out, workers, batch_max, sizes)
        assert all(1 <= size <= batch_max for size in sizes) and sum(sizes) <= waiting, case
        if tasks_out < max(workers, 1) and waiting:
            assert sizes, case
        if tasks_out >= max(workers, 1):
            assert all(size == batch_max for size in sizes), case


def _tar(path: Path, members: dict[str, bytes], *, extra: list[tarfile.TarInfo] | None = None) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra or []:
            archive.addfile(info)
    return path


def _workspaces(root: Path) -> object:
    counter = itertools.count()

    def new() -> Path:
        folder = root / f"ws{next(counter)}"
        folder.mkdir()
        return folder

    return new


def test_results_are_read_per_photo(tmp_path: Path) -> None:
    failure = json.dumps({"status": 10, "kind": "corrupt_image", "message": "truncated"}).encode()
    tar = _tar(
        tmp_path / "results.tar",
        {
            "0/thumbnail.jpg": b"T0",
            "0/web.jpg": b"W0",
            "0/meta.json": b"{}",
            "1/failure.json": failure,
            "2/thumbnail.jpg": b"T2",  # web and meta missing
        },
    )
    (tmp_path / "ws").mkdir()
    outcomes = read_results(tar, 3, _workspaces(tmp_path / "ws"))  # type: ignore[arg-type]
    assert isinstance(outcomes[0], Rendered)
    assert (outcomes[0].workspace / "web.jpg").read_bytes() == b"W0"
    assert outcomes[1] == RenderFailed(10, json.dumps({"kind": "corrupt_image", "message": "truncated"}))
    assert isinstance(outcomes[2], Missing) and "web.jpg" in outcomes[2].reason


def test_a_hostile_tar_writes_nothing_outside_the_photo_workspaces(tmp_path: Path) -> None:
    link = tarfile.TarInfo("0/web.jpg")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    tar = _tar(
        tmp_path / "results.tar",
        {
            "../escape.jpg": b"x",
            "/abs/0/meta.json": b"x",
            "0/thumbnail.jpg": b"T",
            "0/meta.json": b"{}",
            "5/thumbnail.jpg": b"beyond the batch",
            "0/other.txt": b"x",
        },
        extra=[link],
    )
    (tmp_path / "ws").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    outcomes = read_results(tar, 1, _workspaces(tmp_path / "ws"))  # type: ignore[arg-type]
    assert isinstance(outcomes[0], Missing)  # the symlinked web.jpg is not taken
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list((tmp_path / "ws").iterdir()) == []


def test_a_torn_tar_is_an_error_not_a_result(tmp_path: Path) -> None:
    tar = _tar(tmp_path / "results.tar", {"0/thumbnail.jpg": b"T" * 10_000})
    tar.write_bytes(tar.read_bytes()[:700])
    with pytest.raises((tarfile.TarError, OSError)):
        read_results(tar, 1, _workspaces(tmp_path))  # type: ignore[arg-type]
