"""Entry point of the dispatcher: :func:`dp3.service.run_service` with its settings and App."""

from __future__ import annotations

from dp3.service import run_service
from dp3_dispatcher.app import DispatcherApp
from dp3_dispatcher.settings import DispatcherSettings


def main() -> None:
    run_service("dispatcher", DispatcherSettings, DispatcherApp)


if __name__ == "__main__":
    main()
