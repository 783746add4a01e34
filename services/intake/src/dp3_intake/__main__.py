"""Entry point of the intake: :func:`dp3.service.run_service` with its settings and App."""

from __future__ import annotations

from dp3.service import run_service
from dp3_intake.intake_app import IntakeApp
from dp3_intake.settings import IntakeSettings


def main() -> None:
    # The web app serves /metrics and /healthz itself, beside the tus API.
    run_service("intake", IntakeSettings, IntakeApp, metrics_server=False)


if __name__ == "__main__":
    main()
