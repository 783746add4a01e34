"""The render task, run as workers run it: a real subprocess on real files.

The corpus is rendered once per module (two processes at a time) and several
tests read the outcome: every file classified, orientation applied, GPS kept.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from dp3 import formats, render_task
from dp3_dispatcher.verify import verify_render
from dp3_portal.camera_filter import camera_of
from dp3_portal.presentation import gps
from tests.unit.dispatcher.worker_files import worker_copy

SCRIPT = worker_copy()  # as on a worker: run beside the shipped dp3_formats.py, nothing else
ARTIFACTS = ("thumbnail.jpg", "web.jpg", "meta.json")


@dataclass(frozen=True)
class Outcome:
    source: Path
    outdir: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        report = json.loads(self.stdout.strip().splitlines()[-1])
        assert isinstance(report, dict)
        return report

    @property
    def meta(self) -> dict[str, Any]:
        meta = json.loads((self.outdir / "meta.json").read_text())
        assert isinstance(meta, dict)
        return meta

    def web(self) -> Image.Image:
        with Image.open(self.outdir / "web.jpg") as image:
            image.load()
            return image


def run_task(
    source: Path, outdir: Path, *options: str, python: tuple[str, ...] = (sys.executable,), **env: str
) -> Outcome:
    outdir.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [*python, str(SCRIPT), *options, str(source), str(outdir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )
    return Outcome(source, outdir, completed.returncode, completed.stdout, completed.stderr)


def assert_failed(outcome: Outcome, status: int, kind: str) -> None:
    assert outcome.returncode == status, (outcome.stdout, outcome.stderr)
    assert outcome.report["kind"] == kind
    assert outcome.report["message"]
    assert not [name for name in os.listdir(outcome.outdir) if name in ARTIFACTS or name.endswith(".tmp")]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus_outcomes(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every file of the corpus rendered by the real script, keyed by its path in the corpus."""
    root = tmp_path_factory.mktemp("corpus-render")
    sources = sorted(path for path in corpus.rglob("*") if path.is_file())
    assert len(sources) > 100

    def render(index_source: tuple[int, Path]) -> tuple[str, Outcome]:
        index, source = index_source
        return source.relative_to(corpus).as_posix(), run_task(source, root / str(index))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(render, enumerate(sources)))


# ---------------------------------------------------------------- the corpus


def test_every_corpus_file_renders_verified_or_fails_with_its_kind(corpus_outcomes: dict[str, Outcome]) -> None:
    # The upstream READMEs are text: the only corpus files that are not images.
    for name, outcome in corpus_outcomes.items():
        if Path(name).name.startswith("README"):
            assert_failed(outcome, render_task.EXIT_CORRUPT_IMAGE, "corrupt_image")
            continue
        assert outcome.returncode == 0, (name, outcome.stdout, outcome.stderr)
        verdict = verify_render(
            outcome.outdir / "thumbnail.jpg",
            outcome.outdir / "web.jpg",
            outcome.outdir / "meta.json",
            sha256(outcome.source),
        )
        assert verdict.ok, (name, verdict.reason)
        assert verdict.meta is not None and verdict.meta["size"] == outcome.source.stat().st_size
        json.dumps(verdict.meta, allow_nan=False)  # JSON-safe, odd EXIF included


def test_corpus_formats_are_all_rendered(corpus_outcomes: dict[str, Outcome]) -> None:
    formats = {outcome.meta["format"] for outcome in corpus_outcomes.values() if outcome.returncode == 0}
    assert {"JPEG", "TIFF", "HEIF"} <= formats


def test_web_version_is_progressive_and_thumbnail_fits(corpus_outcomes: dict[str, Outcome]) -> None:
    outcome = corpus_outcomes["jpg/mobile/jolla.jpg"]
    with Image.open(outcome.outdir / "web.jpg") as web:
        assert web.info.get("progressive") and web.size == (640, 480) and web.mode == "RGB"
    with Image.open(outcome.outdir / "thumbnail.jpg") as thumbnail:
        assert thumbnail.size == (120, 90)
    assert outcome.meta["width"] == 3264 and outcome.meta["height"] == 2448


