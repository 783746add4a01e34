"""The burst timeline: ramp, steady part and tail read apart from the journal."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.timeline import burst_timeline, busy_by_interval, cpu_ticks, describe_busy

DROP = 1000.0


def entry(photo: int, status: str, moment: float) -> dict[str, Any]:
    return {"id": f"id{photo}", "status": status, "path": f"/inbox/A-B/p{photo}.jpg", "at": DROP + moment}


def journal(collected_at: list[float]) -> list[dict[str, Any]]:
    entries = []
    for photo, moment in enumerate(collected_at):
        entries += [entry(photo, "Detected", 1.0 + photo * 0.01), entry(photo, "Processed", moment - 0.5)]
        entries.append(entry(photo, "Collected", moment))
    return entries


def at(item: dict[str, Any]) -> float:
    return float(item["at"])


def test_a_slow_ramp_and_tail_do_not_lower_the_steady_rate() -> None:
    # 100 photos: the first 10 collected by 5 s (a long ramp), then one every 0.1 s, the last 10 slowly.
    moments = [0.5 * (n + 1) for n in range(10)] + [5 + 0.1 * n for n in range(1, 81)] + [13 + n for n in range(10)]
    timeline = burst_timeline(journal(moments), {f"p{n}.jpg" for n in range(100)}, DROP, at)
    assert timeline.first_detected == pytest.approx(1.0)
    assert timeline.first_collected == pytest.approx(0.5)
    assert timeline.steady_from == pytest.approx(5.0)  # the 10th photo
    assert timeline.steady_to == pytest.approx(13.0)  # the 90th
    assert timeline.steady_rate == pytest.approx(80 / 8.0)
    assert timeline.last_collected == pytest.approx(22.0)
    assert 100 / timeline.last_collected < timeline.steady_rate / 2  # the whole burst's rate reads far lower


def test_a_replayed_collected_counts_at_its_first_time_and_other_photos_are_left_out() -> None:
    entries = [*journal([1.0, 2.0]), entry(0, "Collected", 9.0), entry(7, "Collected", 0.1)]
    timeline = burst_timeline(entries, {"p0.jpg", "p1.jpg"}, DROP, at)
    assert (timeline.first_collected, timeline.last_collected, timeline.photos) == (1.0, 2.0, 2)


def test_a_photo_not_yet_collected_is_an_error_not_a_shorter_burst() -> None:
    entries = [e for e in journal([1.0, 2.0]) if not (e["id"] == "id1" and e["status"] == "Collected")]
    with pytest.raises(ValueError, match="1 of 2 photos are Collected"):
        burst_timeline(entries, {"p0.jpg", "p1.jpg"}, DROP, at)


def test_describe_states_the_steady_rate_against_the_raw_render() -> None:
    timeline = burst_timeline(journal([0.1 * (n + 1) for n in range(20)]), {f"p{n}.jpg" for n in range(20)}, DROP, at)
    lines = timeline.describe(raw_rate=20.0)
    assert "steady part (10%-90% collected): 10.00 photos/s, 0.50x the raw render" in lines[1]


STAT = """cpu  10 0 10 100 0 0 0 0 0 0
cpu0 5 0 5 50 0 0 0 0 0 0
cpu1 {busy} 0 0 {idle} 2 0 0 0 0 0
intr 1 2 3
"""


def test_cpu_ticks_reads_each_core_and_counts_iowait_as_idle() -> None:
    ticks = cpu_ticks(STAT.format(busy=30, idle=70))
    assert ticks == {0: (10, 60), 1: (30, 102)}


def test_busy_by_interval_is_the_busy_share_between_samples() -> None:
    samples = [(0.0, cpu_ticks(STAT.format(busy=0, idle=0))), (1.0, cpu_ticks(STAT.format(busy=75, idle=25)))]
    shares = busy_by_interval(samples, 1)
    assert len(shares) == 1
    assert shares[0] == (1.0, 0.75)
    assert describe_busy(shares, 0.0, "worker core 1").endswith("1:75")
