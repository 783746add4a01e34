"""Batch mode of the render task: several photos per process, one tar of per-photo outcomes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from dp3 import render_task
from dp3_dispatcher.verify import verify_render
from tests.unit.dispatcher.worker_files import worker_copy

SCRIPT = worker_copy()  # as on a worker: run beside the shipped dp3_formats.py, nothing else


def test_a_batch_renders_each_photo_or_records_its_failure(tmp_path: Path, corpus: Path) -> None:
    good = [corpus / "jpg" / "Canon_40D.jpg", corpus / "jpg" / "orientation" / "portrait_6.jpg"]
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    text = tmp_path / "notes"
    text.write_bytes(b"not an image at all\n" * 10)
    inputs = [good[0], empty, good[1], text]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--max-pixels", "200000000", "--batch", "results.tar", *map(str, inputs)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "out"
    with tarfile.open(tmp_path / "results.tar") as archive:
        archive.extractall(out, filter="data")
    for index, source in ((0, good[0]), (2, good[1])):
        folder = out / str(index)
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        verification = verify_render(folder / "thumbnail.jpg", folder / "web.jpg", folder / "meta.json", digest)
        assert verification.ok, verification.reason
        assert not (folder / "failure.json").exists()
    assert json.loads((out / "1" / "failure.json").read_text())["kind"] == "empty_file"
    assert json.loads((out / "3" / "failure.json").read_text())["kind"] == "corrupt_image"
    for index in (1, 3):
        assert sorted(p.name for p in (out / str(index)).iterdir()) == ["failure.json"]
    # portrait_6 is stored sideways: the batch applies orientation like a single render.
    meta = json.loads((out / "2" / "meta.json").read_text())
    assert meta["height"] > meta["width"]


def test_a_batch_on_a_worker_without_pillow_is_a_worker_environment_failure(tmp_path: Path, corpus: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), "--batch", "results.tar", str(corpus / "jpg" / "Canon_40D.jpg")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == render_task.EXIT_WORKER_ENVIRONMENT
    assert json.loads(result.stdout.strip().splitlines()[-1])["kind"] == "worker_environment"
    assert not (tmp_path / "results.tar").exists()


# Probes: the shipped script imported beside its dp3_formats.py, one function patched, the batch run for real.
PROBE_PRELUDE = (
    "import json, os, sys, tarfile\n"
    "import render_task as rt\n"
    "forks = []\n"
    "real_fork = os.fork\n"
    "def counted_fork():\n"
    "    pid = real_fork()\n"
    "    if pid:\n"
    "        forks.append(pid)\n"
    "    return pid\n"
    "os.fork = counted_fork\n"
)
PROBE_RUN = (
    "rt.render_batch(sys.argv[1:], 'results.tar', rt.Limits(200_000_000, 1024, 60))\n"
    "with tarfile.open('results.tar') as archive:\n"
    "    names = sorted(member.name for member in archive if member.isreg())\n"
    "print(json.dumps({'forks': len(forks), 'files': names}))\n"
)


def probe(tmp_path: Path, patch: str, inputs: list[Path]) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE_PRELUDE + patch + PROBE_RUN, *map(str, inputs)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(SCRIPT.parent)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(outcome, dict)
    return outcome


def rendered(count: int) -> list[str]:
    return sorted(f"{index}/{name}" for index in range(count) for name in ("meta.json", "thumbnail.jpg", "web.jpg"))


def test_a_batch_that_renders_forks_one_render_process_not_one_per_photo(tmp_path: Path, corpus: Path) -> None:
    inputs = [corpus / "jpg" / "Canon_40D.jpg"] * 5
    outcome = probe(tmp_path, "", inputs)
    assert outcome == {"forks": 1, "files": rendered(5)}


def test_a_failure_in_the_shared_process_is_judged_again_alone_so_it_cannot_depend_on_earlier_photos(
    tmp_path: Path, corpus: Path
) -> None:
    # A render that fails only after other photos went through the same process (as a heap left fragmented
    # could make a decode not fit): each such photo renders in a process of its own, and the batch goes on.
    patch = (
        "done_here = []\n"
        "real_render_one = rt.render_one\n"
        "def render_one(source, outdir, limits):\n"
        "    if done_here:\n"
        "        return rt.EXIT_TOO_LARGE, 'out of memory after earlier photos'\n"
        "    done_here.append(source)\n"
        "    return real_render_one(source, outdir, limits)\n"
        "rt.render_one = render_one\n"
    )
    outcome = probe(tmp_path, patch, [corpus / "jpg" / "Canon_40D.jpg"] * 4)
    assert outcome["files"] == rendered(4)
    # A shared process renders photo 0 and fails 1, which then renders alone; a new shared one does the
    # same with 2 and 3.
    assert outcome["forks"] == 4


def test_a_photo_that_fails_alone_too_gets_its_own_verdict_and_the_batch_goes_on(tmp_path: Path, corpus: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    good = corpus / "jpg" / "Canon_40D.jpg"
    outcome = probe(tmp_path, "", [good, empty, good])
    assert outcome["files"] == sorted([*rendered(1), "1/failure.json", "2/meta.json", "2/thumbnail.jpg", "2/web.jpg"])
    assert outcome["forks"] == 3  # the shared process (0, then 1 fails), 1 alone, a new shared one for 2