def test_exif_subset_of_a_camera_photo(corpus_outcomes: dict[str, Outcome]) -> None:
    exif = corpus_outcomes["jpg/Canon_40D.jpg"].meta["exif"]
    assert exif["make"] == "Canon" and exif["model"] == "Canon EOS 40D"
    assert exif["datetime_original"] == "2008-05-30T15:56:01"
    assert exif["exposure_time"] == pytest.approx(1 / 160)
    assert exif["f_number"] == pytest.approx(7.1)
    assert exif["iso"] == 100
    assert exif["focal_length"] == pytest.approx(135.0)
    assert exif["orientation"] == 1
    assert set(exif) == set(render_task.EXIF_KEYS)


def test_lens_and_altitude_of_a_phone_photo(corpus_outcomes: dict[str, Outcome]) -> None:
    exif = corpus_outcomes["jpg/hdr/iphone_hdr_NO.jpg"].meta["exif"]
    assert exif["lens"] == "iPhone 6 back camera 4.15mm f/2.2"
    assert exif["gps"] == {
        "latitude": pytest.approx(40.44697, abs=1e-4),
        "longitude": pytest.approx(-3.72475, abs=1e-4),
        "altitude": pytest.approx(639.588),
    }


def test_the_portal_reads_a_real_renders_meta_by_the_shared_keys(corpus_outcomes: dict[str, Outcome]) -> None:
    # meta.json's keys are declared once (dp3.formats): what the render writes is what the portal folds.
    canon = corpus_outcomes["jpg/Canon_40D.jpg"].meta
    assert tuple(sorted(canon)) == tuple(sorted(formats.META_KEYS))
    assert camera_of(canon) == "Canon EOS 40D"
    phone = corpus_outcomes["jpg/hdr/iphone_hdr_NO.jpg"].meta
    position = gps(phone)
    assert position is not None
    assert position[0] == pytest.approx(40.44697, abs=1e-4) and position[1] == pytest.approx(-3.72475, abs=1e-4)


def test_gps_samples_carry_coordinates(corpus_outcomes: dict[str, Outcome]) -> None:
    gps_samples = {name: outcome for name, outcome in corpus_outcomes.items() if name.startswith("jpg/gps/DSCN")}
    assert len(gps_samples) == 9
    for name, outcome in gps_samples.items():
        gps = outcome.meta["exif"]["gps"]
        assert gps is not None, name
        # The samples were taken in Tuscany.
        assert 43 < gps["latitude"] < 44 and 11 < gps["longitude"] < 12, (name, gps)
    first = gps_samples["jpg/gps/DSCN0010.jpg"].meta["exif"]["gps"]
    assert first["latitude"] == pytest.approx(43 + 28 / 60 + 2.814 / 3600, abs=1e-6)
    assert first["longitude"] == pytest.approx(11 + 53 / 60 + 6.456 / 3600, abs=1e-6)


def differing_share(first: Image.Image, second: Image.Image) -> float:
    """The share of pixels whose grey levels differ by more than 40 of 255."""
    histogram = ImageChops.difference(first, second).convert("L").histogram()
    return sum(histogram[40:]) / sum(histogram)


@pytest.mark.parametrize("shape", ["landscape", "portrait"])
def test_orientation_samples_agree_pixel_wise(corpus_outcomes: dict[str, Outcome], shape: str) -> None:
    outcomes = [corpus_outcomes[f"jpg/orientation/{shape}_{value}.jpg"] for value in range(1, 9)]
    upright = outcomes[0].web()
    original, expected_size = ((600, 450), (600, 450)) if shape == "landscape" else ((450, 600), (360, 480))
    assert upright.size == expected_size
    # Each sample carries its own digit (under 1 % of the pixels) and its own
    # JPEG generation; a mirrored or turned image differs in far more pixels.
    for method in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180):
        assert differing_share(upright, upright.transpose(method)) > 0.2
    for value, outcome in enumerate(outcomes, start=1):
        web = outcome.web()
        assert web.size == expected_size, value
        assert differing_share(upright, web) < 0.02, value
        assert (outcome.meta["width"], outcome.meta["height"]) == original
        assert outcome.meta["exif"]["orientation"] == value


