"""Request dependencies: the portal, the logged-in user, CSRF checks.

Every route except ``/healthz``, ``/metrics`` and the login form depends on
:func:`current_user`. Without a user, pages redirect to ``/login`` and the
API answers 401 with a Basic challenge.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request

from dp3_portal.auth import (
    ADMIN,
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    TooManyAttempts,
    csrf_ok,
    valid_username,
    verify_password,
)
from dp3_portal.state import Portal


class NotAuthenticated(Exception):
    """Raised by :func:`current_user`; turned into a redirect or a 401 by the app.

    Not a :class:`dp3.errors.DP3Error`: an answer to one request, which never leaves the portal.
    """

    def __init__(self, api: bool) -> None:
        super().__init__("login required")
        self.api = api


def get_portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


PortalDep = Annotated[Portal, Depends(get_portal)]


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def throttle_keys(request: Request, user: str) -> tuple[str, str]:
    """The login throttle's keys for an attempt: the name tried, and the client it came from.

    Every name that is not a user name (:func:`valid_username`: it can never log in) shares one key,
    so the table's entries stay small whatever a client sends (a megabyte of name per guess).
    """
    name = user if valid_username(user) else "\0not-a-user-name"
    return f"user:{name}", f"client:{request.client.host if request.client else '?'}"


def too_many(exc: TooManyAttempts) -> HTTPException:
    return HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": str(exc.retry_after)})


async def current_user(request: Request, portal: PortalDep) -> str:
    """The session's user while its session is live server-side; else verified Basic credentials."""
    cookie = portal.sessions.read(request.cookies.get(SESSION_COOKIE))
    if cookie is not None and await portal.session_table.valid(cookie):
        return cookie.user
    credentials = _basic_credentials(request)
    if credentials is not None:
        name, password = credentials
        stored = await portal.users.password_hash(name)
        if stored is not None and portal.basic_cache.known(name, password, stored):
            return name

        async def check() -> bool:
            return await asyncio.to_thread(verify_password, stored, password)

        try:
            if await portal.throttle.attempt(throttle_keys(request, name), check):
                assert stored is not None  # verify_password is never true without a hash
                portal.basic_cache.remember(name, password, stored)
                return name
        except TooManyAttempts as exc:
            raise too_many(exc) from None
    raise NotAuthenticated(api=request.url.path.startswith("/api/"))


UserDep = Annotated[str, Depends(current_user)]


async def current_admin(user: UserDep) -> str:
    """The logged-in user, if it is the administrator (``admin``): field devices are the administrator's."""
    if user != ADMIN:
        raise HTTPException(status_code=403, detail="only the administrator (admin) manages field devices")
    return user


AdminDep = Annotated[str, Depends(current_admin)]


async def check_csrf(request: Request, csrf_token: Annotated[str, Form()] = "") -> None:
    if not csrf_ok(request.cookies.get(CSRF_COOKIE), csrf_token):
        raise HTTPException(status_code=403, detail="the form expired or came from another site; reload and retry")


CsrfDep = Depends(check_csrf)
__all__ = ["CSRF_FIELD", "AdminDep", "CsrfDep", "NotAuthenticated", "PortalDep", "UserDep", "get_portal"]
