"""The agent's settings, from ``DP3_FIELD_*`` variables; built once in ``main()``.

A photographer never needs one (the defaults fit a laptop on a 0.5 Mbps
link); they are for the field team's technician and the tests. A bad value
stops the agent with one line naming the variable (:func:`dp3.settings.load_settings`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    """Where a desktop keeps an application's own data: the queue, the pairing, the previews."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "dp3-field"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "dp3-field"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "dp3-field"


class FieldSettings(BaseSettings):
    """What ``dp3-field`` runs with (README: the field agent's settings)."""

    model_config = SettingsConfigDict(env_prefix="DP3_FIELD_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=default_home)
    status_port: int = Field(default=8765, ge=0, le=65535)
    """The local status page, on 127.0.0.1 only (0: any free port)."""
    stable_seconds: float = Field(default=5.0, ge=0)
    """A file unchanged this long has finished arriving (the scanner's rule, :mod:`dp3.stability`)."""
    scan_seconds: float = Field(default=10.0, gt=0)
    """How often the watched folder is listed."""
    chunk_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=64 * 1024 * 1024)
    """Bytes per tus PATCH: what a cut link can cost at most, and what a restart re-sends at most."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a silent head node is waited for (connect, and between two reads)."""
    retry_max_seconds: float = Field(default=60.0, gt=0)
    """The longest wait between two tries while the head node is unreachable."""
    receipt_seconds: float = Field(default=60.0, gt=0)
    """How often the head node is asked whether a sent original is archived yet."""
    max_kbps: float = Field(default=0.0, ge=0)
    """The bandwidth cap in kilobits per second (0: none); ``run --max-kbps`` wins."""
    timezone: str = "UTC"
    """The site's time zone, for the capture day of a photo whose EXIF time has no offset."""

    @property
    def queue_path(self) -> Path:
        return self.home / "queue.sqlite3"

    @property
    def pairing_path(self) -> Path:
        return self.home / "pairing.json"

    @property
    def previews_dir(self) -> Path:
        return self.home / "previews"
