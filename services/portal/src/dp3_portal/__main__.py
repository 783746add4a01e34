"""Entry point of the portal (``dp3-portal``): :func:`dp3.service.run_service` with its settings and App.

The portal's web app serves ``/metrics`` and ``/healthz`` on the portal's
own port, so no separate metrics server is started.
"""

from __future__ import annotations

from dp3.service import run_service
from dp3_portal.app import PortalApp
from dp3_portal.settings import PortalSettings


def main() -> None:
    run_service("portal", PortalSettings, PortalApp, metrics_server=False)


if __name__ == "__main__":
    main()
