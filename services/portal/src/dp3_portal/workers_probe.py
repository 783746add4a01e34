"""How many render workers the dispatcher has, read from its ``/metrics``; "unknown" if it does not answer."""

from __future__ import annotations

from dp3.metric_names import DISPATCHER_WORKERS_CONNECTED as METRIC
from dp3_portal.metrics_probe import MetricsProbe


def parse_workers(metrics_text: str) -> int | None:
    for line in metrics_text.splitlines():
        if line.startswith(METRIC) and not line.startswith(METRIC + "_"):
            try:
                return int(float(line.rsplit(" ", 1)[-1]))
            except ValueError:
                return None
    return None


class WorkersProbe(MetricsProbe[int]):
    """The status page's view of that endpoint (``None`` when it is unknown)."""

    def __init__(self, url: str | None, timeout: float = 1.0) -> None:
        super().__init__(url, parse_workers, timeout)

    async def workers_connected(self) -> int | None:
        return await self.read()
