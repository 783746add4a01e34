"""The archiver's own settings, on top of the shared ``DP3_*`` ones."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from dp3.settings import Settings


class ArchiverSettings(Settings):
    """``DP3_FIXITY_SECONDS``, ``DP3_STORE_RESERVE_BYTES``, ``DP3_ARCHIVE_WORKERS``, ``DP3_RETRY_DELAYS``."""

    fixity_seconds: float = Field(default=0.0, ge=0, description="periodic fixity audit; 0 = off")
    store_reserve_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="free space a store keeps after a write; below it the store counts as full",
    )
    archive_workers: int = Field(default=4, ge=1, le=64, description="photos handled at once per consumer")
    retry_delays: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(), description="seconds between retries of a held-back photo, e.g. 1,5,30,120 (empty: defaults)"
    )

    @field_validator("retry_delays", mode="before")
    @classmethod
    def _split_delays(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            delays = tuple(float(part) for part in parts)
            if any(delay <= 0 for delay in delays):
                raise ValueError("every delay must be a positive number of seconds")
            return delays
        return value
