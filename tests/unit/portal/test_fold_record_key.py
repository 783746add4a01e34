"""Which catalog record an event folds into: its id, unless that record holds other bytes (pure)."""

from __future__ import annotations

import pytest

from dp3.events import disambiguated_id
from dp3_portal.fold import record_key

ID = "ANNA-SMITH_1355517208_DSC00372.JPG"
A, B = "a" * 64, "b" * 64


@pytest.mark.parametrize(
    ("sha256", "held", "expected"),
    [
        (A, {}, ID),  # nobody holds it
        (A, {ID: A}, ID),  # its own record
        (A, {ID: ""}, ID),  # a record without bytes yet (a Failed before hashing)
        (None, {ID: A}, ID),  # an event without bytes stays with its id
        (B, {ID: A}, disambiguated_id(ID, B)),  # other bytes hold the id
        (B, {ID: A, disambiguated_id(ID, B): B}, disambiguated_id(ID, B)),  # and it has its record already
        (B, {ID: A, disambiguated_id(ID, B): "c" * 64}, disambiguated_id(ID, B, 64)),  # 12 digits clash too
    ],
)
def test_record_key(sha256: str | None, held: dict[str, str], expected: str) -> None:
    assert record_key(ID, sha256, held) == expected
