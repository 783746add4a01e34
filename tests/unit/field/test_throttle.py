"""The bandwidth cap (token bucket) and the rate meter: pure, on a given clock."""

from __future__ import annotations

import pytest

from dp3_field.throttle import MIN_BURST_BYTES, RateMeter, TokenBucket, kbps_to_bytes_per_second, seconds_left


def test_kbps_are_kilobits() -> None:
    assert kbps_to_bytes_per_second(500) == 62_500.0


def test_a_long_send_keeps_to_the_cap() -> None:
    rate = kbps_to_bytes_per_second(500)
    bucket = TokenBucket(rate, now=0.0)
    now = 0.0
    sent = 0
    while sent < 5_000_000:
        now += bucket.reserve(16_384, now)
        sent += 16_384
    # Only the first burst is free: 5 MB at 62.5 KB/s take 80 s.
    assert now == pytest.approx((sent - bucket.burst) / rate, rel=1e-6)
    assert sent / now <= rate * 1.01


def test_an_idle_link_builds_up_only_a_small_burst() -> None:
    bucket = TokenBucket(62_500.0, now=0.0)
    assert bucket.burst == MIN_BURST_BYTES  # a quarter second of 62.5 KB/s is below one write
    assert bucket.reserve(MIN_BURST_BYTES, now=3600.0) == 0.0  # an hour idle buys no more than the burst
    assert bucket.reserve(62_500, now=3600.0) == pytest.approx(1.0)


def test_no_cap_never_waits() -> None:
    bucket = TokenBucket(0, now=0.0)
    assert bucket.reserve(10**9, now=0.0) == 0.0


def test_a_negative_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="rate cap"):
        TokenBucket(-1, now=0.0)


def test_the_meter_reports_the_recent_rate_and_the_time_left() -> None:
    meter = RateMeter(window=10.0)
    for second in range(30):
        meter.add(62_500, now=float(second))
    assert meter.rate(now=29.0) == pytest.approx(62_500 * 11 / 10)
    assert meter.rate(now=100.0) == 0.0
    assert seconds_left(5_000_000, 62_500) == 80.0
    assert seconds_left(5_000_000, 0) is None
    assert seconds_left(0, 0) == 0.0
