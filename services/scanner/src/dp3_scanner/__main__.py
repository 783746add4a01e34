"""Entry point of the scanner service: wire, check, start."""

from __future__ import annotations

from dp3.service import start_service
from dp3_scanner.app import ScannerApp
from dp3_scanner.settings import ScannerSettings


def main() -> None:
    holder: list[ScannerApp] = []

    def health() -> tuple[bool, str]:
        return holder[0].health() if holder else (False, "starting")

    context = start_service("scanner", ScannerSettings, health)
    holder.append(ScannerApp(context.settings))
    holder[0].run(context.stop)


if __name__ == "__main__":
    main()
