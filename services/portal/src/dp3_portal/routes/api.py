"""The JSON API (OpenAPI at ``/api/openapi.json``, docs at ``/api/docs``), for scripts.

Cookie sessions and HTTP Basic both work. Images are found by photo id only:
no route takes a file path from the client.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path as FsPath
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel

from dp3_portal import images, presentation
from dp3_portal.catalog import DEFAULT_LIMIT, MAX_LIMIT, BadQuery
from dp3_portal.retry import request_retry
from dp3_portal.routes.deps import PortalDep, UserDep
from dp3_portal.routes.filters import FilterDep
from dp3_portal.state import Portal

router = APIRouter(prefix="/api", tags=["photos"])
PhotoId = Annotated[str, Path(max_length=400, description="the photo id, e.g. JAEGER-NICHOLAS_1355517208_DSC00372.JPG")]


class ErrorOut(BaseModel):
    stage: str
    kind: str
    message: str


class PhotoOut(BaseModel):
    id: str
    status: str
    owner: str
    datetime: int
    capture_time: str
    path: str
    path_bytes: str | None = None
    """base64 of the inbox path's exact bytes when ``path`` is its escaped form (a name that is not UTF-8)."""
    archives: list[str]
    sha256: str
    size: int
    error: ErrorOut | None
    failed: bool
    model: str
    original_on_its_way: bool = False
    """Known from a field device's preview only: the original has not reached the pipeline yet."""
    original_arrived: float | None = None
    """For such a photo, the share of the original the intake has received (0 to 1), if it reported any."""


class PhotoPage(BaseModel):
    items: list[PhotoOut]
    next: str | None


class PhotoDetail(PhotoOut):
    meta: dict[str, Any] | None
    history: list[dict[str, Any]]
    advice: str


class ImageKind(StrEnum):
    thumbnail = "thumbnail"
    web = "web"
    original = "original"


@router.get("/photos", response_model=PhotoPage)
async def list_photos(
    portal: PortalDep,
    user: UserDep,
    params: FilterDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str, Query(description="`next` of the previous page", max_length=600)] = "",
) -> dict[str, Any]:
    """Photos, newest capture first, with the gallery's filters; follow `next` for the following page."""
    try:
        page = await portal.catalog.page(params.build(), limit=limit, cursor=cursor or None)
    except BadQuery as exc:
        raise HTTPException(400, str(exc)) from None
    return {"items": [presentation.api_item(p, portal.settings.zone) for p in page.items], "next": page.next_cursor}


@router.get("/photos/{photo_id}", response_model=PhotoDetail)
async def get_photo(portal: PortalDep, user: UserDep, photo_id: PhotoId) -> dict[str, Any]:
    """One photo with its metadata (`meta.json`) and the history of its journal events."""
    photo = await portal.catalog.photo(photo_id)
    if photo is None:
        raise HTTPException(404, "no such photo")
    return presentation.api_detail(photo, portal.settings.zone)


class RetryOut(BaseModel):
    id: str
    attempt: int


@router.post("/photos/{photo_id}/retry", response_model=RetryOut, status_code=202)
async def retry_photo(request: Request, portal: PortalDep, user: UserDep, photo_id: PhotoId) -> RetryOut:
    """Render a failed photo again (its next attempt), from the stores' verified copy once it is collected.

    The request must be ``Content-Type: application/json`` (any body): a form
    on another site cannot send that without the browser asking first, so a
    logged-in browser cannot be made to retry photos behind its user's back.
    """
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(415, "send Content-Type: application/json")
    attempt = await request_retry(portal, user, photo_id)
    return RetryOut(id=photo_id, attempt=attempt)


@router.get(
    "/photos/{photo_id}/{kind}",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "application/octet-stream": {}}}},
)
async def get_image(portal: PortalDep, user: UserDep, photo_id: PhotoId, kind: ImageKind) -> FileResponse:
    """The thumbnail, web version or original (from the first store whose copy verifies)."""
    photo = await portal.catalog.photo(photo_id)
    if photo is None:
        raise HTTPException(404, "no such photo")
    found = await _locate(portal, photo, kind)
    if found is None and photo.get("duplicate_of"):
        # A Duplicate is the same bytes as a photo already archived: show that one's files.
        original = await portal.catalog.photo(str(photo["duplicate_of"]))
        if original is not None and original.get("sha256") == photo.get("sha256"):
            found = await _locate(portal, original, kind)
    if found is None and kind is not ImageKind.original:
        # Sent ahead by a field device, the preview stands in until the render's artifacts exist.
        found = images.preview_path(photo, portal.settings.previews_dir)
    if found is None:
        what = "no verified copy of the original in any store" if kind is ImageKind.original else f"no {kind.value}"
        if kind is ImageKind.original and presentation.on_its_way(photo):
            what = "the original has not arrived yet"
        raise HTTPException(404, what)
    if kind is ImageKind.original:
        filename = PurePosixPath(str(photo["path"])).name or str(photo["_id"])
        return FileResponse(found, media_type="application/octet-stream", filename=filename)
    return FileResponse(found, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


async def _locate(portal: Portal, photo: dict[str, Any], kind: ImageKind) -> FsPath | None:
    settings = portal.settings
    if kind is ImageKind.original:
        return await asyncio.to_thread(images.original_path, photo, settings.stores)
    return images.artifact_path(photo, kind.value, settings.stores, settings.staging_dir)


@router.get("/stats")
async def stats(portal: PortalDep, user: UserDep) -> dict[str, int]:
    """Photos per status; `failed` counts every photo whose render failed, whatever its status."""
    return await portal.catalog.stats()


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, user: UserDep) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
async def docs(user: UserDep) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/api/openapi.json", title="DP3 portal API")
