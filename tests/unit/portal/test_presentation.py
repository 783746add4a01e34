"""Pure presentation helpers: GPS wherever the render put it, advice, the dispatcher's worker count."""

from __future__ import annotations

import pytest

from dp3_portal.presentation import advice, can_retry, flat_metadata, gps, map_link
from dp3_portal.workers_probe import parse_workers


def test_gps_is_found_flat_or_nested_and_checked() -> None:
    assert gps({"gps": {"latitude": 43.4, "longitude": 11.8}}) == (43.4, 11.8)
    assert gps({"latitude": -33.9, "longitude": 151.2}) == (-33.9, 151.2)
    assert gps({"exif": {"gps": {"lat": 1, "lon": 2}}}) == (1.0, 2.0)
    assert gps({"gps": {"latitude": 143.4, "longitude": 11.8}}) is None
    assert gps({"gps": {"latitude": True, "longitude": 11.8}}) is None
    assert gps(None) is None
    assert "mlat=43.400000&mlon=11.800000" in map_link((43.4, 11.8))


def test_failed_photos_get_advice_and_others_none() -> None:
    assert "Export it again" in advice({"failed": True, "error_kind": "corrupt_image"})
    assert advice({"failed": True, "error_kind": "something_new"}) == "Report the photo id to an operator."
    assert advice({"failed": False, "error_kind": ""}) == ""


def test_metadata_rows_are_flattened_and_sorted() -> None:
    assert flat_metadata({"b": 1, "a": {"y": None, "x": "2"}}) == [("a.x", "2"), ("b", "1")]


def test_workers_connected_is_read_from_the_dispatcher_metrics() -> None:
    text = (
        "# HELP dp3_dispatcher_workers_connected x\n"
        "dp3_dispatcher_workers_connected_total 9\n"
        "dp3_dispatcher_workers_connected 3.0\n"
    )
    assert parse_workers(text) == 3
    assert parse_workers("nothing here\n") is None


def test_store_health_is_read_from_the_archiver_metrics() -> None:
    from dp3_portal.store_health_probe import parse_stores

    text = (
        "# HELP dp3_archiver_store_up x\n"
        'dp3_archiver_store_up{store="/data/a"} 0.0\n'
        'dp3_archiver_store_up{store="/data/b"} 1.0\n'
        'dp3_archiver_store_problem_since_seconds{store="/data/a"} 1000.0\n'
        'dp3_archiver_store_problem_until_seconds{store="/data/a"} 0.0\n'
        'dp3_archiver_store_errors_total{kind="read_only",store="/data/a"} 7.0\n'
        'dp3_archiver_store_errors_created{kind="read_only",store="/data/a"} 9.9e8\n'
        'dp3_archiver_store_free_bytes{store="/data/b"} 5.0e9\n'
    )
    a, b = parse_stores(text)
    assert (a.store, a.in_trouble, a.errors, a.duration(1030.0)) == ("/data/a", True, {"read_only": 7}, 30.0)
    assert (b.store, b.in_trouble, b.errors, b.duration(1030.0)) == ("/data/b", False, {}, None)
    a.until = 1012.0
    assert a.duration(5000.0) == 12.0


@pytest.mark.parametrize(
    ("photo", "retryable"),
    [
        ({"status": "Failed", "failed": True, "error": {"stage": "dispatcher", "kind": "corrupt_image"}}, True),
        ({"status": "Failed", "failed": True, "error": {"stage": "archive", "kind": "archive_unavailable"}}, True),
        # A render failure stays retryable once archived and collected (the stores hold its original).
        ({"status": "Collected", "failed": True, "error": {"stage": "dispatcher", "kind": "render_timeout"}}, True),
        ({"status": "Archived", "failed": True, "error": {"stage": "dispatcher", "kind": "too_large"}}, True),
        ({"status": "Collected", "failed": False, "error": None}, False),
        ({"status": "Processed", "failed": False, "error": None}, False),
        ({"status": "Collected", "failed": True, "error": {"stage": "scanner", "kind": "no_owner"}}, False),
    ],
)
def test_which_photos_can_be_retried(photo: dict[str, object], retryable: bool) -> None:
    assert can_retry(photo) is retryable
