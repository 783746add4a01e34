"""What a photographer reads: ``dp3-field status`` and the local page at http://127.0.0.1:<port>/.

:func:`summarize` is pure (the queue's counts and notes in, plain sentences
out); the command prints them and the page shows them, refreshed every few
seconds. Both read the queue's SQLite file, so the status works whether or
not ``run`` is running (it then says so). Only 127.0.0.1 is served: the
page is for the person at this laptop, not for the dig site's Wi-Fi.
"""

from __future__ import annotations

import datetime as dt
import html
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dp3_field.queue import Counts, Queue
from dp3_field.throttle import seconds_left

MB = 1_000_000
RATE_FRESH_SECONDS = 30.0
"""A rate note older than this is from an agent that is not running now."""


@dataclass(frozen=True)
class Summary:
    headline: str
    lines: list[str]
    problems: list[str]


def _clock(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment).strftime("%H:%M")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds // 3600} h {round(seconds % 3600 / 60)} min"


def _every(seconds: float) -> str:
    return "every minute" if round(seconds) == 60 else f"every {_duration(seconds)}"


def summarize(counts: Counts, notes: dict[str, Any], problems: list[tuple[str, str]], now: float) -> Summary:
    """The status in plain words. Pure."""
    rate_note = notes.get("rate") or {}
    running = bool(rate_note) and now - float(rate_note.get("at", 0)) < RATE_FRESH_SECONDS
    rate = float(rate_note.get("bytes_per_second", 0.0)) if running else 0.0
    link = notes.get("link") or {}
    said: list[str] = []
    if not running:
        said.append("dp3-field is not running: start it with 'dp3-field run <folder>'")
    elif not link.get("ok", True):
        what = link.get("plain") or "head node unreachable"
        since = f" since {_clock(float(link['since']))}" if link.get("since") else ""
        retry = float(link.get("retry_seconds") or 0)
        cap = float(link.get("retry_cap") or 60)
        again = _every(cap) if retry >= cap else f"in {_duration(retry)}"
        said.append(f"{what}{since}, trying again {again}")
    said += [f"{name}: {problem}" for name, problem in problems]

    if counts.previews_waiting == 0 and counts.originals_waiting == 0:
        headline = "All photos sent." if counts.originals_sent else "Nothing to send yet."
    else:
        headline = f"Sending: {counts.previews_waiting + counts.originals_waiting} to go."
    left = seconds_left(counts.bytes_to_go, rate)
    lines = [
        f"Previews: {counts.previews_sent} sent, {counts.previews_waiting} waiting",
        f"Originals: {counts.originals_sent} sent, {counts.originals_waiting} waiting, "
        f"{counts.bytes_to_go / MB:.1f} MB to go",
        f"Rate now: {rate * 8 / 1000:.0f} kbit/s"
        + ("" if left is None or counts.bytes_to_go == 0 else f", about {_duration(left)} left"),
        f"Archived on the head node: {counts.archived}" + (f", freed here: {counts.freed}" if counts.freed else ""),
    ]
    current = notes.get("current") or {}
    if running and current and counts.originals_waiting and int(current["offset"]) < int(current["size"]):
        lines.insert(
            2, f"Now sending {current['name']}: {int(current['offset']) / MB:.1f} of {int(current['size']) / MB:.1f} MB"
        )
    receipt = notes.get("last_receipt")
    if receipt:
        verdict = "archived in every store" if receipt.get("archived") else f"not archived yet ({receipt.get('state')})"
        lines.append(f"Last receipt: {receipt.get('name')} {verdict}, at {_clock(float(receipt['at']))}")
    return Summary(headline, lines, said)


def read_summary(queue_path: Path, now: float) -> Summary:
    if not queue_path.exists():
        return Summary("Nothing to send yet.", [], ["dp3-field has not run on this laptop yet"])
    queue = Queue(queue_path, readonly=True)
    try:
        return summarize(queue.counts(), queue.notes(), queue.problems(), now)
    finally:
        queue.close()


def as_text(summary: Summary) -> str:
    out = [summary.headline, *summary.lines]
    if summary.problems:
        out += ["", "Problems:", *(f"  - {problem}" for problem in summary.problems)]
    return "\n".join(out) + "\n"


def as_html(summary: Summary) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in summary.lines)
    problems = "".join(f"<li>{html.escape(problem)}</li>" for problem in summary.problems)
    problem_block = f'<h2>Problems</h2><ul class="problems">{problems}</ul>' if problems else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="5"><title>DP3 field uploads</title>'
        "<style>body{font:1.3em sans-serif;margin:2em}.problems{color:#a40}</style></head>"
        f"<body><h1>{html.escape(summary.headline)}</h1><ul>{items}</ul>{problem_block}</body></html>"
    )


class StatusPage:
    """The local page, served from a thread of ``run``."""

    def __init__(self, queue_path: Path, port: int, clock: Any) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                summary = read_summary(outer.queue_path, outer.clock())
                if self.path.startswith("/status.txt"):
                    body, kind = as_text(summary).encode(), "text/plain; charset=utf-8"
                elif self.path in ("/", "/index.html"):
                    body, kind = as_html(summary).encode(), "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- http.server's name
                pass

        self.queue_path = queue_path
        self.clock = clock
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, name="status-page", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
