"""The ``main()`` every service shares: settings, logs, signals, health, then its App.

Entry points only wire, check and start (snuba's habit): each ``__main__``
calls :func:`run_service` with its name, its Settings class and its App class
(:class:`dp3.app.ServiceApp`), in that order of events:

1. settings from ``DP3_*`` (a bad value: exit 2, one line naming it);
2. logs, and SIGTERM/SIGINT turned into a stop event;
3. the App, constructed: no I/O, so nothing can half-happen before step 4;
4. ``/metrics`` and ``/healthz`` (unless the App serves its own, as the
   portal's web app does), answering from the App's ``health`` at once, so
   a probe sees "starting" rather than a refused connection;
5. ``start``, ``run`` until the stop event, and ``stop`` whatever happened.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from dp3 import ports
from dp3.app import ServiceApp
from dp3.errors import ConfigError
from dp3.log import configure_logging
from dp3.serve import HealthCheck, start_metrics_server
from dp3.settings import Settings, load_settings

SettingsT = TypeVar("SettingsT", bound=Settings)

log = logging.getLogger(__name__)


def load_or_exit(service: str, cls: type[SettingsT]) -> SettingsT:
    """Settings from the environment, or exit 2 with one line naming the bad variable."""
    try:
        return load_settings(cls)
    except ConfigError as exc:
        print(f"dp3-{service}: bad configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set (the main thread's handlers; a service's loops watch it)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def serve_health(service: str, settings: Settings, health: HealthCheck) -> None:
    """``/metrics`` and ``/healthz`` on the service's port, or exit 2 naming DP3_METRICS_PORT."""
    port = settings.metrics_port if settings.metrics_port is not None else ports.METRICS.get(service, 0)
    try:
        start_metrics_server(port, health)
    except OSError as exc:
        print(f"dp3-{service}: bad configuration: DP3_METRICS_PORT: cannot listen on {port}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run_service(
    service: str,
    settings_class: type[SettingsT],
    build: Callable[[SettingsT], ServiceApp],
    *,
    metrics_server: bool = True,
) -> None:
    """The whole life of one service process; see the module docstring for the order."""
    settings = load_or_exit(service, settings_class)
    configure_logging(service, settings.log_level)
    stop = stop_on_signals()
    app = build(settings)
    if metrics_server:
        serve_health(service, settings, app.health)
    try:
        app.start()
        app.run(stop)
    finally:
        log.info("stopping")
        app.stop()
