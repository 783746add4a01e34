"""The scanner's own ``DP3_*`` settings, on top of the shared ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from dp3.settings import Settings


class ScannerSettings(Settings):
    """How long a file must rest before it counts as uploaded, and how often to look again."""

    stable_seconds: float = Field(default=5.0, gt=0, description="size+mtime unchanged this long = upload finished")
    incomplete_seconds: float = Field(
        default=60.0,
        gt=0,
        description="how long a JPEG/PNG without its end marker must rest (an upload stalled mid-file)",
    )
    rescan_seconds: float = Field(default=60.0, gt=0, description="full rescan period, the safety net under inotify")
    redrive_seconds: float = Field(default=600.0, gt=0, description="first re-emit of a file still in the inbox")
    redrive_max_seconds: float = Field(default=86400.0, gt=0, description="cap of the growing re-drive interval")
    scanner_index: Path | None = Field(
        default=None, description="SQLite index; default $DP3_HOME/scanner/index.sqlite3"
    )
    watch: bool = Field(default=True, description="use inotify (watchdog); false = rescans only")

    @model_validator(mode="after")
    def _derive_index(self) -> ScannerSettings:
        if self.scanner_index is None:
            object.__setattr__(self, "scanner_index", self.home / "scanner" / "index.sqlite3")
        return self

    @property
    def index_path(self) -> Path:
        assert self.scanner_index is not None  # filled in by _derive_index
        return self.scanner_index
