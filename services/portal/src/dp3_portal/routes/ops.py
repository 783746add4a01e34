"""``/healthz`` and ``/metrics``: open, for the process manager and Prometheus.

``/metrics`` carries no photo data but should still be reachable only from
the monitoring network (compose does not publish it beyond the portal's port;
restrict it at the reverse proxy).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.errors import PyMongoError

from dp3_portal.metrics import PHOTOS, PREVIEWS_WAITING
from dp3_portal.routes.deps import PortalDep

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz(portal: PortalDep) -> Response:
    try:
        await portal.client.admin.command("ping")
    except PyMongoError as exc:
        # The exception names hosts, ports and internals: logged, never answered to an open endpoint.
        log.error("health check: MongoDB ping failed: %s", exc)
        return PlainTextResponse("MongoDB unavailable\n", status_code=503)
    return PlainTextResponse("ok\n")


@router.get("/metrics")
async def prometheus_metrics(portal: PortalDep) -> Response:
    try:
        for status, count in (await portal.catalog.stats()).items():
            PHOTOS.labels(status).set(count)
        PREVIEWS_WAITING.set(await portal.catalog.previews_waiting())
    except PyMongoError:
        pass  # the gauges keep their last values; /healthz reports the outage
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
