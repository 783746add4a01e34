"""Where the intake finds its database: ``DP3_MONGO_URL``, else the portal's embedded server."""

from __future__ import annotations

import time
from pathlib import Path

from dp3.errors import ConfigError
from dp3.mongo import ping
from dp3_intake.settings import IntakeSettings

EMBEDDED_WAIT_SECONDS = 30.0


def mongo_url(settings: IntakeSettings, wait: float = EMBEDDED_WAIT_SECONDS) -> str:
    """``DP3_MONGO_URL``, else the embedded server the portal runs (its URL in ``$DP3_HOME/mongo/url``).

    The devices registry belongs to the portal, so the intake never starts a
    server of its own: it would be an empty registry.
    """
    if settings.mongo_url:
        return settings.mongo_url
    url_file = Path(settings.home) / "mongo" / "url"
    deadline = time.monotonic() + wait
    while True:
        try:
            url = url_file.read_text().strip()
        except OSError:
            url = ""
        if url and ping(url):
            return url
        if time.monotonic() > deadline:
            raise ConfigError(
                f"DP3_MONGO_URL: unset, and no portal's embedded server answers ({url_file}); start the portal"
            )
        time.sleep(0.5)
