"""Read another service's ``/metrics`` for the status page, with a short cache: the probes' base.

The probes: :mod:`dp3_portal.workers_probe` (the dispatcher's workers
connected) and :mod:`dp3_portal.store_health_probe` (the archiver's stores).

The status page shows numbers only other services know (workers connected,
store health). It must never wait on them twice in a row, nor fail when they
are down: an unreachable or failing endpoint reads as ``None`` ("unknown").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

import httpx

CACHE_SECONDS = 5.0

T = TypeVar("T")


class MetricsProbe(Generic[T]):
    """Fetches ``url`` and parses it with ``parse``; answers from cache for ``CACHE_SECONDS``."""

    def __init__(self, url: str | None, parse: Callable[[str], T | None], timeout: float = 1.0) -> None:
        self.url = url
        self.timeout = timeout
        self._parse = parse
        self._cached: tuple[float, T | None] | None = None

    async def read(self) -> T | None:
        if not self.url:
            return None
        now = time.monotonic()
        if self._cached and now - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(self.url)
            value = self._parse(response.text) if response.status_code == 200 else None
        except httpx.HTTPError:
            value = None
        self._cached = (now, value)
        return value