# ---------------------------------------------------------------- classified failures


def test_empty_file(tmp_path: Path) -> None:
    source = tmp_path / "empty.jpg"
    source.touch()
    assert_failed(run_task(source, tmp_path / "out"), render_task.EXIT_EMPTY_FILE, "empty_file")


def test_text_named_jpg_is_corrupt(tmp_path: Path) -> None:
    source = tmp_path / "notes.jpg"
    source.write_text("shopping list: film, batteries\n")
    outcome = run_task(source, tmp_path / "out")
    assert_failed(outcome, render_task.EXIT_CORRUPT_IMAGE, "corrupt_image")
    assert "re-export" in outcome.report["message"]


def test_truncated_jpeg_is_corrupt(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "jpg/mobile/jolla.jpg").read_bytes()
    source = tmp_path / "cut.jpg"
    source.write_bytes(data[: len(data) // 2])
    outcome = run_task(source, tmp_path / "out")
    assert_failed(outcome, render_task.EXIT_CORRUPT_IMAGE, "corrupt_image")
    assert "truncated" in outcome.report["message"]


def test_failure_removes_stale_artifacts(tmp_path: Path) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    for name in ARTIFACTS:
        (outdir / name).write_text("left by an earlier run")
    source = tmp_path / "empty.jpg"
    source.touch()
    assert_failed(run_task(source, outdir), render_task.EXIT_EMPTY_FILE, "empty_file")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_png_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    # 100000 x 100000 RGB claimed, a few bytes of pixel data: decoding it would
    # fail as truncated, so too_large proves the header was checked first.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    source = tmp_path / "bomb.png"
    source.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 301))
        + png_chunk(b"IEND", b"")
    )
    outcome = run_task(source, tmp_path / "out")
    assert_failed(outcome, render_task.EXIT_TOO_LARGE, "too_large")
    assert "100000x100000" in outcome.report["message"]


