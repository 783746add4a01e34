"""Verification of render artifacts, and the meaning of a task's exit status."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from dp3 import render_task
from dp3.events import ErrorKind
from dp3_dispatcher.verify import Verification, classify_exit, permanent, verify_render

PHOTO = "jpg/orientation/portrait_6.jpg"  # stored 600x450, upright 450x600


@pytest.fixture
def artifacts(corpus: Path, tmp_path: Path) -> tuple[Path, str]:
    """A real render of a rotated photo, and the sha256 of the photo."""
    source = corpus / PHOTO
    render_task.render(str(source), str(tmp_path))
    return tmp_path, hashlib.sha256(source.read_bytes()).hexdigest()


def check(outdir: Path, sha256: str) -> Verification:
    return verify_render(outdir / "thumbnail.jpg", outdir / "web.jpg", outdir / "meta.json", sha256)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite_meta(outdir: Path, change: Callable[[dict[str, Any]], object]) -> None:
    meta = json.loads((outdir / "meta.json").read_text())
    change(meta)
    (outdir / "meta.json").write_text(json.dumps(meta))


def test_real_render_verifies(artifacts: tuple[Path, str]) -> None:
    outdir, sha256 = artifacts
    verdict = check(outdir, sha256)
    assert verdict == Verification(ok=True, reason="", meta=verdict.meta)
    assert verdict.meta is not None
    assert (verdict.meta["width"], verdict.meta["height"]) == (450, 600)
    assert verdict.meta["web"] == {"width": 360, "height": 480, "sha256": sha256_of(outdir / "web.jpg")}
    assert verdict.meta["thumbnail"]["sha256"] == sha256_of(outdir / "thumbnail.jpg")


def test_other_bytes_rendered(artifacts: tuple[Path, str]) -> None:
    outdir, _ = artifacts
    verdict = check(outdir, hashlib.sha256(b"another photo").hexdigest())
    assert not verdict.ok and verdict.meta is None
    assert "sha256" in verdict.reason and "other bytes" in verdict.reason


@pytest.mark.parametrize("name", ["thumbnail.jpg", "web.jpg", "meta.json"])
def test_missing_file(artifacts: tuple[Path, str], name: str) -> None:
    outdir, sha256 = artifacts
    (outdir / name).unlink()
    verdict = check(outdir, sha256)
    assert not verdict.ok and "missing" in verdict.reason and name in verdict.reason


def test_meta_not_json(artifacts: tuple[Path, str]) -> None:
    outdir, sha256 = artifacts
    (outdir / "meta.json").write_text('{"sha256": ')
    verdict = check(outdir, sha256)
    assert not verdict.ok and "not valid JSON" in verdict.reason


@pytest.mark.parametrize("key", ["sha256", "web", "exif", "width"])
def test_meta_lacks_a_key(artifacts: tuple[Path, str], key: str) -> None:
    outdir, sha256 = artifacts
    rewrite_meta(outdir, lambda meta: meta.pop(key))
    verdict = check(outdir, sha256)
    assert not verdict.ok and f"lacks {key}" in verdict.reason


@pytest.mark.parametrize("value", ["450", 0, -1, True, 450.5])
def test_meta_width_not_a_positive_integer(artifacts: tuple[Path, str], value: object) -> None:
    outdir, sha256 = artifacts
    rewrite_meta(outdir, lambda meta: meta.update(width=value))
    verdict = check(outdir, sha256)
    assert not verdict.ok and "width" in verdict.reason


def test_meta_exif_incomplete(artifacts: tuple[Path, str]) -> None:
    outdir, sha256 = artifacts
    rewrite_meta(outdir, lambda meta: meta["exif"].pop("gps"))
    assert "exif" in check(outdir, sha256).reason


def test_web_not_an_image(artifacts: tuple[Path, str]) -> None:
    outdir, sha256 = artifacts
    (outdir / "web.jpg").write_text("<html>502 Bad Gateway</html>")
    verdict = check(outdir, sha256)
    assert not verdict.ok and "web.jpg is not the file the worker wrote" in verdict.reason


def test_web_not_an_image_though_meta_json_has_its_sha256(artifacts: tuple[Path, str]) -> None:
    """A worker's render task that wrote garbage and hashed it: the header read on the head node refuses it."""
    outdir, sha256 = artifacts
    (outdir / "web.jpg").write_text("<html>502 Bad Gateway</html>")
    rewrite_meta(outdir, lambda meta: meta["web"].update(sha256=sha256_of(outdir / "web.jpg")))
    verdict = check(outdir, sha256)
    assert not verdict.ok and "web.jpg is not a readable JPEG" in verdict.reason


@pytest.mark.parametrize("name", ["thumbnail.jpg", "web.jpg"])
@pytest.mark.parametrize("kept", [0.1, 0.5, 0.99])
def test_truncated_artifact(artifacts: tuple[Path, str], name: str, kept: float) -> None:
    outdir, sha256 = artifacts
    data = (outdir / name).read_bytes()
    (outdir / name).write_bytes(data[: int(len(data) * kept)])
    verdict = check(outdir, sha256)
    assert not verdict.ok and f"{name} is not the file the worker wrote" in verdict.reason


