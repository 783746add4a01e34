"""Pure: every gallery page is one range on one key, sorted by that key."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from dp3_portal.catalog import PhotoFilter, decode_cursor, encode_cursor, photo_query
from dp3_portal.fold import KEY_END, KEY_SEPARATOR, sort_key

UTC = zoneinfo.ZoneInfo("UTC")
JERUSALEM = zoneinfo.ZoneInfo("Asia/Jerusalem")
S = KEY_SEPARATOR


def test_no_filter_pages_on_sort_key() -> None:
    assert photo_query(PhotoFilter(), UTC) == ({"sort_key": {"$gte": "", "$lt": KEY_END}}, "sort_key")


def test_photographer_date_range_and_cursor_are_one_range_on_the_owner_key() -> None:
    flt = PhotoFilter(owner="A-B", date_from=dt.date(2012, 12, 14), date_to=dt.date(2012, 12, 15))
    query, key = photo_query(flt, UTC)
    assert key == "k_owner"
    assert query == {"k_owner": {"$gte": f"A-B{S}001355443200", "$lt": f"A-B{S}001355616000"}}
    cursor = sort_key(1_355_517_208, "A-B_1355517208_x.jpg")
    query, _ = photo_query(flt, UTC, after=cursor)
    assert query["k_owner"]["$lt"] == f"A-B{S}{cursor}"


def test_the_date_range_is_in_the_site_time_zone() -> None:
    query, _ = photo_query(PhotoFilter(date_from=dt.date(2012, 12, 14)), JERUSALEM)
    assert query["sort_key"]["$gte"] == "001355436000"  # midnight in Jerusalem is 22:00 UTC the day before


def test_a_second_filter_is_a_prefix_range_inside_the_first() -> None:
    query, key = photo_query(PhotoFilter(owner="A-B", model="D70", status="failed", text="dsc.0"), UTC)
    assert key == "k_owner"
    assert query["k_model"] == {"$gte": f"D70{S}", "$lt": f"D70{S}{KEY_END}"}
    assert query["k_failed"] == {"$gte": f"1{S}", "$lt": f"1{S}{KEY_END}"}
    assert query["name"] == {"$regex": r"dsc\.0"}


def test_cursor_round_trip() -> None:
    key = sort_key(5, "X_5_ü name (1).jpg")
    assert decode_cursor(encode_cursor(key)) == key
