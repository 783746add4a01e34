"""Entry point of the portal: wire, check, start (``dp3-portal``).

Settings from ``DP3_*``; the embedded MongoDB-wire server when no
``DP3_MONGO_URL`` is given; then uvicorn serves the app (which also serves
``/metrics`` and ``/healthz`` on the portal's own port).
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

from dp3.errors import ConfigError
from dp3.log import configure_logging
from dp3.service import load_or_exit
from dp3_portal.app import create_app
from dp3_portal.embedded import EmbeddedMongo, mongo_dir
from dp3_portal.settings import PortalSettings

log = logging.getLogger("dp3_portal")


def _stopped(signum: int, frame: FrameType | None) -> None:
    log.info("stopped by signal %d", signum)


def main() -> None:
    settings = load_or_exit("portal", PortalSettings)
    configure_logging("portal", settings.log_level)
    embedded = None
    if not settings.mongo_url:
        embedded = EmbeddedMongo(mongo_dir(settings.home), run_dir=mongo_dir(settings.home))
        try:
            url = embedded.start()
        except ConfigError as exc:
            raise SystemExit(f"dp3-portal: bad configuration: {exc}") from None
        log.info("DP3_MONGO_URL unset: started the embedded MongoDB-wire server at %s", url)
        settings = settings.model_copy(update={"mongo_url": url})
    # uvicorn re-raises the signal that stopped it once it is done; with the
    # default handler that would kill the process before the embedded server
    # is stopped below, so the re-raised signal lands here, harmlessly.
    signal.signal(signal.SIGTERM, _stopped)
    signal.signal(signal.SIGINT, _stopped)
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.portal_host,
            port=settings.portal_port,
            log_config=None,
            access_log=False,
            # Behind the TLS proxy (deploy/caddy) the client is the proxy: believe its
            # X-Forwarded-For, so the login throttle counts each real client, and only its.
            proxy_headers=settings.trusted_proxies is not None,
            forwarded_allow_ips=settings.trusted_proxies,
        )
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
