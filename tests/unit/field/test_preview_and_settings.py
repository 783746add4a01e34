"""The preview is the render task's web version; capture time and day; settings and pairing refusals."""

from __future__ import annotations

import subprocess
import sys
import zoneinfo
from pathlib import Path

import pytest
from PIL import Image

from dp3 import render_task
from dp3.errors import ConfigError
from dp3.files import sha256_file
from dp3.settings import load_settings
from dp3_field import pairing
from dp3_field.preview import capture_time, render_preview
from dp3_field.settings import FieldSettings

UTC = zoneinfo.ZoneInfo("UTC")


def test_the_preview_is_the_web_version_a_worker_renders(corpus: Path, tmp_path: Path) -> None:
    source = corpus / "jpg" / "mobile" / "HMD_Nokia_8.3_5G.jpg"
    rendered = render_preview(source, tmp_path / "previews", mtime=0.0, zone=UTC)
    worker = render_task.render(str(source), str(tmp_path / "worker"))
    assert rendered.preview is not None
    assert rendered.preview.read_bytes() == (tmp_path / "worker" / render_task.WEB_NAME).read_bytes()
    assert (rendered.sha256, rendered.size) == sha256_file(source) == (worker["sha256"], worker["size"])
    assert rendered.captured_at == "2022-08-14T14:12:31+03:00" and rendered.day == "2022-08-14"
    with Image.open(rendered.preview) as image:
        assert image.width <= 640 and image.height <= 480
    assert [p.name for p in (tmp_path / "previews").iterdir()] == [f"{rendered.sha256}.jpg"]  # no scratch left


def test_a_file_that_is_not_a_photo_gets_no_preview_but_a_reason(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    rendered = render_preview(text, tmp_path / "previews", mtime=1_700_000_000.0, zone=UTC)
    assert rendered.preview is None and rendered.problem and "not a readable image" in rendered.problem
    assert rendered.sha256 == sha256_file(text)[0]


def test_capture_time_with_offset_in_the_site_zone_or_from_the_mtime() -> None:
    jerusalem = zoneinfo.ZoneInfo("Asia/Jerusalem")
    with_offset = {"datetime_original": "2012-12-14T23:30:00", "offset_time_original": "-05:00"}
    assert capture_time(with_offset, 0.0, jerusalem)[1:] == ("2012-12-14", "2012-12-14T23:30:00-05:00")
    local = capture_time({"datetime_original": "2012-12-14T23:30:00"}, 0.0, jerusalem)
    assert local == (1355520600.0, "2012-12-14", "2012-12-14T23:30:00+02:00")
    assert capture_time({}, 1355520600.0, jerusalem) == (1355520600.0, "2012-12-14", None)


def test_a_bad_setting_stops_with_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DP3_FIELD_CHUNK_BYTES", "12")
    with pytest.raises(ConfigError, match=r"^DP3_FIELD_CHUNK_BYTES: .*\(got '12'\)$"):
        load_settings(FieldSettings)


def test_a_pairing_line_with_a_typo_is_refused_without_echoing_the_secret() -> None:
    secret = "dp3d_0123456789ab_" + "x" * 42
    with pytest.raises(pairing.PairingError) as refused:
        pairing.check("https://head.example/", secret)
    assert secret not in str(refused.value) and "dp3d_" in str(refused.value)
    with pytest.raises(pairing.PairingError, match="https://"):
        pairing.check("head.example", "dp3d_0123456789ab_" + "x" * 43)


def test_the_agent_runs_without_the_dispatcher_or_the_broker_client() -> None:
    probe = (
        "import sys, dp3_field.agent, dp3_field.cli, dp3_field.status\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('dp3_dispatcher', 'dp3_scanner', 'pika', 'pymongo', 'cffi', 'watchdog')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
