"""One settings model for every DP3 service, read from ``DP3_*`` variables.

Settings are built once, in a service's ``main()``, and passed down; nothing
else reads ``os.environ`` (reading configuration at import time makes tests
and replicas disagree about what they run with). Services that need more add
fields in a subclass, with the same prefix.

A bad value stops start-up with one line that names the variable and what is
wrong with it: :func:`load_settings` turns pydantic's report into
:class:`~dp3.errors.ConfigError`.
"""

from __future__ import annotations

import os
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, TypeVar, overload

from pydantic import AliasChoices, AnyUrl, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dp3.errors import ConfigError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)
"""Any ``DP3_*`` settings model: a service's (a :class:`Settings`) or the field agent's, which runs without one."""


def renamed(field: str, *old_names: str) -> AliasChoices:
    """The environment names a renamed setting is read from: ``DP3_<FIELD>``, then its old names.

    The ``DP3_*`` variables are the operators' interface: a setting that gets a
    clearer name keeps reading its old one, so no env file or compose override
    breaks. The new name wins when both are set. Tests and flags still pass the
    field's name (``validate_by_name``). Use as ``Field(validation_alias=...)``.
    """
    return AliasChoices(f"DP3_{field.upper()}", *old_names)


class Settings(BaseSettings):
    """What every service needs to know about this installation."""

    model_config = SettingsConfigDict(env_prefix="DP3_", extra="ignore", frozen=True, validate_by_name=True)

    home: Path = Path("./var")
    inbox: Path | None = None
    staging: Path | None = None
    previews: Path | None = None
    """Previews field devices send ahead of the originals (docs/field-uploads.md): intake writes, portal reads."""
    # NoDecode: a comma-separated list, not JSON, so an operator can write
    # DP3_STORES=/mnt/a,/mnt/b as in any shell profile.
    stores: Annotated[tuple[Path, ...], NoDecode] = ()
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    mongo_url: str | None = None
    timezone: str = "UTC"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    log_level: str = "INFO"

    @field_validator("stores", mode="before")
    @classmethod
    def _split_stores(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",")]
            if any(not part for part in parts):
                raise ValueError("empty store path in the comma-separated list")
            return tuple(Path(part) for part in parts)
        return value

    @field_validator("amqp_url")
    @classmethod
    def _check_amqp_url(cls, value: str) -> str:
        url = AnyUrl(value)
        if url.scheme not in ("amqp", "amqps"):
            raise ValueError(f"expected an amqp:// or amqps:// URL, got scheme {url.scheme!r}")
        return value

    @field_validator("mongo_url")
    @classmethod
    def _check_mongo_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("expected a mongodb:// or mongodb+srv:// URL (unset it for the embedded server)")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Jerusalem)") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR")
        return level

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        # Frozen model: defaults that depend on DP3_HOME are filled in here.
        if self.inbox is None:
            object.__setattr__(self, "inbox", self.home / "inbox")
        if self.staging is None:
            object.__setattr__(self, "staging", self.home / "staging")
        if not self.stores:
            object.__setattr__(self, "stores", (self.home / "archive-a", self.home / "archive-b"))
        problem = overlapping_places(self.inbox_dir, self.staging_dir, self.stores)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def inbox_dir(self) -> Path:
        assert self.inbox is not None  # filled in by _derive_paths
        return self.inbox

    @property
    def staging_dir(self) -> Path:
        assert self.staging is not None  # filled in by _derive_paths
        return self.staging

    @property
    def previews_dir(self) -> Path:
        """``DP3_PREVIEWS``, else ``$DP3_HOME/previews``."""
        return self.previews or self.home / "previews"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def overlapping_places(inbox: Path, staging: Path, stores: tuple[Path, ...]) -> str | None:
    """Why the inbox, staging and the stores are not separate trees, or None. Pure but for ``realpath``.

    A store inside the inbox would be scanned as new uploads and its copies
    collected; a store inside staging would be cleared with it; staging inside
    the inbox would put artifacts where photographers drop photos (the brief:
    artifacts never enter the inbox). Real paths, so a symlink is seen through;
    stores compared with each other are :mod:`dp3.store_places`' job.
    """
    named = [("DP3_INBOX", inbox), ("DP3_STAGING", staging)] + [("DP3_STORES", store) for store in stores]
    places = [(f"{name} {path}", name, os.path.realpath(path)) for name, path in named]
    for i, a in enumerate(places):
        for b in places[i + 1 :]:
            if a[1] == b[1] == "DP3_STORES":
                continue
            for outer, inner in ((a, b), (b, a)):
                if inner[2] == outer[2] or inner[2].startswith(outer[2].rstrip("/") + "/"):
                    return f"{inner[0]} lies inside {outer[0]}: the inbox, staging and each store must be apart"
    return None


@overload
def load_settings(cls: None = None, **overrides: Any) -> Settings: ...
@overload
def load_settings(cls: type[SettingsT], **overrides: Any) -> SettingsT: ...
def load_settings(cls: type[BaseSettings] | None = None, **overrides: Any) -> BaseSettings:
    """Build settings from the environment, or raise ConfigError with one line.

    ``overrides`` are for tests and command-line flags; they win over the
    environment.
    """
    model = cls or Settings
    try:
        return model(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(model, exc)) from None


def _describe(cls: type[BaseSettings], exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "settings"
        prefix = str(cls.model_config.get("env_prefix") or "DP3_")
        name = f"{prefix}{field.upper()}" if field in cls.model_fields else field
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        shown = f" (got {value!r})" if isinstance(value, str | int | float) else ""
        problems.append(f"{name}: {message}{shown}" if error["loc"] else message)
    return "; ".join(problems)
