"""Issue 14 item 9: each format contract has one definition (dp3.formats), and workers get exactly that file."""

from __future__ import annotations

import json
import subprocess
import sys
import zoneinfo
from pathlib import Path

import pytest

from dp3 import formats, render_task
from dp3.events import ErrorKind
from dp3_dispatcher import verify
from dp3_dispatcher.dispatcher import FORMATS_REMOTE, TASK_FILES
from dp3_scanner import capture_time, filetype
from tests.unit.dispatcher.worker_files import worker_copy

UTC = zoneinfo.ZoneInfo("UTC")


def test_the_task_ships_the_library_module_itself() -> None:
    shipped = {remote: local for local, remote in TASK_FILES}
    assert Path(shipped[FORMATS_REMOTE]).read_bytes() == Path(formats.__file__).read_bytes()
    assert Path(shipped["render_task.py"]).read_bytes() == Path(render_task.__file__).read_bytes()


def test_on_a_worker_the_render_task_uses_the_shipped_copy(tmp_path: Path) -> None:
    script = worker_copy(tmp_path / "worker")
    probe = "import render_task; print(render_task.formats.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=script.parent, capture_output=True, text=True, check=True, timeout=60
    )
    assert Path(result.stdout.strip()).resolve() == (script.parent / FORMATS_REMOTE).resolve()


def test_a_drifted_copy_would_change_what_the_worker_does(tmp_path: Path) -> None:
    # The render task reads its HEIF brands from the shipped file and nowhere else.
    script = worker_copy(tmp_path / "worker")
    shipped = script.parent / FORMATS_REMOTE
    shipped.write_text(shipped.read_text().replace('b"hevm", ', ""))
    probe = "import render_task; print(b'hevm' in render_task.HEIF_BRANDS)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=script.parent, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_one_heif_brand_list() -> None:
    assert filetype.HEIF_BRANDS is formats.HEIF_BRANDS
    assert render_task.HEIF_BRANDS is formats.HEIF_BRANDS
    for brand in formats.HEIF_BRANDS:
        head = b"\x00\x00\x00\x18ftyp" + brand + b"\x00" * 8
        assert filetype.sniff_format(head) == "heif"
        assert "HEIF" in (render_task.sniff_unsupported(head) or "")


@pytest.mark.parametrize(
    "raw",
    [
        "2012:12:14 22:33:28",
        " 2012-12-14 22:33:28",
        "2012/12/14T22:33:28",
        b"2012:12:14 22:33:28\x00",
        "1800:01:01 00:00:00",
        "0000:00:00 00:00:00",
        "2012:02:30 10:00:00",
        "",
        None,
        "    :  :     :  :  ",
        ["2012:12:14 22:33:28"],
        "9999:12:31 23:59:59",
        "2012:12:14 22:33:28.250",
    ],
)
@pytest.mark.parametrize("offset", ["+02:00", "-0530", "+99:00", "", None, b"+01:00\x00"])
def test_scanner_and_render_task_read_one_exif_date_the_same_way(raw: object, offset: object) -> None:
    scanned = capture_time.parse_exif_datetime(raw, offset, UTC)
    local = render_task.exif_datetime(raw)
    shift = render_task.exif_offset(offset)
    if local is None:
        assert scanned is None
        return
    assert scanned is not None
    import datetime as dt

    moment = dt.datetime.fromisoformat(local + (shift or "+00:00"))
    assert scanned.seconds == int(moment.timestamp())
    assert (scanned.source is capture_time.TimeSource.EXIF_OFFSET) == (shift is not None)


def test_one_exit_code_table() -> None:
    assert render_task.KIND_BY_EXIT is formats.KIND_BY_EXIT
    for status, kind in formats.KIND_BY_EXIT.items():
        line = json.dumps({"kind": kind, "message": "why"})
        assert verify.classify_exit(status, line)[0] is ErrorKind(kind)


EXIF_SUB_IFD = 0x8769


@pytest.mark.parametrize("where", ["Exif sub-IFD", "IFD0"])
@pytest.mark.parametrize(
    ("raw", "offset"),
    [
        ("2012:12:14 19:00:00", None),
        ("2012:12:14 19:00:00", "+02:00"),
        ("2012:12:14 19:00:00.123\x00", "-0530"),
        ("    :  :     ", None),
        ("0000:00:00 00:00:00", "+01:00"),
        ("9999:12:31 23:59:59", None),
    ],
)
def test_scanner_and_render_task_date_a_real_photo_alike(
    tmp_path: Path, where: str, raw: str, offset: str | None
) -> None:
    # The whole reading, not only the parse: which IFD the tags are looked up in is part of the rule
    # (some writers put DateTimeOriginal in IFD0). The render task runs as on a worker, from the shipped files.
    import datetime as dt

    from PIL import Image

    exif = Image.Exif()
    target = exif if where == "IFD0" else exif.get_ifd(EXIF_SUB_IFD)
    target[0x9003] = raw
    if offset is not None:
        target[0x9011] = offset
    photo = tmp_path / "dated.jpg"
    Image.new("RGB", (64, 48), (90, 90, 90)).save(photo, exif=exif)
    with photo.open("rb") as stream:
        scanned = capture_time.read_exif_time(stream, UTC)
    script = worker_copy(tmp_path / "worker")
    subprocess.run([sys.executable, str(script), str(photo), str(tmp_path / "out")], check=True, timeout=60)
    rendered = json.loads((tmp_path / "out" / "meta.json").read_text())["exif"]
    if rendered["datetime_original"] is None:
        assert scanned is None
        return
    assert scanned is not None, rendered
    moment = dt.datetime.fromisoformat(rendered["datetime_original"] + (rendered["offset_time_original"] or "+00:00"))
    assert scanned.seconds == int(moment.timestamp())
