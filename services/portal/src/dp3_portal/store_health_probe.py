"""The archive stores' health, read from the archiver's ``/metrics``: which store held photos back, and how long.

The archiver keeps, per store, ``dp3_archiver_store_up``, the start and end of
its current or last problem (``..._problem_since_seconds`` /
``..._problem_until_seconds``) and its error counts by kind. Parsing is pure
(:func:`parse_stores`); :class:`StoreHealthProbe` fetches, with a short cache, and
answers None when the archiver does not answer (shown as "unknown").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dp3 import metric_names as names
from dp3_portal.metrics_probe import MetricsProbe

_SAMPLE = re.compile(rf"^({re.escape(names.ARCHIVER_STORE_PREFIX)}[a-z_]+)\{{([^}}]*)\}} (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class StoreHealth:
    """One store as the archiver last saw it."""

    store: str
    up: bool = True
    since: float = 0.0  # start of the current or last problem (0: none)
    until: float = 0.0  # its end (0: still going on, or none)
    errors: dict[str, int] = field(default_factory=dict)  # kind -> count since the archiver started
    aliases: dict[str, str] = field(default_factory=dict)  # other store -> reason, while the two are one place

    @property
    def in_trouble(self) -> bool:
        return not self.up

    def duration(self, now: float) -> float | None:
        """Seconds the current or last problem lasted (so far); None if there was none."""
        if not self.since:
            return None
        return max(0.0, (self.until or now) - self.since)


def parse_stores(metrics_text: str) -> list[StoreHealth]:
    """Every store named in the archiver's metrics, sorted by name."""
    stores: dict[str, StoreHealth] = {}
    for name, labels_text, value_text in _SAMPLE.findall(metrics_text):
        labels = dict(_LABEL.findall(labels_text))
        label = labels.get(names.STORE_LABEL)
        if label is None:
            continue
        try:
            value = float(value_text)
        except ValueError:
            continue
        health = stores.setdefault(label, StoreHealth(label))
        if name == names.ARCHIVER_STORE_UP:
            health.up = value >= 1
        elif name == names.ARCHIVER_STORE_PROBLEM_SINCE:
            health.since = value
        elif name == names.ARCHIVER_STORE_PROBLEM_UNTIL:
            health.until = value
        elif name == names.ARCHIVER_STORE_ERRORS and names.KIND_LABEL in labels:
            health.errors[labels[names.KIND_LABEL]] = int(value)
        elif name == names.ARCHIVER_STORE_ALIAS and value >= 1 and names.OTHER_LABEL in labels:
            health.aliases[labels[names.OTHER_LABEL]] = labels.get(names.REASON_LABEL, "")
    return [stores[label] for label in sorted(stores)]


def alias_lines(stores: list[StoreHealth] | None) -> list[str]:
    """One line per pair of stores the archiver sees as one place."""
    return [
        f"stores {health.store} and {other} are not distinct places ({reason.replace('_', ' ')}); "
        "the archiver archives and collects nothing until every store is a place of its own"
        for health in stores or []
        for other, reason in sorted(health.aliases.items())
    ]


class StoreHealthProbe(MetricsProbe[list[StoreHealth]]):
    """The status page's view of that endpoint (``None`` when it is unknown)."""

    def __init__(self, url: str | None, timeout: float = 1.0) -> None:
        super().__init__(url, parse_stores, timeout)

    async def stores(self) -> list[StoreHealth] | None:
        return await self.read()
