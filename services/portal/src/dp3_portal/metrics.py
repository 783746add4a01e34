"""The portal's Prometheus metrics: requests per route, and photos per status."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import Response

REQUESTS = Counter("dp3_portal_requests_total", "HTTP requests by route template", ["route", "method", "code"])
LATENCY = Histogram(
    "dp3_portal_request_seconds",
    "HTTP request latency by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
PHOTOS = Gauge(
    "dp3_portal_photos", "Photos in the catalog by status (failed: any photo whose render failed)", ["status"]
)
PREVIEWS_WAITING = Gauge(
    "dp3_portal_previews_waiting",
    "Photos known only from a field device's preview or upload, original not yet in the pipeline (not photos)",
)


async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """HTTP middleware: labels are the route's template (``/api/photos/{photo_id}``), never the raw path."""
    started = time.perf_counter()
    response = await call_next(request)
    route = getattr(request.scope.get("route"), "path", None) or "unmatched"
    REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    LATENCY.labels(route).observe(time.perf_counter() - started)
    return response
