"""The README's settings table names every DP3_* variable a service reads."""

from __future__ import annotations

import re

import pytest
from pydantic_settings import BaseSettings

from dp3_archiver.settings import ArchiverSettings
from dp3_dispatcher.settings import DispatcherSettings
from dp3_field.settings import FieldSettings
from dp3_intake.settings import IntakeSettings
from dp3_portal.settings import PortalSettings
from dp3_scanner.settings import ScannerSettings
from tests.conftest import REPO


def documented() -> set[str]:
    rows = [line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("| `DP3_")]
    return {name for row in rows for name in re.findall(r"`(DP3_[A-Z0-9_]+)`", row.split("|")[1])}


@pytest.mark.parametrize(
    "settings",
    [ScannerSettings, DispatcherSettings, ArchiverSettings, PortalSettings, IntakeSettings, FieldSettings],
)
def test_every_setting_is_in_the_readme_table(settings: type[BaseSettings]) -> None:
    prefix = settings.model_config.get("env_prefix") or "DP3_"
    read = {f"{prefix}{name.upper()}" for name in settings.model_fields}
    missing = sorted(read - documented())
    assert not missing, f"{settings.__name__} reads settings the README's table does not list: {missing}"
