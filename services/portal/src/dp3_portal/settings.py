"""The portal's own ``DP3_*`` settings, on top of the shared ones."""

from __future__ import annotations

import ipaddress

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from dp3 import ports
from dp3.settings import Settings


class PortalSettings(Settings):
    """What the portal needs beyond every service's settings."""

    portal_host: str = "0.0.0.0"  # noqa: S104 - published by compose; /metrics is network-restricted there
    portal_port: int = Field(default=ports.PORTAL, ge=0, le=65535)
    admin_password: SecretStr | None = None
    secret_key: SecretStr | None = None
    dispatcher_metrics_url: str | None = None
    archiver_metrics_url: str | None = None
    """The archiver's /metrics, for the stores' health on the status page (unset: not shown)."""
    mongo_database: str = "dp3"
    secure_cookies: bool = False
    """Mark the session cookie Secure; set it when the portal is served over HTTPS."""
    trusted_proxies: str | None = None
    """Addresses (comma-separated, or *) of the reverse proxy whose X-Forwarded-For/-Proto are believed."""
    session_hours: float = Field(default=12.0, gt=0)
    login_free_attempts: int = Field(default=3, ge=1)
    """Failed logins allowed for one name or client before answers slow down."""
    login_delay_seconds: float = Field(default=1.0, ge=0)
    """The first slowdown; it doubles with each further failure, up to 30 s."""
    recorder_prefetch: int = Field(default=2000, ge=1)
    recorder_batch: int = Field(default=500, ge=1)
    preview_stale_hours: float = Field(default=48.0, gt=0)
    """A preview whose original has not arrived after this long is listed on the status page."""
    public_url: str | None = None
    """The head node's address as field devices reach it, for the pairing command (unset: the page's own URL)."""

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = AnyHttpUrl(value.strip())
        if url.query or url.fragment:
            raise ValueError("expected an http:// or https:// address without a query or fragment")
        return str(url).rstrip("/") + "/"

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for part in (part.strip() for part in value.split(",")):
            if part == "*":
                continue
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or network (or *)") from None
        return value
