"""Per-photo limits of the render task that hold (issue 14 item 4), with real decode-heavy files and real limits.

Each photo renders in a child process under RLIMIT_AS (``--memory-mb``) and a
timer (``--seconds``); a decode predicted from the header not to fit is
refused as too_large before it starts. The limits in these tests are lowered
instead of the files made huge.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dp3 import render_task
from dp3_dispatcher.processes import descendants
from dp3_dispatcher.verify import verify_render
from tests.unit.dispatcher import heavy_images
from tests.unit.dispatcher.worker_files import worker_copy

SCRIPT = worker_copy()
MANY_PIXELS = "2000000000"

Maker = Callable[[Path], Path]
# Each file needs well over 100 MB to decode at full size, and is small on disk.
HEAVY: dict[str, Maker] = {
    "16-bit PNG": lambda folder: heavy_images.gray16_png(folder / "grey16.png", (3000, 2500)),
    "progressive JPEG": lambda folder: heavy_images.progressive_jpeg(folder / "progressive.jpg", (6000, 4000)),
    "progressive CMYK JPEG": lambda folder: heavy_images.progressive_jpeg(folder / "cmyk.jpg", (4000, 3000), "CMYK"),
    "TIFF": lambda folder: heavy_images.tiff(folder / "scan.tif", (4000, 3000)),
    "HEIC": lambda folder: heavy_images.heic(folder / "phone.heic", (3000, 2000)),
    "RGBA PNG": lambda folder: heavy_images.rgba_png(folder / "alpha.png", (4000, 3000)),
    "WebP": lambda folder: heavy_images.webp(folder / "web.webp", (4000, 3000)),
    "RGBA WebP": lambda folder: heavy_images.webp(folder / "alpha.webp", (4000, 3000), "RGBA"),
}


def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout
    )


def report(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(line, dict)
    return line


@pytest.fixture(scope="module")
def heavy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("heavy")
    return {name: make(folder) for name, make in HEAVY.items()}


@pytest.mark.parametrize("name", list(HEAVY))
def test_a_decode_that_does_not_fit_is_refused_before_decoding(
    heavy: dict[str, Path], name: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = run(
        "--max-pixels", MANY_PIXELS, "--memory-mb", "100", str(heavy[name]), str(tmp_path / "out"), cwd=tmp_path
    )
    assert result.returncode == render_task.EXIT_TOO_LARGE, result.stdout + result.stderr
    line = report(result)
    assert line["kind"] == "too_large"
    assert "DP3_TASK_MEMORY_MB" in line["message"] and "DP3_MAX_PIXELS" in line["message"]
    assert "predicted from its header" in line["message"] and "not decoded" in line["message"]
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("name", list(HEAVY))
def test_with_enough_memory_each_renders_and_verifies(heavy: dict[str, Path], name: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("--max-pixels", MANY_PIXELS, "--memory-mb", "1024", str(heavy[name]), str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    digest = hashlib.sha256(heavy[name].read_bytes()).hexdigest()
    verification = verify_render(out / "thumbnail.jpg", out / "web.jpg", out / "meta.json", digest)
    assert verification.ok, verification.reason


PREDICTION_SUFFICES = """
import os, resource, sys, warnings
import render_task as rt
from PIL import Image

rt.share_malloc_arena()
source, outdir = sys.argv[1], sys.argv[2]
data = open(source, "rb").read()
rt.Background(rt.sha256_hex, data).result()  # the hashing thread's stack, as in a render
Image.MAX_IMAGE_PIXELS = None
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    image = rt.open_image(data)
    stored = image.size
    target = rt.fit_within(stored[0], stored[1], rt.WEB_BOX)
    if image.format in rt.DRAFTABLE_FORMATS:
        image.draft("RGB", target)
    needed = rt.decode_cost_bytes(
        image.format, image.mode, stored, image.size, target,
        progressive=bool(image.info.get("progressive")), layers=list(getattr(image, "layer", None) or []),
        transparent_palette="transparency" in image.info,
    )
