"""Batch mode of the render task: several photos per process, one tar of per-photo outcomes."""

from __future__ import annotations

import hashlib
import json
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