def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with the frame header (SOFn) rewritten to claim another size."""
    position = 2
    while position < len(data):
        marker, length = data[position + 1], struct.unpack(">H", data[position + 2 : position + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            size_at = position + 5
            return data[:size_at] + struct.pack(">HH", height, width) + data[size_at + 4 :]
        position += 2 + length
    raise AssertionError("no SOF marker")


def test_jpeg_bomb_is_refused_from_its_header(corpus: Path, tmp_path: Path) -> None:
    source = tmp_path / "bomb.jpg"
    source.write_bytes(with_jpeg_size((corpus / "jpg/orientation/landscape_1.jpg").read_bytes(), 60_000, 60_000))
    outcome = run_task(source, tmp_path / "out")
    assert_failed(outcome, render_task.EXIT_TOO_LARGE, "too_large")


def test_max_pixels_option(corpus: Path, tmp_path: Path) -> None:
    source = corpus / "jpg/orientation/landscape_1.jpg"  # 600 x 450 = 270000 pixels
    assert_failed(
        run_task(source, tmp_path / "small", "--max-pixels", "269999"), render_task.EXIT_TOO_LARGE, "too_large"
    )
    assert run_task(source, tmp_path / "fits", "--max-pixels", "270000").returncode == 0


def test_heic_on_a_worker_without_pillow_heif_is_the_workers_lack_not_the_photos(corpus: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pillow_heif.py").write_text("raise ImportError('pillow_heif hidden by the test')\n")
    outcome = run_task(corpus / "heic/samplefilehub.heif", tmp_path / "out", PYTHONPATH=str(shadow))
    assert_failed(outcome, render_task.EXIT_MISSING_DECODER, "worker_environment")
    assert "pillow-heif" in outcome.report["message"]
    assert run_task(corpus / "heic/samplefilehub.heif", tmp_path / "with").returncode == 0  # a worker that has it


@pytest.mark.parametrize("keep", [200, 0.5])
@pytest.mark.parametrize("name", ["heic/samplefilehub.heif", "webp"])
def test_a_damaged_heic_or_webp_on_a_worker_with_its_decoder_is_corrupt(
    corpus: Path, tmp_path: Path, name: str, keep: float
) -> None:
    # The decoder is there and refused the bytes: the photo is damaged (permanent, "re-export it"),
    # not a format this worker cannot read ("install pillow-heif", which is installed).
    whole = tmp_path / "whole.webp"
    if name == "webp":
        Image.new("RGB", (800, 600), (10, 90, 200)).save(whole, "WEBP", quality=80)
    source = whole if name == "webp" else corpus / name
    damaged = tmp_path / f"damaged{source.suffix}"
    data = source.read_bytes()
    damaged.write_bytes(data[: int(keep if keep > 1 else len(data) * keep)])
    outcome = run_task(damaged, tmp_path / "out")
    assert_failed(outcome, render_task.EXIT_CORRUPT_IMAGE, "corrupt_image")
    assert "pillow-heif" not in outcome.report["message"] and "cannot decode" not in outcome.report["message"]


def test_format_pillow_opens_but_dp3_does_not_render(tmp_path: Path) -> None:
    source = tmp_path / "icon.jpg"
    Image.new("RGB", (32, 32), "red").save(source, "ICO")
    assert_failed(run_task(source, tmp_path / "out"), render_task.EXIT_UNSUPPORTED_FORMAT, "unsupported_format")


def test_worker_without_pillow(corpus: Path, tmp_path: Path) -> None:
    # -I -S: no site-packages, as on a node whose python3 lacks Pillow.
    outcome = run_task(corpus / "jpg/Canon_40D.jpg", tmp_path / "out", python=(sys.executable, "-I", "-S"))
    assert_failed(outcome, render_task.EXIT_WORKER_ENVIRONMENT, "worker_environment")
    assert "Pillow" in outcome.report["message"]


# ---------------------------------------------------------------- pixel modes


@pytest.fixture
def rendered(tmp_path: Path) -> Iterator[Any]:
    def render(image: Image.Image, name: str, **save: Any) -> Outcome:
        source = tmp_path / name
        image.save(source, **save)
        outcome = run_task(source, tmp_path / f"out-{name}")
        assert outcome.returncode == 0, (outcome.stdout, outcome.stderr)
        return outcome

    yield render


@pytest.mark.parametrize(
    ("mode", "name"),
    [("RGBA", "alpha.png"), ("CMYK", "cmyk.jpg"), ("I;16", "deep.png"), ("P", "palette.gif"), ("L", "grey.tiff")],
)
def test_pixel_modes_become_rgb_jpegs(rendered: Any, mode: str, name: str) -> None:
    image = (
        Image.new("RGB", (1000, 500), (200, 30, 30)).convert(mode)
        if mode != "I;16"
        else Image.new("I;16", (1000, 500), 40000)
    )
    outcome = rendered(image, name)
    web = outcome.web()
    assert web.mode == "RGB" and web.size == (640, 320)
    assert (outcome.meta["web"]["width"], outcome.meta["web"]["height"]) == (640, 320)


def test_transparent_pixels_render_on_white(rendered: Any) -> None:
    image = Image.new("RGBA", (800, 600), (0, 0, 0, 0))
    web = rendered(image, "clear.png").web()
    assert min(web.getpixel((320, 240))) > 245


# ---------------------------------------------------------------- what the worker needs


def imports_of(path: Path) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    return imported


def test_script_needs_only_the_standard_library_pillow_and_the_shipped_contracts() -> None:
    # dp3 only as the fallback when imported inside the dispatcher's package (not on a worker).
    assert imports_of(SCRIPT) - sys.stdlib_module_names == {"PIL", "pillow_heif", "dp3_formats", "dp3"}
    assert imports_of(SCRIPT.with_name("dp3_formats.py")) <= set(sys.stdlib_module_names)


def test_script_parses_on_an_old_python_so_it_can_say_so() -> None:
    # Python 3.6 must reach the version check (exit 20), not stop at a SyntaxError.
    for shipped in (SCRIPT, SCRIPT.with_name("dp3_formats.py")):
        tree = ast.parse(shipped.read_text(), feature_version=(3, 6))
        # Postponed annotations would be a SyntaxError before 3.7.
        assert not [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "__future__"]


@pytest.mark.parametrize(
    ("setting", "needed"), [("MIN_PYTHON", "needs Python >= 99.0"), ("MIN_PILLOW", "needs Pillow >= 99.0")]
)
def test_old_python_or_pillow_is_a_worker_environment_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, setting: str, needed: str
) -> None:
    monkeypatch.setattr(render_task, setting, (99, 0))
    assert render_task.main([str(tmp_path / "photo"), str(tmp_path)]) == render_task.EXIT_WORKER_ENVIRONMENT
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "worker_environment" and needed in report["message"]


def test_embedded_profile_is_converted_to_srgb(corpus: Path) -> None:
    with Image.open(corpus / "jpg/orientation/landscape_2.jpg") as image:
        generic_rgb = image.info["icc_profile"]  # Apple "Generic RGB Profile", gamma 1.8
    with Image.open(corpus / "jpg/tests/33-type_error.jpg") as image:
        srgb = image.info["icc_profile"]  # "sRGB IEC61966-2.1"
    grey = Image.new("RGB", (8, 8), (100, 100, 100))
    grey.info["icc_profile"] = generic_rgb
    converted = render_task.to_srgb(grey).getpixel((0, 0))
    # Gamma 1.8 mid-grey is lighter once encoded for sRGB (about 2.2).
    assert isinstance(converted, tuple) and all(value > 110 for value in converted)
    grey.info["icc_profile"] = srgb
    assert render_task.to_srgb(grey).getpixel((0, 0)) == (100, 100, 100)
    grey.info["icc_profile"] = b"not a profile"
    assert render_task.to_srgb(grey).getpixel((0, 0)) == (100, 100, 100)


# ---------------------------------------------------------------- threads


@pytest.mark.parametrize(
    ("photo", "mode", "reducing_gap"),
    [
        ("jpg/hdr/iphone_hdr_NO.jpg", "RGB", 3.0),  # drafted to 1/4: the worker's usual case
        ("jpg/orientation/portrait_6.jpg", "L", 3.0),
        ("jpg/hdr/iphone_hdr_NO.jpg", "CMYK", 2.0),  # full size: the integer reduction runs per band too
    ],
)
def test_resize_in_bands_matches_one_resize(corpus: Path, photo: str, mode: str, reducing_gap: float) -> None:
    with Image.open(corpus / photo) as opened:
        if mode == "RGB":
            opened.draft("RGB", (640, 480))
        image = opened.convert(mode)
    size = render_task.fit_within(image.width, image.height, render_task.WEB_BOX)
    banded = render_task.resize_in_bands(image, size, reducing_gap=reducing_gap)
    whole = image.resize(size, render_task.LANCZOS, reducing_gap=reducing_gap)
    assert banded.mode == whole.mode and banded.size == whole.size
    # The same picture: no seam, no shifted band. Pillow rounds a band's filter weights a
    # little differently (a few levels here and there), far below what JPEG itself changes.
    levels = ImageChops.difference(banded, whole).tobytes()  # every channel of every pixel
    assert max(levels) <= 4
    assert sum(level * level for level in levels) / len(levels) < 0.5  # PSNR above 51 dB


@pytest.mark.parametrize(
    ("mode", "source", "output"),
    # Scales that are not binary fractions (10.62, 1.275): there a band's weights round differently.
    [("L", (400, 531), (200, 50)), ("RGBA", (816, 612), (640, 480)), ("LA", (816, 612), (640, 480))],
)
def test_resize_in_bands_keeps_small_outputs_and_alpha_in_one_piece(
    mode: str, source: tuple[int, int], output: tuple[int, int]
) -> None:
    # Too few rows to be worth a thread; or alpha, which Pillow premultiplies over the whole source per call.
    # Noise, so that bands would show as differences from one resize (a smooth gradient would not).
    image = Image.effect_noise(source, 64).convert(mode)
    assert render_task.resize_in_bands(image, output, reducing_gap=3.0).tobytes() == (
        image.resize(output, render_task.LANCZOS, reducing_gap=3.0).tobytes()
    )


def test_background_returns_the_value_or_raises_the_error() -> None:
    assert render_task.Background(sum, [1, 2, 3]).result() == 6
    with pytest.raises(ZeroDivisionError):
        render_task.Background(divmod, 1, 0).result()
