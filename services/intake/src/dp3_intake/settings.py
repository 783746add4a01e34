"""The intake's own ``DP3_*`` settings, on top of the shared ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from dp3 import ports
from dp3.settings import Settings


class IntakeSettings(Settings):
    """What the intake needs beyond every service's settings."""

    intake_host: str = "0.0.0.0"  # noqa: S104 - field devices reach it through the head node's proxy
    intake_port: int = Field(default=ports.INTAKE, ge=0, le=65535)
    intake_max_bytes: int = Field(default=2 * 1024**3, gt=0)
    """The largest original a device may declare (413 too_large above it)."""
    intake_expiry_days: float = Field(default=7.0, gt=0)
    """A partial upload that received no byte for this long is deleted."""
    intake_uploads: Path | None = None
    """Partial uploads (default ``$DP3_HOME/intake/uploads``); a local disk: every chunk is fsynced."""
    intake_progress_seconds: float = Field(default=5.0, ge=0)
    """At most one ``photo.uploading`` per upload this often (plus one at completion)."""
    intake_cleanup_seconds: float = Field(default=3600.0, gt=0)
    """How often expired partial uploads are looked for."""
    intake_body_idle_seconds: float = Field(default=20.0, gt=0)
    """A request body that sends no byte for this long is cut off, its bytes kept (:mod:`dp3_intake.idle`)."""
    previews: Path | None = None
    """Preview JPEGs (default ``$DP3_HOME/previews``), shared with the portal."""
    mongo_database: str = "dp3"

    @property
    def uploads_dir(self) -> Path:
        return self.intake_uploads or self.home / "intake" / "uploads"

    @property
    def previews_dir(self) -> Path:
        return self.previews or self.home / "previews"
