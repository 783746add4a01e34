"""Entry point of the archiver: :func:`dp3.service.run_service` with its settings and App."""

from __future__ import annotations

from dp3.service import run_service
from dp3_archiver.app import ArchiverApp
from dp3_archiver.settings import ArchiverSettings


def main() -> None:
    run_service("archiver", ArchiverSettings, ArchiverApp)


if __name__ == "__main__":
    main()