@pytest.mark.parametrize("name", ["thumbnail.jpg", "web.jpg"])
def test_a_bit_flipped_in_transit_is_found_though_the_jpeg_still_decodes(
    artifacts: tuple[Path, str], name: str
) -> None:
    """What the decode on the head node used to pass: entropy-coded data that is wrong but still parses."""
    outdir, sha256 = artifacts
    data = bytearray((outdir / name).read_bytes())
    data[len(data) * 2 // 3] ^= 0x01
    (outdir / name).write_bytes(bytes(data))
    with Image.open(outdir / name) as flipped:
        flipped.load()  # a decode alone would have passed it
    verdict = check(outdir, sha256)
    assert not verdict.ok and f"{name} is not the file the worker wrote" in verdict.reason


def test_web_in_another_format(artifacts: tuple[Path, str]) -> None:
    outdir, sha256 = artifacts
    Image.new("RGB", (360, 480)).save(outdir / "web.jpg", "PNG")
    rewrite_meta(outdir, lambda meta: meta["web"].update(sha256=sha256_of(outdir / "web.jpg")))
    verdict = check(outdir, sha256)
    assert not verdict.ok and "PNG, not JPEG" in verdict.reason


def replace_web(outdir: Path, size: tuple[int, int]) -> None:
    """A valid JPEG of another size as web.jpg, with meta.json agreeing, so only geometry is wrong."""
    Image.new("RGB", size, "green").save(outdir / "web.jpg", "JPEG")
    rewrite_meta(
        outdir,
        lambda meta: meta.update(web={"width": size[0], "height": size[1], "sha256": sha256_of(outdir / "web.jpg")}),
    )


def test_oversize_web(artifacts: tuple[Path, str]) -> None:
    outdir, sha256 = artifacts
    replace_web(outdir, (375, 500))
    verdict = check(outdir, sha256)
    assert not verdict.ok and "web.height 500 is outside 1..480" in verdict.reason  # the schema's box


def test_web_not_rotated(artifacts: tuple[Path, str]) -> None:
    # The stored (unrotated) aspect instead of the upright one.
    outdir, sha256 = artifacts
    replace_web(outdir, (640, 480))
    verdict = check(outdir, sha256)
    assert not verdict.ok and "aspect of the upright original 450x600" in verdict.reason


def test_web_too_small_for_its_box(artifacts: tuple[Path, str]) -> None:
    outdir, sha256 = artifacts
    replace_web(outdir, (180, 240))
    verdict = check(outdir, sha256)
    assert not verdict.ok and "expected 360x480" in verdict.reason


def test_artifact_disagrees_with_meta(artifacts: tuple[Path, str]) -> None:
    outdir, sha256 = artifacts
    rewrite_meta(outdir, lambda meta: meta["thumbnail"].update(width=67, height=90))
    verdict = check(outdir, sha256)
    assert not verdict.ok and "meta.json says 67x90" in verdict.reason


def test_rounding_is_tolerated(tmp_path: Path) -> None:
    # 2164x1626: the web side rounds to 639, the thumbnail is made from the web version.
    Image.new("RGB", (2164, 1626), "blue").save(tmp_path / "odd.jpg")
    render_task.render(str(tmp_path / "odd.jpg"), str(tmp_path / "out"))
    verdict = check(tmp_path / "out", hashlib.sha256((tmp_path / "odd.jpg").read_bytes()).hexdigest())
    assert verdict.ok, verdict.reason
    assert verdict.meta is not None and (verdict.meta["web"]["width"], verdict.meta["web"]["height"]) == (639, 480)


# ---------------------------------------------------------------- exit status


def task_line(kind: str, message: str) -> str:
    return json.dumps({"kind": kind, "message": message}) + "\n"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (10, ErrorKind.CORRUPT_IMAGE),
        (11, ErrorKind.UNSUPPORTED_FORMAT),
        (12, ErrorKind.TOO_LARGE),
        (13, ErrorKind.EMPTY_FILE),
        (20, ErrorKind.WORKER_ENVIRONMENT),
    ],
)
def test_classified_exits_carry_the_task_message(status: int, kind: ErrorKind) -> None:
    assert classify_exit(status, task_line(kind.value, "what to do")) == (kind, "what to do")


def test_classified_exit_without_output_still_says_why() -> None:
    kind, message = classify_exit(12, "")
    assert kind is ErrorKind.TOO_LARGE and "12" in message and "too_large" in message


@pytest.mark.parametrize("status", [126, 127])
def test_shell_could_not_run_python(status: int) -> None:
    kind, message = classify_exit(status, "sh: 1: python3: not found\n")
    assert kind is ErrorKind.WORKER_ENVIRONMENT
    assert "python3: not found" in message


def test_unknown_exit_is_render_failed_with_the_last_line() -> None:
    output = (
        'Traceback (most recent call last):\n  File "render_task.py"\nOSError: [Errno 28] No space left on device\n'
    )
    kind, message = classify_exit(1, output)
    assert kind is ErrorKind.RENDER_FAILED
    assert message.endswith("No space left on device") and "exited 1" in message


def test_unknown_exit_prefers_the_task_message() -> None:
    kind, message = classify_exit(1, "noise\n" + task_line("render_failed", "the render task failed: KeyError"))
    assert (kind, message) == (ErrorKind.RENDER_FAILED, "the render task exited 1: the render task failed: KeyError")


def test_killed_task() -> None:
    assert classify_exit(-9, "") == (ErrorKind.RENDER_FAILED, "the render task exited -9: no output")


def test_permanent_kinds() -> None:
    assert {kind for kind in ErrorKind if permanent(kind)} == {
        ErrorKind.CORRUPT_IMAGE,
        ErrorKind.UNSUPPORTED_FORMAT,
        ErrorKind.TOO_LARGE,
        ErrorKind.EMPTY_FILE,
    }
    assert not permanent(ErrorKind.WORKER_ENVIRONMENT) and not permanent(ErrorKind.RENDER_FAILED)
