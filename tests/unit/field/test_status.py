"""What a photographer reads (dp3_field.status.summarize): plain words from counts and notes."""

from __future__ import annotations

import datetime as dt

from dp3_field.queue import Counts
from dp3_field.status import as_html, as_text, summarize

NOW = dt.datetime(2026, 12, 1, 10, 40).timestamp()
COUNTS = Counts(
    previews_sent=48,
    previews_waiting=2,
    originals_sent=10,
    originals_waiting=40,
    bytes_to_go=200_000_000,
    archived=9,
    freed=0,
    refused=0,
)


def running(**notes: object) -> dict[str, object]:
    return {"rate": {"bytes_per_second": 62_500.0, "at": NOW - 1}, **notes}


def test_counts_rate_and_time_left_in_plain_words() -> None:
    receipt = {"name": "DSC00372.JPG", "archived": True, "state": "collected", "at": NOW - 60}
    summary = summarize(COUNTS, running(last_receipt=receipt), [], NOW)
    text = as_text(summary)
    assert "Previews: 48 sent, 2 waiting" in text
    assert "Originals: 10 sent, 40 waiting, 200.0 MB to go" in text
    assert "Rate now: 500 kbit/s, about 53 min left" in text
    assert "Last receipt: DSC00372.JPG archived in every store, at 10:39" in text
    assert summary.problems == []
    current = {"name": "DSC00373.JPG", "offset": 2_100_000, "size": 5_000_000}
    assert "Now sending DSC00373.JPG: 2.1 of 5.0 MB" in as_text(summarize(COUNTS, running(current=current), [], NOW))


def test_an_unreachable_head_node_is_said_with_since_when_and_how_often() -> None:
    since = dt.datetime(2026, 12, 1, 10, 32).timestamp()
    link = {"ok": False, "since": since, "retry_seconds": 60.0, "retry_cap": 60.0, "detail": "ConnectTimeout"}
    summary = summarize(COUNTS, running(link=link), [], NOW)
    assert summary.problems == ["head node unreachable since 10:32, trying again every minute"]
    early = {**link, "retry_seconds": 4.0}
    assert summarize(COUNTS, running(link=early), [], NOW).problems == [
        "head node unreachable since 10:32, trying again in 4 s"
    ]


def test_a_stopped_agent_and_a_photo_problem_are_said() -> None:
    stale = {"rate": {"bytes_per_second": 62_500.0, "at": NOW - 3600}}
    summary = summarize(COUNTS, stale, [("notes.txt", "not sent: not a photo")], NOW)
    assert summary.problems[0].startswith("dp3-field is not running")
    assert "notes.txt: not sent: not a photo" in summary.problems
    assert "Rate now: 0 kbit/s" in as_text(summary)  # no time left claimed when nothing moves


def test_the_page_escapes_names() -> None:
    page = as_html(summarize(COUNTS, running(), [("<b>.jpg", "x")], NOW))
    assert "&lt;b&gt;.jpg" in page and "<b>.jpg" not in page
