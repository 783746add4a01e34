"""When a burst's photos reached each status: the ramp, the steady part and the tail, apart.

A burst's rate (photos over first drop to last ``Collected``) mixes three
things: the ramp (the scanner's stability window, the first task's start),
the steady part (how fast the bottleneck core turns photos over), and the tail
(the last batch rendered while the other workers have nothing left). Only the
steady part is the cores' rate; the ramp and the tail are waits a longer
burst dilutes. Pure: journal entries in, times out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STEADY_FROM, STEADY_TO = 0.1, 0.9  # the shares of the burst collected between which the rate is steady


@dataclass(frozen=True)
class Timeline:
    """Seconds after the first drop."""

    first_detected: float
    first_processed: float
    first_collected: float
    steady_from: float  # when STEADY_FROM of the photos were collected
    steady_to: float  # when STEADY_TO of them were
    last_collected: float
    photos: int

    @property
    def steady_rate(self) -> float:
        """Photos per second collected between the two shares: the burst less its ramp and tail."""
        span = self.steady_to - self.steady_from
        return (STEADY_TO - STEADY_FROM) * self.photos / span if span > 0 else float("inf")

    def describe(self, raw_rate: float) -> list[str]:
        ramp, tail = self.steady_from, self.last_collected - self.steady_to
        return [
            f"burst timeline (s after the first drop): first Detected {self.first_detected:.2f}, "
            f"first Processed {self.first_processed:.2f}, first Collected {self.first_collected:.2f}, "
            f"{STEADY_FROM:.0%} collected {self.steady_from:.2f}, {STEADY_TO:.0%} {self.steady_to:.2f}, "
            f"last {self.last_collected:.2f}",
            f"  steady part ({STEADY_FROM:.0%}-{STEADY_TO:.0%} collected): {self.steady_rate:.2f} photos/s, "
            f"{self.steady_rate / raw_rate:.2f}x the raw render; ramp to {STEADY_FROM:.0%} {ramp:.2f} s, "
            f"tail after {STEADY_TO:.0%} {tail:.2f} s",
        ]


def burst_timeline(
    entries: Iterable[dict[str, Any]], names: set[str], first_drop: float, at: Callable[[dict[str, Any]], float]
) -> Timeline:
    """The timeline of the photos named ``names`` (file names), from the journal's ``entries``.

    ``at`` reads an entry's time (epoch seconds). Each photo counts once per
    status, at its first entry of it (a replayed event changes nothing).
    """
    first: dict[str, dict[str, float]] = {}
    for entry in entries:
        if Path(entry["path"]).name in names:
            seen = first.setdefault(entry["status"], {})
            moment = at(entry) - first_drop
            seen[entry["id"]] = min(moment, seen.get(entry["id"], moment))
    collected = sorted(first.get("Collected", {}).values())
    if len(collected) < len(names) or not names:
        raise ValueError(f"{len(collected)} of {len(names)} photos are Collected in the journal: no timeline")

    def share(fraction: float) -> float:
        return collected[max(0, round(fraction * len(collected)) - 1)]

    return Timeline(
        first_detected=min(first["Detected"].values()),
        first_processed=min(first["Processed"].values()),
        first_collected=collected[0],
        steady_from=share(STEADY_FROM),
        steady_to=share(STEADY_TO),
        last_collected=collected[-1],
        photos=len(collected),
    )


def cpu_ticks(proc_stat: str) -> dict[int, tuple[int, int]]:
    """(busy, total) clock ticks so far of each core, from the text of ``/proc/stat``."""
    ticks: dict[int, tuple[int, int]] = {}
    for line in proc_stat.splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit():
            values = [int(value) for value in rest.split()]
            idle = values[3] + values[4]  # idle, iowait
            ticks[int(name[3:])] = (sum(values) - idle, sum(values))
    return ticks


def busy_by_interval(samples: list[tuple[float, dict[int, tuple[int, int]]]], core: int) -> list[tuple[float, float]]:
    """(end of interval, share of it ``core`` was busy) between consecutive ``(time, cpu_ticks)`` samples."""
    shares = []
    for (_, before), (moment, after) in itertools.pairwise(samples):
        total = after[core][1] - before[core][1]
        shares.append((moment, (after[core][0] - before[core][0]) / total if total else 0.0))
    return shares


def describe_busy(shares: list[tuple[float, float]], first_drop: float, label: str) -> str:
    """One line: the core's busy percentage in each interval, the intervals' ends in seconds after the drop."""
    cells = " ".join(f"{moment - first_drop:.0f}:{100 * share:.0f}" for moment, share in shares)
    return f"  {label} busy % by second after the first drop (second:%): {cells}"