del image
# The render reads the file again (it is in ``used`` once already): room for that second copy.
limit = rt.address_space_bytes() + needed + len(data)
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
rt.render(source, outdir, 2_000_000_000, memory_bytes=None)  # no prediction: the limit alone
print(needed)
"""


@pytest.mark.parametrize("name", list(HEAVY))
def test_a_decode_predicted_to_fit_does_fit(heavy: dict[str, Path], name: str, tmp_path: Path) -> None:
    # The other side of the agreement: a photo let through by the prediction must not run out of memory.
    result = subprocess.run(
        [sys.executable, "-c", PREDICTION_SUFFICES, str(heavy[name]), str(tmp_path / "out")],
        cwd=SCRIPT.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) > 50 * 1024 * 1024  # a heavy decode indeed


def test_a_big_baseline_jpeg_renders_within_a_small_limit_by_reduced_decode(tmp_path: Path) -> None:
    # 48 MP would need 190 MB at full size; libjpeg decodes it at 1/8 scale, which fits 150 MB.
    from PIL import Image

    photo = tmp_path / "big.jpg"
    Image.new("RGB", (8000, 6000), (120, 130, 140)).save(photo, "JPEG", quality=90)
    result = run("--memory-mb", "150", str(photo), str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_memory_running_out_in_the_decode_is_too_large_naming_the_setting(tmp_path: Path) -> None:
    # Without the prediction (as if it were wrong), the address-space limit itself stops the decode,
    # and the photo still gets too_large with the setting named, not a crash or render_failed.
    photo = heavy_images.gray16_png(tmp_path / "grey16.png", (4000, 3000))
    probe = (
        "import sys, render_task as rt\n"
        "rt.check_memory = lambda *args: None\n"
        "rt.share_malloc_arena()\n"
        "limits = rt.Limits(2_000_000_000, 150, 60)\n"
        "print(rt.render_isolated(sys.argv[1], sys.argv[2], limits))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(photo), str(tmp_path / "out")],
        cwd=SCRIPT.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.startswith(f"({render_task.EXIT_TOO_LARGE}, "), result.stdout
    assert "150 MB" in result.stdout and "DP3_TASK_MEMORY_MB" in result.stdout


def batch(tmp_path: Path, inputs: list[Path], *options: str) -> dict[int, dict[str, bytes]]:
    """Run a batch; each photo's files from the results tar."""
    result = run(*options, "--batch", "results.tar", *map(str, inputs), cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return read_tar(tmp_path / "results.tar")


def read_tar(path: Path) -> dict[int, dict[str, bytes]]:
    files: dict[int, dict[str, bytes]] = {}
    with tarfile.open(path) as archive:
        for member in archive:
            stream = archive.extractfile(member) if member.isreg() else None
            if stream is not None:
                index, name = member.name.split("/")
                files.setdefault(int(index), {})[name] = stream.read()
    return files


def failure(files: dict[str, bytes]) -> dict[str, object]:
    assert sorted(files) == ["failure.json"], sorted(files)
    content = json.loads(files["failure.json"])
    assert isinstance(content, dict)
    return content


def test_a_photo_over_the_time_limit_is_stopped_alone(tmp_path: Path, corpus: Path) -> None:
    slow = heavy_images.zero_png(tmp_path / "slow.png", (20000, 16000))  # about 2 s to decode here
    good = [corpus / "jpg" / "Canon_40D.jpg", corpus / "jpg" / "orientation" / "portrait_6.jpg"]
    started = time.monotonic()
    files = batch(
        tmp_path, [good[0], slow, good[1]], "--max-pixels", MANY_PIXELS, "--memory-mb", "1024", "--seconds", "1"
    )
    assert time.monotonic() - started < 30
    for index in (0, 2):
        assert sorted(files[index]) == ["meta.json", "thumbnail.jpg", "web.jpg"]
    stopped = failure(files[1])
    assert stopped["kind"] == "render_timeout" and stopped["status"] == render_task.EXIT_RENDER_TIMEOUT
    assert "DP3_TASK_MAX_SECONDS" in str(stopped["message"]) and "1 s" in str(stopped["message"])


@pytest.mark.parametrize("kills", [1, 2])
def test_a_photo_whose_render_is_killed_is_rendered_alone_and_fails_only_if_killed_there_too(
    tmp_path: Path, corpus: Path, kills: int
) -> None:
    # As the kernel's OOM killer would: SIGKILL to the process rendering the slow photo. The batch's photos
    # share one render process; the photo it died on is rendered again in a process of its own, whose fate
    # is the photo's verdict. So one kill (the shared process's) costs nothing, and a second (the photo's
    # own process) fails that photo alone, as render_crashed; the photo after it still renders.
    slow = heavy_images.zero_png(tmp_path / "slow.png", (20000, 16000))
    good = corpus / "jpg" / "Canon_40D.jpg"
    inputs = [good, slow, good]
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--max-pixels", MANY_PIXELS, "--batch", "results.tar", *map(str, inputs)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # The first photo is in the tar once it is done; the render process then is on the slow photo.
    # Each process is killed once; after the photo's own process dies, the next is the last photo's.
    partial = tmp_path / "results.tar.tmp"
    killed: list[int] = []
    deadline = time.monotonic() + 60
    while len(killed) < kills and time.monotonic() < deadline:
        if partial.exists() and partial.stat().st_size > 0:
            for child in descendants(process.pid):
                if child not in killed and len(killed) < kills:
                    os.kill(child, signal.SIGKILL)
                    killed.append(child)
        time.sleep(0.02)
    assert len(killed) == kills, f"killed {killed}, wanted {kills} render processes on the slow photo"
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    files = read_tar(tmp_path / "results.tar")
    assert sorted(files[0]) == sorted(files[2]) == ["meta.json", "thumbnail.jpg", "web.jpg"]
    if kills == 1:
        assert sorted(files[1]) == ["meta.json", "thumbnail.jpg", "web.jpg"]
    else:
        crashed = failure(files[1])
        assert crashed["kind"] == "render_crashed" and "SIGKILL" in str(crashed["message"])


@pytest.mark.parametrize(
    ("mode", "size", "extra"),
    [
        ("I;16", (1000, 1000), 0),
        ("RGB", (1000, 1000), 0),
        ("RGBA", (1000, 1000), 0),
        ("CMYK", (1000, 1000), 0),
        ("L", (1000, 1000), 0),
    ],
)
def test_decode_cost_grows_with_the_bytes_per_pixel_of_the_mode(mode: str, size: tuple[int, int], extra: int) -> None:
    cost = render_task.decode_cost_bytes("PNG", mode, size, size, (640, 480))
    pixels = size[0] * size[1]
    stored = {"L": 1, "I;16": 2}.get(mode, 4)
    assert cost >= pixels * stored + render_task.THREAD_ALLOWANCE_BYTES


def test_progressive_jpeg_costs_its_coefficients_at_any_scale() -> None:
    full = (16000, 12000)
    drafted = (2000, 1500)
    subsampled = [(1, 2, 2, 0), (2, 1, 1, 1), (3, 1, 1, 1)]  # 4:2:0
    cmyk = [(1, 1, 1, 0), (2, 1, 1, 0), (3, 1, 1, 0), (4, 1, 1, 0)]
    baseline = render_task.decode_cost_bytes("JPEG", "RGB", full, drafted, (640, 480))
    progressive = render_task.decode_cost_bytes("JPEG", "RGB", full, drafted, (640, 480), True, subsampled)
    progressive_cmyk = render_task.decode_cost_bytes("JPEG", "CMYK", full, drafted, (640, 480), True, cmyk)
    pixels = full[0] * full[1]
    assert baseline < 100 * 1024 * 1024
    assert progressive - baseline == pytest.approx(pixels * 1.5 * 2, rel=0.01)  # 1.5 samples, 2 bytes each
    assert progressive_cmyk - baseline == pytest.approx(pixels * 4 * 2, rel=0.01)
    # The figure: a 200 MP progressive CMYK JPEG needs about 1.6 GB, above the 1024 MB default.
    assert render_task.progressive_coefficient_bytes((16330, 12250), cmyk) > 1.5e9


def test_a_png_too_large_for_memory_is_refused_before_its_exif_is_read(tmp_path: Path) -> None:
    # Pillow decodes a whole PNG to look for an eXIf chunk after the pixels: the prediction comes first,
    # so this refusal is instant, not a second-long decode (it would time out under --seconds 1).
    photo = heavy_images.zero_png(tmp_path / "scan16.png", (12000, 10000), bits=16)
    result = run(
        "--max-pixels",
        MANY_PIXELS,
        "--memory-mb",
        "1024",
        "--seconds",
        "1",
        str(photo),
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert result.returncode == render_task.EXIT_TOO_LARGE, result.stdout + result.stderr
    assert "1024 MB" in report(result)["message"]


def test_a_webp_too_large_for_memory_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    # libwebp allocates its canvases when Pillow *opens* a WebP: 8000x6000 takes 384 MB there, so under
    # 300 MB the open itself fails. That is a photo over the memory limit, not a format this worker lacks.
    for mode in ("RGB", "RGBA"):
        photo = heavy_images.webp(tmp_path / f"big-{mode}.webp", (8000, 6000), mode)
        result = run("--memory-mb", "300", str(photo), str(tmp_path / "out"), cwd=tmp_path)
        assert result.returncode == render_task.EXIT_TOO_LARGE, result.stdout + result.stderr
        line = report(result)
        assert "DP3_TASK_MEMORY_MB" in line["message"] and "predicted from its header" in line["message"]
        assert f"8000x6000 WEBP ({mode})" in line["message"]
    refused = run("--max-pixels", "1000000", "--memory-mb", "300", str(photo), str(tmp_path / "out"), cwd=tmp_path)
    assert refused.returncode == render_task.EXIT_TOO_LARGE and "DP3_MAX_PIXELS" in report(refused)["message"]


def test_webp_header_sizes_match_pillows_for_each_chunk_kind(tmp_path: Path) -> None:
    from PIL import Image

    cases: dict[str, tuple[dict[str, object], str, bool]] = {
        "lossy": ({"quality": 50}, "RGB", False),
        "lossless": ({"lossless": True}, "RGB", False),
        "lossy alpha": ({"quality": 50}, "RGBA", True),
        "lossless alpha": ({"lossless": True}, "RGBA", True),
    }
    for name, (options, mode, alpha) in cases.items():
        path = tmp_path / f"{name}.webp"
        Image.new(mode, (1234, 567), (1, 2, 3, 4)[: len(mode)]).save(path, "WEBP", **options)
        assert render_task.webp_header(path.read_bytes()) == ((1234, 567), alpha), name
    assert render_task.webp_header(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(20)) is None
