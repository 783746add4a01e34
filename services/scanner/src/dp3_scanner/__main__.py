"""Entry point of the scanner service: :func:`dp3.service.run_service` with its settings and App."""

from __future__ import annotations

from dp3.service import run_service
from dp3_scanner.app import ScannerApp
from dp3_scanner.settings import ScannerSettings


def main() -> None:
    run_service("scanner", ScannerSettings, ScannerApp)


if __name__ == "__main__":
    main()
