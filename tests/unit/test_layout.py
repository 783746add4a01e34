from __future__ import annotations

import zoneinfo
from pathlib import Path

import pytest

from dp3.layout import date_folder, sidecar_name, staging_dir, thumbnail_name, web_name


def test_artifact_names_keep_owners_apart() -> None:
    assert (
        thumbnail_name("JAEGER-NICHOLAS_1355517208_DSC00372.JPG") == "JAEGER-NICHOLAS_1355517208_DSC00372_THUMBNAIL.jpg"
    )
    assert web_name("REEDER-PHILIP_1355517208_DSC00372.JPG") == "REEDER-PHILIP_1355517208_DSC00372_WEB.jpg"
    assert sidecar_name("A-B_1_x.jpg") == "A-B_1_x.jpg.json"


def test_date_folder_uses_the_site_zone() -> None:
    # 2012-12-14 22:30 UTC is already the 15th in Israel.
    moment = 1355524200
    assert date_folder(moment, zoneinfo.ZoneInfo("UTC")) == "2012-12-14"
    assert date_folder(moment, zoneinfo.ZoneInfo("Asia/Jerusalem")) == "2012-12-15"


def test_staging_dir_refuses_paths() -> None:
    assert staging_dir(Path("/s"), "A-B_1_x.jpg") == Path("/s/A-B_1_x.jpg")
    for bad in ("a/b", "..", ""):
        with pytest.raises(ValueError):
            staging_dir(Path("/s"), bad)
