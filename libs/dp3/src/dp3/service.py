"""Process set-up shared by every service's ``main()``: settings, logging, signals, metrics.

Entry points only wire, check and start (snuba's habit): each calls
:func:`start_service` and then runs its own loop until the stop event is set.
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

from dp3 import ports
from dp3.errors import ConfigError
from dp3.log import configure_logging
from dp3.serve import HealthCheck, start_metrics_server
from dp3.settings import Settings, load_settings

SettingsT = TypeVar("SettingsT", bound=Settings)


@dataclass
class ServiceContext(Generic[SettingsT]):
    settings: SettingsT
    stop: threading.Event


def load_or_exit(service: str, cls: type[SettingsT]) -> SettingsT:
    """Settings from the environment, or exit 2 with one line naming the bad variable."""
    try:
        return load_settings(cls)
    except ConfigError as exc:
        print(f"dp3-{service}: bad configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def start_service(service: str, cls: type[SettingsT], health: HealthCheck) -> ServiceContext[SettingsT]:
    """Load settings, configure logs, serve /metrics + /healthz, turn SIGTERM/SIGINT into a stop event."""
    settings = load_or_exit(service, cls)
    configure_logging(service, settings.log_level)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    port = settings.metrics_port if settings.metrics_port is not None else ports.METRICS.get(service, 0)
    try:
        start_metrics_server(port, health)
    except OSError as exc:
        print(f"dp3-{service}: bad configuration: DP3_METRICS_PORT: cannot listen on {port}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return ServiceContext(settings=settings, stop=stop)
