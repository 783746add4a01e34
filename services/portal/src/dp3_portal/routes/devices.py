"""``/devices``: the administrator adds, lists and revokes field devices (docs/field-uploads.md).

A device is bound to one photographer's folder and holds one token, shown
once, in the answer to the form that added it (never stored in clear, never
logged, never shown again), with the one-line pairing command for the field
agent. Forms carry the CSRF token like every other form of the portal.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response

from dp3_portal import presentation
from dp3_portal.device_registry import DeviceRegistry, NewDevice, label_problem, owner_problem, pairing_command
from dp3_portal.routes.deps import AdminDep, CsrfDep, PortalDep
from dp3_portal.routes.render import page
from dp3_portal.state import Portal

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
DeviceId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")]


def _registry(portal: Portal) -> DeviceRegistry:
    if portal.devices is None:
        raise HTTPException(503, "the device registry is not open")
    return portal.devices


def head_node_url(request: Request, portal: Portal) -> str:
    """Where field devices reach the head node: ``DP3_PUBLIC_URL``, else the address this page was asked at."""
    return portal.settings.public_url or str(request.base_url)


async def _devices_page(
    request: Request,
    portal: Portal,
    user: str,
    *,
    new: NewDevice | None = None,
    error: str = "",
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "devices": await _registry(portal).all(),
        "owners": await portal.catalog.facet("owner"),
        "new": new,
        "pairing": pairing_command(head_node_url(request, portal), new.token) if new else "",
        "error": error,
        "form": form or {"owner": "", "label": ""},
        "presentation": presentation,
    }
    return page(request, portal, "devices.html", context, user=user, status_code=status_code)


@router.get("/devices")
async def devices_page(request: Request, portal: PortalDep, user: AdminDep) -> Response:
    return await _devices_page(request, portal, user)


@router.post("/devices", dependencies=[CsrfDep])
async def add_device(
    request: Request,
    portal: PortalDep,
    user: AdminDep,
    owner: Annotated[str, Form(max_length=1000)] = "",
    label: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Add a device and answer with its token, this once."""
    problem = owner_problem(owner) or label_problem(label)
    if problem is not None:
        form = {"owner": owner, "label": label}
        return await _devices_page(request, portal, user, error=problem, form=form, status_code=400)
    new = await _registry(portal).add(owner, label.strip())
    # The token is never logged: the log names the device only.
    log.info("device %s (%s) added for %s by %s", new.record.id, new.record.label, owner, user)
    return await _devices_page(request, portal, user, new=new, status_code=201)


@router.post("/devices/{device_id}/revoke", dependencies=[CsrfDep])
async def revoke_device(portal: PortalDep, user: AdminDep, device_id: DeviceId) -> Response:
    """Revoke a device's token: the intake refuses it from its next call on. Revoking twice changes nothing."""
    known = {record.id for record in await _registry(portal).all()}
    if device_id not in known:
        raise HTTPException(404, "no such device")
    if await _registry(portal).revoke(device_id):
        log.info("device %s revoked by %s", device_id, user)
    return RedirectResponse("/devices?revoked=" + device_id, status_code=303)
