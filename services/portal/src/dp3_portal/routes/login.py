"""``/login`` and ``/logout``; and what an anonymous request gets everywhere else."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from dp3_portal.auth import SESSION_COOKIE, TooManyAttempts
from dp3_portal.routes.deps import CsrfDep, NotAuthenticated, PortalDep, UserDep, throttle_keys
from dp3_portal.routes.render import page

router = APIRouter(include_in_schema=False)
WRONG = "Wrong user name or password."


def install(app: FastAPI) -> None:
    async def on_not_authenticated(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAuthenticated)
        if exc.api:
            return JSONResponse(
                {"detail": "login required"}, status_code=401, headers={"WWW-Authenticate": 'Basic realm="dp3"'}
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    app.add_exception_handler(NotAuthenticated, on_not_authenticated)


def _local(target: str) -> str:
    """Only a path on this site (no ``//host`` or scheme): no open redirect."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/login")
async def login_form(request: Request, portal: PortalDep, next: str = "/") -> Response:  # noqa: A002
    return page(request, portal, "login.html", {"next": _local(next), "error": ""}, user=None)


@router.post("/login", dependencies=[CsrfDep])
async def login(
    request: Request,
    portal: PortalDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",  # noqa: A002
) -> Response:
    async def check() -> bool:
        return await portal.users.check(username, password)

    try:
        ok = await portal.throttle.attempt(throttle_keys(request, username), check)
    except TooManyAttempts as exc:
        context = {"next": _local(next), "error": f"Too many login attempts: wait {exc.retry_after} s and try again."}
        refused = page(request, portal, "login.html", context, user=None, status_code=429)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    if not ok:
        context = {"next": _local(next), "error": WRONG}
        return page(request, portal, "login.html", context, user=None, status_code=401)
    session_id = await portal.session_table.start(username)
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        portal.sessions.issue(username, session_id),
        max_age=portal.sessions.max_age,
        httponly=True,
        samesite="lax",
        secure=portal.settings.secure_cookies,
        path="/",
    )
    return response


@router.post("/logout", dependencies=[CsrfDep])
async def logout(request: Request, portal: PortalDep, user: UserDep) -> Response:
    """End the session server-side (a copy of the cookie is worthless from now on), then drop the cookie."""
    cookie = portal.sessions.read(request.cookies.get(SESSION_COOKIE))
    if cookie is not None:
        await portal.session_table.end(cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=portal.settings.secure_cookies, httponly=True)
    return response
