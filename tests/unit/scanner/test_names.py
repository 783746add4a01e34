from __future__ import annotations

import pytest

from dp3_scanner.names import IgnoreReason, name_ignore_reason, owner_of, path_ignore_reason, relative_parts


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (".DS_Store", IgnoreReason.HIDDEN),
        (".dropbox.cache", IgnoreReason.HIDDEN),
        (".dp3-tmp-abc-IMG.jpg", IgnoreReason.HIDDEN),
        ("._IMG_0001.JPG", IgnoreReason.HIDDEN),
        ("Thumbs.db", IgnoreReason.HIDDEN),
        ("desktop.ini", IgnoreReason.HIDDEN),
        ("~$report.docx", IgnoreReason.TEMPORARY),
        ("IMG_1.JPG~", IgnoreReason.TEMPORARY),
        ("IMG_1.JPG.partial", IgnoreReason.TEMPORARY),
        ("IMG_1.jpg.PART", IgnoreReason.TEMPORARY),
        ("IMG_1.jpg.crdownload", IgnoreReason.TEMPORARY),
        ("IMG_1.jpg.tmp", IgnoreReason.TEMPORARY),
        ("IMG_1.jpg.!sync", IgnoreReason.TEMPORARY),
        ("IMG_1.jpg.filepart", IgnoreReason.TEMPORARY),
        ("DSC00372.JPG", None),
        ("-leading-dash.jpg", None),
        ("REEDER-PHILIP 1355825903 (2)2009.YAVNE.AREA.PROPOSED.INSERT.JPG", None),
        ("tmp-but-not-temporary.jpg", None),
    ],
)
def test_name_rules(name: str, reason: IgnoreReason | None) -> None:
    assert name_ignore_reason(name) == reason


def test_a_file_inside_a_hidden_folder_is_hidden() -> None:
    assert path_ignore_reason(("ANNA-LIND", ".dropbox.cache", "IMG.jpg")) == IgnoreReason.HIDDEN
    assert path_ignore_reason(("ANNA-LIND", "day 1", "IMG.jpg")) is None


def test_owner_is_the_first_folder_and_the_root_has_none() -> None:
    assert owner_of(("JAEGER-NICHOLAS", "DSC00372.JPG")) == "JAEGER-NICHOLAS"
    assert owner_of(("JAEGER-NICHOLAS", "2012", "Israel", "DSC00372.JPG")) == "JAEGER-NICHOLAS"
    assert owner_of(("DSC00372.JPG",)) is None


def test_relative_parts_stay_below_the_inbox() -> None:
    assert relative_parts("/in", "/in/A-B/x.jpg") == ("A-B", "x.jpg")
    assert relative_parts("/in/", "/in/A-B/x.jpg") == ("A-B", "x.jpg")
    assert relative_parts("/in", "/inbox2/A-B/x.jpg") is None
    assert relative_parts("/in", "/in") is None
    assert relative_parts("/in", "/in/A-B/../../etc/passwd") is None
