"""Entry point of the dispatcher: wire, check, start, wait for SIGTERM."""

from __future__ import annotations

import logging

from dp3.service import start_service
from dp3_dispatcher.app import DispatcherApp
from dp3_dispatcher.settings import DispatcherSettings

log = logging.getLogger("dp3_dispatcher")


def main() -> None:
    holder: list[DispatcherApp] = []

    def health() -> tuple[bool, str]:
        return holder[0].healthy() if holder else (False, "starting")

    context = start_service("dispatcher", DispatcherSettings, health)
    app = DispatcherApp(context.settings)
    holder.append(app)
    app.start()
    try:
        app.run_until(context.stop)
    finally:
        log.info("stopping")
        app.stop()


if __name__ == "__main__":
    main()
