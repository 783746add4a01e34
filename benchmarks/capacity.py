"""The capacity model (issue 17, item 4): what a run's CPU per photo says the pipeline can reach.

Every photo costs each core group (the head node's cores, the worker cores) a
measured number of CPU milliseconds. A group of ``cores`` cores, kept busy,
then finishes at most ``cores * 1000 / ms_per_photo`` photos per second: its
*ceiling*. The pipeline goes no faster than its least ceiling, and the heaviest
program of that group is the one to make cheaper (or to move elsewhere, as
another archiver on a second host). How many worker cores one head core keeps
busy is the ratio of the two groups' costs per photo.

The model ignores what no group owns (kernel threads, other processes) and
waits (fsyncs, transfers): a measured rate under the prediction says how much
of it those take. Pure arithmetic, unit-tested in ``tests/unit/benchmarks``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class CoreGroup:
    """One group of cores and the CPU milliseconds per photo its programs spent, by program."""

    name: str
    cores: int
    ms_per_photo: Mapping[str, float]

    @property
    def total_ms(self) -> float:
        return sum(self.ms_per_photo.values())

    @property
    def ceiling(self) -> float:
        """Photos per second with every core of the group busy; infinite for a group that spent nothing."""
        return self.cores * 1000 / self.total_ms if self.total_ms > 0 else math.inf

    @property
    def heaviest(self) -> str:
        """The program that spent the most per photo ("" for a group without programs)."""
        return max(self.ms_per_photo, key=lambda program: self.ms_per_photo[program], default="")


@dataclass(frozen=True)
class Capacity:
    head: CoreGroup
    worker: CoreGroup

    @property
    def ceilings(self) -> dict[str, float]:
        """Each group's ceiling, photos per second, by group name."""
        return {group.name: group.ceiling for group in (self.head, self.worker)}

    @property
    def bottleneck(self) -> CoreGroup:
        """The group with the least ceiling; the head node on a tie (it is the one that does not scale out)."""
        return self.worker if self.worker.ceiling < self.head.ceiling else self.head

    @property
    def rate(self) -> float:
        """The predicted pipeline rate, photos per second: the least ceiling."""
        return self.bottleneck.ceiling

    @property
    def bottleneck_program(self) -> str:
        return self.bottleneck.heaviest

    @property
    def worker_cores_per_head_core(self) -> float:
        """Worker cores one head core keeps busy: worker-side ms per photo / head-side ms per photo."""
        if self.head.total_ms <= 0:
            return math.inf
        return self.worker.total_ms / self.head.total_ms


def capacity(head: CoreGroup, worker: CoreGroup) -> Capacity:
    """The model for one run's two groups; ValueError if neither spent any CPU or a group has no core."""
    for group in (head, worker):
        if group.cores < 1:
            raise ValueError(f"{group.name}: {group.cores} cores; a group has at least one")
    if head.total_ms <= 0 and worker.total_ms <= 0:
        raise ValueError("no CPU per photo in either group: nothing to predict from")
    return Capacity(head, worker)


def describe(model: Capacity, measured_rate: float) -> list[str]:
    """The lines the benchmark prints: each ceiling, the prediction beside the measured rate, the feed ratio."""
    lines = ["capacity model from this run's CPU per photo (ceiling = cores x 1000 / ms per photo):"]
    for group in (model.head, model.worker):
        mark = ""
        if group is model.bottleneck:
            heaviest = group.heaviest
            mark = f"  <- bottleneck; heaviest: {heaviest} {group.ms_per_photo.get(heaviest, 0.0):.1f} ms"
        cores = f"{group.cores} core{'s' if group.cores != 1 else ''}"
        ceiling = f"ceiling {group.ceiling:6.2f} photos/s"
        lines.append(f"  {group.name:16s} {cores:8s} {group.total_ms:7.1f} ms  {ceiling}{mark}")
    ratio = measured_rate / model.rate if model.rate not in (0, math.inf) else math.nan
    lines.append(
        f"  predicted {model.rate:6.2f} photos/s ({model.bottleneck.name}), measured {measured_rate:6.2f} photos/s: "
        f"measured / predicted {ratio:.2f}x"
    )
    lines.append(
        f"  one head core feeds {model.worker_cores_per_head_core:.2f} worker cores "
        f"({model.worker.total_ms:.1f} / {model.head.total_ms:.1f} ms per photo)"
    )
    return lines
