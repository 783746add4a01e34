"""How many render workers the dispatcher has, read from its ``/metrics``; "unknown" if it does not answer."""

from __future__ import annotations

import time

import httpx

METRIC = "dp3_dispatcher_workers_connected"
CACHE_SECONDS = 5.0


def parse_workers(metrics_text: str) -> int | None:
    for line in metrics_text.splitlines():
        if line.startswith(METRIC) and not line.startswith(METRIC + "_"):
            try:
                return int(float(line.rsplit(" ", 1)[-1]))
            except ValueError:
                return None
    return None


class WorkersProbe:
    """Caches the answer briefly so the status page never waits on the dispatcher twice in a row."""

    def __init__(self, url: str | None, timeout: float = 1.0) -> None:
        self.url = url
        self.timeout = timeout
        self._cached: tuple[float, int | None] | None = None

    async def workers_connected(self) -> int | None:
        if not self.url:
            return None
        now = time.monotonic()
        if self._cached and now - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(self.url)
            value = parse_workers(response.text) if response.status_code == 200 else None
        except httpx.HTTPError:
            value = None
        self._cached = (now, value)
        return value
