"""Render a template with what every page needs (user, CSRF token), setting the CSRF cookie when new."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from dp3_portal.auth import CSRF_COOKIE, CSRF_FIELD, new_csrf_token
from dp3_portal.state import Portal


def page(
    request: Request,
    portal: Portal,
    template: str,
    context: dict[str, Any],
    *,
    user: str | None,
    status_code: int = 200,
) -> HTMLResponse:
    token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    response = portal.templates.TemplateResponse(
        request,
        template,
        {"user": user, "csrf_field": CSRF_FIELD, "csrf_token": token, **context},
        status_code=status_code,
    )
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=portal.settings.secure_cookies, path="/"
        )
    response.headers["Cache-Control"] = "no-store"
    return response
