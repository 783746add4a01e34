"""Server-rendered pages: the gallery, a photo, the pipeline status; and the retry action."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response

from dp3 import store_places
from dp3.events import PIPELINE_STATUSES, Status
from dp3_portal import camera_filter, presentation
from dp3_portal.catalog import BadQuery, Page
from dp3_portal.retry import request_retry
from dp3_portal.routes.deps import CsrfDep, PortalDep, UserDep
from dp3_portal.routes.filters import FilterDep
from dp3_portal.routes.render import page
from dp3_portal.store_health_probe import alias_lines

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
PhotoId = Annotated[str, Path(max_length=400)]


@router.get("/")
async def gallery(request: Request, portal: PortalDep, user: UserDep, params: FilterDep, cursor: str = "") -> Response:
    error = ""
    try:
        flt = params.build()
        result = await portal.catalog.page(flt, cursor=cursor or None)
        next_link = f"/?{urlencode({**flt.as_params(), 'cursor': result.next_cursor})}" if result.next_cursor else ""
    except BadQuery as exc:
        error, result, next_link = str(exc), Page([], None), ""
    context = {
        "params": params,
        "photos": result.items,
        "next_link": next_link,
        "first_link": f"/?{urlencode(flt.as_params())}" if cursor and not error else "",
        "error": error,
        "owners": await portal.catalog.facet("owner"),
        "cameras": await portal.catalog.facet(camera_filter.FACET),
        "camera_filter": camera_filter,
        "statuses": [status.value for status in Status],
        "zone": portal.settings.zone,
        "presentation": presentation,
        "quote": quote,
    }
    return page(request, portal, "gallery.html", context, user=user, status_code=400 if error else 200)


@router.get("/photos/{photo_id}")
async def photo_page(request: Request, portal: PortalDep, user: UserDep, photo_id: PhotoId) -> Response:
    photo = await portal.catalog.photo(photo_id)
    if photo is None:
        # A preview's page outlives its record: once the original arrived, that is the photo's page.
        joined = await portal.catalog.joined(photo_id)
        if joined is not None:
            return RedirectResponse(f"/photos/{quote(str(joined['_id']), safe='')}", status_code=303)
        raise HTTPException(404, "no such photo")
    position = presentation.gps(photo.get("meta"))
    context = {
        "photo": photo,
        "zone": portal.settings.zone,
        "map_link": presentation.map_link(position) if position else "",
        "position": position,
        "rows": presentation.flat_metadata(photo.get("meta")),
        "advice": presentation.advice(photo),
        "can_retry": presentation.can_retry(photo),
        "presentation": presentation,
        "quote": quote,
    }
    return page(request, portal, "photo.html", context, user=user)


@router.post("/photos/{photo_id}/retry", dependencies=[CsrfDep])
async def retry(portal: PortalDep, user: UserDep, photo_id: PhotoId) -> Response:
    """Re-emit the photo's ``Detected`` (next attempt): the dispatcher renders it again."""
    await request_retry(portal, user, photo_id)
    return RedirectResponse(f"/photos/{quote(photo_id, safe='')}?retried=1", status_code=303)


@router.get("/status")
async def status_page(request: Request, portal: PortalDep, user: UserDep) -> Response:
    stale_after = portal.settings.preview_stale_hours * 3600
    report, workers, stores, own_aliases = await asyncio.gather(
        portal.catalog.status_report(stale_after=stale_after),
        portal.workers_probe.workers_connected(),
        portal.store_health_probe.stores(),
        asyncio.to_thread(store_places.check_distinct, portal.settings.stores),
    )
    # What the archiver sees, and what the portal sees of its own DP3_STORES (one mount table may differ).
    refusals = [alias.line() for alias in own_aliases] + alias_lines(stores)
    context = {
        "store_refusals": list(dict.fromkeys(refusals)),
        "report": report,
        "workers": "unknown" if workers is None else str(workers),
        "stores": stores,
        "stores_known": portal.store_health_probe.url is not None,
        "now": time.time(),
        "statuses": [status.value for status in PIPELINE_STATUSES],
        "stale_hours": portal.settings.preview_stale_hours,
        "zone": portal.settings.zone,
        "presentation": presentation,
        "quote": quote,
    }
    return page(request, portal, "status.html", context, user=user)
