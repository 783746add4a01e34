"""The intake's refusals: one status, one code and one line for a person each (docs/field-uploads.md).

Every refusal is raised as :class:`IntakeError` and rendered by one handler as
``{"error": code, "detail": ...}``; tuspyserver's own ``HTTPException`` s are
given a code from their status by the same handler, so a client parses one shape.
"""

from __future__ import annotations

CHECKSUM_MISMATCH = 460
"""Not an IANA status: the one tus servers (tusd) use for a checksum that does not match."""


class IntakeError(Exception):
    """A request the intake refuses; nothing was written to the inbox.

    Not a :class:`dp3.errors.DP3Error`: it is an answer to one request, turned into an HTTP
    response by the app, and never leaves the service.
    """

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def unauthorized(code: str, detail: str) -> IntakeError:
    return IntakeError(401, code, detail, {"WWW-Authenticate": "Bearer"})


CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    410: "gone",
    412: "unsupported_version",
    413: "too_large",
    415: "unsupported_media_type",
    422: "bad_request",
    503: "busy",
}
