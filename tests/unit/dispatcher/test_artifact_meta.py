"""The meta.json schema: forged metas of every kind are invalid artifacts; real renders pass.

Each forged meta starts from a real render of a corpus photo and changes one
thing, then goes through :func:`verify_render` (the dispatcher's own check), so
a rejection here is a rejected task in production.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dp3 import render_task
from dp3_dispatcher import artifact_meta
from dp3_dispatcher.verify import verify_render

PHOTOS = ["jpg/gps/DSCN0010.jpg", "jpg/orientation/portrait_6.jpg", "jpg/Canon_40D.jpg"]
Change = Callable[[dict[str, Any]], object]


@pytest.fixture
def rendered(corpus: Path, tmp_path: Path) -> tuple[Path, str]:
    source = corpus / PHOTOS[0]
    render_task.render(str(source), str(tmp_path))
    return tmp_path, hashlib.sha256(source.read_bytes()).hexdigest()


def verdict_for(outdir: Path, sha256: str, *, max_pixels: int = render_task.DEFAULT_MAX_PIXELS) -> tuple[bool, str]:
    result = verify_render(
        outdir / "thumbnail.jpg", outdir / "web.jpg", outdir / "meta.json", sha256, max_pixels=max_pixels
    )
    return result.ok, result.reason


def forge(outdir: Path, change: Change) -> None:
    meta = json.loads((outdir / "meta.json").read_text())
    change(meta)
    (outdir / "meta.json").write_text(json.dumps(meta))


def set_in(path: str, value: object) -> Change:
    """A change that sets ``a.b.c`` to ``value`` (creating nothing: the key must be a real one, or an extra)."""

    def change(meta: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        holder = meta
        for part in parents:
            holder = holder[part]
        holder[last] = value

    return change


def scaled_dimensions(meta: dict[str, Any]) -> None:
    # The example: sides of about 2**72 keep the aspect, so the geometry checks alone pass them.
    meta["width"], meta["height"] = meta["width"] << 60, meta["height"] << 60


FORGED: dict[str, Change] = {
    "width 2**72 (aspect kept)": scaled_dimensions,
    "width huge": set_in("width", 2**72),
    "width negative": set_in("width", -640),
    "width zero": set_in("width", 0),
    "width bool": set_in("width", True),
    "width float": set_in("width", 640.0),
    "width string": set_in("width", "640"),
    "pixels above the limit": lambda meta: meta.update(width=20_000, height=20_000),
    "size huge": set_in("size", 2**63),
    "size negative": set_in("size", -1),
    "size bool": set_in("size", False),
    "thumbnail width above its box": set_in("thumbnail.width", 121),
    "web height bool": set_in("web.height", True),
    "web with an extra key": set_in("web.depth", 8),
    "web sha256 not hex": set_in("web.sha256", "z" * 64),
    "thumbnail sha256 short": set_in("thumbnail.sha256", "ab" * 16),
    "sha256 upper case": lambda meta: meta.update(sha256=meta["sha256"].upper()),
    "sha256 not a string": set_in("sha256", 12),
    "format not rendered": set_in("format", "PDF"),
    "format huge": set_in("format", "J" * 100_000),
    "render_seconds negative": set_in("render_seconds", -1.0),
    "render_seconds huge": set_in("render_seconds", 1e300),
    "render_seconds string": set_in("render_seconds", "0.1"),
    "extra top-level key": set_in("owner", "someone else"),
    "missing key": lambda meta: meta.pop("render_seconds"),
    "web without its sha256 (a render from before it was written)": lambda meta: meta["web"].pop("sha256"),
    "missing exif key": lambda meta: meta["exif"].pop("iso"),
    "extra exif key": set_in("exif.serial", "123"),
    "exif not an object": set_in("exif", []),
    "model huge": set_in("exif.model", "X" * 1_000_000),
    "model empty": set_in("exif.model", ""),
    "model with a control character": set_in("exif.model", "NIKON\x00D70"),
    "model not a string": set_in("exif.model", 70),
    "iso huge": set_in("exif.iso", 2**64),
    "iso float": set_in("exif.iso", 100.5),
    "iso bool": set_in("exif.iso", True),
    "orientation out of range": set_in("exif.orientation", 9),
    "f_number huge": set_in("exif.f_number", 1e20),
    "f_number string": set_in("exif.f_number", "2.8"),
    "datetime not a date": set_in("exif.datetime_original", "yesterday"),
    "datetime impossible": set_in("exif.datetime_original", "2012-02-30T10:00:00"),
    "datetime year 1000": set_in("exif.datetime_original", "1000-01-01T00:00:00"),
    "datetime year 9999": set_in("exif.datetime_original", "9999-12-31T23:59:59"),
    "datetime with a zone": set_in("exif.datetime_original", "2012-12-14T10:00:00+02:00"),
    "offset not an offset": set_in("exif.offset_time_original", "+2h"),
    "gps latitude out of range": set_in("exif.gps", {"latitude": 91.0, "longitude": 0.0, "altitude": None}),
    "gps longitude bool": set_in("exif.gps", {"latitude": 1.0, "longitude": True, "altitude": None}),
    "gps extra key": set_in("exif.gps", {"latitude": 1.0, "longitude": 2.0, "altitude": None, "x": 1}),
    "gps missing key": set_in("exif.gps", {"latitude": 1.0, "longitude": 2.0}),
    "gps a list": set_in("exif.gps", [1.0, 2.0]),
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_a_forged_meta_is_invalid_artifacts(rendered: tuple[Path, str], name: str) -> None:
    outdir, sha256 = rendered
    forge(outdir, FORGED[name])
    ok, reason = verdict_for(outdir, sha256)
    assert not ok, name
    assert reason.startswith("meta.json ")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("1e400", "outside"),  # parses as inf
    ],
)
def test_nan_and_infinite_numbers_are_refused(rendered: tuple[Path, str], text: str, said: str) -> None:
    outdir, sha256 = rendered
    raw = (outdir / "meta.json").read_text()
    forged, count = re.subn(r'"render_seconds": [^,}]+', f'"render_seconds": {text}', raw)
    assert count == 1
    (outdir / "meta.json").write_text(forged)
    ok, reason = verdict_for(outdir, sha256)
    assert not ok and said in reason


def test_a_key_given_twice_is_refused(rendered: tuple[Path, str]) -> None:
    # json.loads keeps the last one: a reader could see either; the schema sees neither.
    outdir, sha256 = rendered
    raw = (outdir / "meta.json").read_text()
    (outdir / "meta.json").write_text(raw.replace("{", '{"width": 1, ', 1))
    ok, reason = verdict_for(outdir, sha256)
    assert not ok and "twice" in reason


def test_a_meta_of_megabytes_is_refused_unread(rendered: tuple[Path, str]) -> None:
    outdir, sha256 = rendered
    (outdir / "meta.json").write_bytes(b" " * (artifact_meta.META_BYTES_LIMIT + 1) + b"{}")
    ok, reason = verdict_for(outdir, sha256)
    assert not ok and "bytes" in reason


def test_an_integer_of_thousands_of_digits_is_refused(rendered: tuple[Path, str]) -> None:
    outdir, sha256 = rendered
    raw = (outdir / "meta.json").read_text()
    (outdir / "meta.json").write_text(raw.replace('"size": ', '"size": ' + "9" * 5000 + ", " + '"unused_": ', 1))
    ok, reason = verdict_for(outdir, sha256)
    assert not ok and "meta.json" in reason


def test_check_meta_shows_a_huge_value_shortly() -> None:
    with pytest.raises(artifact_meta.InvalidMeta, match="not a JSON object"):
        artifact_meta.check_meta(["x" * 10_000], max_pixels=1)
    with pytest.raises(artifact_meta.InvalidMeta) as caught:
        artifact_meta.check_meta({"x" * 10_000: 1}, max_pixels=1)
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize("photo", PHOTOS)
def test_real_renders_pass_the_schema(corpus: Path, tmp_path: Path, photo: str) -> None:
    source = corpus / photo
    meta = render_task.render(str(source), str(tmp_path))
    artifact_meta.check_meta(json.loads(json.dumps(meta)), max_pixels=render_task.DEFAULT_MAX_PIXELS)
    ok, reason = verdict_for(tmp_path, hashlib.sha256(source.read_bytes()).hexdigest())
    assert ok, reason


def test_the_pixel_bound_is_the_configured_limit(rendered: tuple[Path, str]) -> None:
    outdir, sha256 = rendered
    meta = json.loads((outdir / "meta.json").read_text())
    pixels = meta["width"] * meta["height"]
    assert verdict_for(outdir, sha256, max_pixels=pixels)[0]
    ok, reason = verdict_for(outdir, sha256, max_pixels=pixels - 1)
    assert not ok and "DP3_MAX_PIXELS" in reason


@pytest.mark.parametrize(
    ("value", "kept"),
    [("2012:12:14 10:00:00", "2012-12-14T10:00:00"), ("1000:01:01 00:00:00", None), ("2300:01:01 00:00:00", None)],
)
def test_the_render_reports_an_exif_date_outside_the_schema_as_absent(value: str, kept: str | None) -> None:
    # So an honest render of a photo with a broken camera clock still passes the schema.
    assert render_task.exif_datetime(value) == kept


def test_the_render_reports_an_exif_number_beyond_the_limit_as_absent() -> None:
    assert render_task.as_float(1e20) is None
    assert render_task.as_float((2**32 - 1, 1)) == 2**32 - 1
