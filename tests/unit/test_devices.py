"""The device token format and its checks (pure parts of dp3.devices)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from dp3 import devices
from dp3.devices import DeviceRecord, MalformedToken

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def test_a_new_token_has_the_contract_format_and_parses_back() -> None:
    token = devices.new_token("0123456789ab")
    assert re.fullmatch(r"dp3d_0123456789ab_[A-Za-z0-9_-]{43}", token)
    assert devices.parse_token(token).device_id == "0123456789ab"


def test_new_tokens_differ_and_a_fresh_id_is_twelve_hex() -> None:
    first, second = devices.new_token(), devices.new_token()
    assert first != second
    assert re.fullmatch(r"[0-9a-f]{12}", devices.parse_token(first).device_id)


def test_a_secret_containing_underscores_still_parses() -> None:
    token = "dp3d_0123456789ab_" + "_" * 43
    assert devices.parse_token(token).device_id == "0123456789ab"


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("", "starts with dp3d_"),
        ("Bearer x", "starts with dp3d_"),
        ("dp3x_0123456789ab_" + "a" * 43, "starts with dp3d_"),
        ("dp3d_0123456789AB_" + "a" * 43, "device id"),
        ("dp3d_0123456789a_" + "a" * 43, "device id"),
        ("dp3d_0123456789ab_" + "a" * 42, "secret"),
        ("dp3d_0123456789ab_" + "a" * 42 + "=", "secret"),
    ],
)
def test_a_malformed_token_says_which_part_is_wrong_without_echoing_it(token: str, says: str) -> None:
    with pytest.raises(MalformedToken, match=says) as caught:
        devices.parse_token(token)
    if token:
        assert token not in str(caught.value)


def test_a_device_id_must_be_twelve_hex_to_mint_a_token() -> None:
    with pytest.raises(ValueError, match="12 lower-case hex"):
        devices.new_token("xyz")


def test_the_stored_hash_matches_only_its_own_token() -> None:
    token = devices.new_token()
    stored = devices.token_sha256(token)
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert devices.token_matches(token, stored)
    assert not devices.token_matches(devices.new_token(), stored)
    assert not devices.token_matches(token, stored.upper())


def test_last_seen_is_written_at_most_once_a_minute() -> None:
    assert devices.should_touch(None, NOW)
    assert not devices.should_touch(NOW - dt.timedelta(seconds=59), NOW)
    assert devices.should_touch(NOW - dt.timedelta(seconds=60), NOW)
    # pymongo hands back naive UTC datetimes.
    assert not devices.should_touch((NOW - dt.timedelta(seconds=10)).replace(tzinfo=None), NOW)


def test_a_record_round_trips_through_its_mongo_document() -> None:
    record = DeviceRecord(
        id="0123456789ab", owner="ANN-LEE", label="Ann's laptop", token_sha256="0" * 64, created_at=NOW
    )
    document = record.to_document()
    assert document["_id"] == "0123456789ab" and document["revoked_at"] is None
    assert DeviceRecord.model_validate(document) == record
    assert not record.revoked
    assert DeviceRecord.model_validate({**document, "revoked_at": NOW}).revoked
    assert "0" * 64 not in repr(record)
