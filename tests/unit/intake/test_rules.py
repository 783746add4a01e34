"""The intake's pure decisions (dp3_intake.rules): declarations, names, placement, expiry, progress."""

from __future__ import annotations

import pytest

from dp3_intake import rules
from dp3_intake.errors import IntakeError
from dp3_intake.rules import Placement

SHA = "ab" * 32
GOOD = {"owner": "ANN-LEE", "filename": "DSC00372.JPG", "sha256": SHA}


def refused(metadata: dict[str, str], length: int | None = 1000, owner: str = "ANN-LEE") -> IntakeError:
    with pytest.raises(IntakeError) as caught:
        rules.declared_upload(metadata, length, owner, max_bytes=10_000)
    return caught.value


def test_a_good_declaration_is_taken_as_is() -> None:
    declared = rules.declared_upload({**GOOD, "captured_at": "2012-12-14T20:33:28"}, 1000, "ANN-LEE", 10_000)
    assert (declared.owner, declared.filename, declared.sha256, declared.size) == ("ANN-LEE", "DSC00372.JPG", SHA, 1000)
    assert declared.captured_at == "2012-12-14T20:33:28"


@pytest.mark.parametrize(
    ("metadata", "length", "status", "code"),
    [
        (GOOD, None, 400, "no_length"),
        ({"owner": "ANN-LEE", "filename": "x.jpg"}, 10, 400, "bad_metadata"),
        ({**GOOD, "owner": "BOB-RAY"}, 10, 403, "wrong_owner"),
        ({**GOOD, "sha256": SHA.upper()}, 10, 400, "bad_sha256"),
        ({**GOOD, "sha256": SHA[:-1]}, 10, 400, "bad_sha256"),
        ({**GOOD, "captured_at": "yesterday"}, 10, 400, "bad_metadata"),
        (GOOD, 10_001, 413, "too_large"),
    ],
)
def test_each_bad_declaration_has_its_code(
    metadata: dict[str, str], length: int | None, status: int, code: str
) -> None:
    error = refused(metadata, length)
    assert (error.status, error.code) == (status, code) and error.detail


@pytest.mark.parametrize(
    "name",
    [
        "a/b.jpg",
        "a\\b.jpg",
        "..",
        ".",
        "x..jpg/..",
        "../x.jpg",
        "nul\0.jpg",
        "tab\t.jpg",
        ".DS_Store",
        "~$lock.jpg",
        "backup.jpg~",
        "IMG.jpg.part",
        "Thumbs.db",
        "x" * 252 + ".jpg",
    ],
)
def test_names_the_inbox_cannot_hold_or_the_scanner_ignores_are_refused(name: str) -> None:
    assert rules.name_problem(name) is not None
    assert refused({**GOOD, "filename": name}).code == "bad_name"


def test_an_empty_name_is_a_missing_one() -> None:
    assert rules.name_problem("") is not None
    assert refused({**GOOD, "filename": ""}).code == "bad_metadata"


@pytest.mark.parametrize("name", ["DSC00372.JPG", "café 1.jpeg", "trench B (2).heic", "a.b.c.jpg", "x" * 251 + ".jpg"])
def test_ordinary_photo_names_pass(name: str) -> None:
    assert rules.name_problem(name) is None


def test_what_a_name_holds_decides_the_placement() -> None:
    assert rules.placement(None, SHA) is Placement.WRITE
    assert rules.placement(SHA, SHA) is Placement.ALREADY_THERE
    assert rules.placement("cd" * 32, SHA) is Placement.TAKEN
    assert rules.tagged_name("DSC00372.JPG", SHA) == f"DSC00372~{SHA[:12]}.JPG"


def test_an_upload_expires_after_the_days_without_a_byte() -> None:
    day = 86400.0
    assert not rules.is_expired(0.0, 7 * day, 7)
    assert rules.is_expired(0.0, 7 * day + 1, 7)
    assert not rules.is_expired(0.0, 1.5 * day, 2)


def test_progress_is_throttled_but_completion_always_announced() -> None:
    assert rules.progress_due(None, 100.0, 5.0, complete=False)
    assert not rules.progress_due(98.0, 100.0, 5.0, complete=False)
    assert rules.progress_due(95.0, 100.0, 5.0, complete=False)
    assert rules.progress_due(99.9, 100.0, 5.0, complete=True)


def test_a_receipt_question_names_each_photo_once_in_the_order_asked() -> None:
    other = "cd" * 32
    assert rules.receipt_question({"sha256": [other, SHA, other]}) == [other, SHA]
    assert rules.receipt_question({"sha256": []}) == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (None, 400, "bad_request"),
        ([SHA], 400, "bad_request"),
        ({"sha": [SHA]}, 400, "bad_request"),
        ({"sha256": SHA}, 400, "bad_request"),
        ({"sha256": [SHA, 7]}, 400, "bad_request"),
        ({"sha256": [SHA.upper()]}, 400, "bad_sha256"),
        ({"sha256": [SHA] * (rules.RECEIPTS_PER_REQUEST + 1)}, 413, "too_large"),
    ],
)
def test_a_bad_receipt_question_has_its_code(body: object, status: int, code: str) -> None:
    with pytest.raises(IntakeError) as caught:
        rules.receipt_question(body)
    assert (caught.value.status, caught.value.code) == (status, code)
