"""The dispatcher's own ``DP3_*`` settings, on top of the shared ones."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from dp3 import ports
from dp3.settings import Settings, renamed

DEFAULT_MAX_PIXELS = 200_000_000
PASSWORD_FILE_NAME = "work-queue-password"  # noqa: S105 - the name of the file, not a password

WorkerProvider = Literal["local", "condor", "none"]
"""Who starts the workers: ``work_queue_factory -T local`` or ``-T condor``, or someone else (``none``)."""


class DispatcherSettings(Settings):
    """How the dispatcher runs its Work Queue manager and provisions workers."""

    # Workers: the provider keeps between workers_min and workers_max of them, by demand.
    worker_provider: WorkerProvider = Field(
        default="local",
        validation_alias=renamed("worker_provider", "DP3_WORK_QUEUE_BATCH"),
        description="who starts the workers: local or condor (work_queue_factory -T), none (started elsewhere)",
    )
    workers_min: int = Field(default=0, ge=0)
    workers_max: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        validation_alias=renamed("workers_max", "DP3_WORKERS"),
        description="the one limit on workers: renders at once (default: the cores, at least workers_min)",
    )
    worker_idle_timeout: int = Field(default=60, ge=2, description="seconds an idle worker stays before leaving")
    worker_keepalive_interval: int = Field(default=30, ge=1, description="seconds between checks of a silent worker")
    worker_keepalive_timeout: int = Field(default=30, ge=1, description="seconds a worker has to answer a check")
    work_queue_port: int = Field(
        default=ports.WORK_QUEUE, ge=0, le=65535, description="0: the first free port from 1024"
    )
    work_queue_host: str | None = Field(default=None, description="how workers reach the manager (default: this host)")
    work_queue_name: str | None = Field(default=None, description="project name; set it to advertise to a catalog")
    work_queue_scratch: Path | None = None
    work_queue_password_file: Path | None = Field(
        default=None, description="the workers' shared secret (default: generated once in $DP3_HOME)"
    )
    condor_requirements: str | None = None
    # The render.
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=1)
    render_batch: int = Field(
        default=16, ge=1, le=64, description="most photos per render task when a backlog waits (1 = one per task)"
    )
    render_attempts: int = Field(default=3, ge=1, description="tries for a task that returns invalid artifacts")
    bad_worker_block_seconds: int = Field(
        default=120, ge=1, description="how long a host that returned invalid artifacts is avoided"
    )
    environment_failures_max: int = Field(default=20, ge=1, description="worker_environment failures before giving up")
    task_memory_mb: int = Field(default=1024, ge=64)
    task_max_seconds: int = Field(default=600, ge=1)
    prefetch: int = Field(default=64, ge=1)

    @field_validator("work_queue_password_file")
    @classmethod
    def _check_password_file(cls, value: Path | None) -> Path | None:
        # A configured file is the operator's: it must be there (it is generated only at the default place).
        if value is None:
            return None
        try:
            size = value.stat().st_size if value.is_file() else None
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        if size is None:
            raise ValueError(f"{value} is not a file")
        if size == 0:
            raise ValueError(f"{value} is empty")
        return value

    @model_validator(mode="after")
    def _check_workers(self) -> DispatcherSettings:
        if "workers_max" not in self.model_fields_set:
            object.__setattr__(self, "workers_max", max(self.workers_max, self.workers_min))
        if self.workers_min > self.workers_max:
            raise ValueError(f"DP3_WORKERS_MIN ({self.workers_min}) is above DP3_WORKERS_MAX ({self.workers_max})")
        if self.work_queue_scratch is None:
            object.__setattr__(self, "work_queue_scratch", self.home / "work-queue")
        return self

    @property
    def password_file(self) -> Path:
        """The workers' password: the configured file, else ``$DP3_HOME/work-queue-password`` (made at start)."""
        return self.work_queue_password_file or self.home / PASSWORD_FILE_NAME

    @property
    def scratch_dir(self) -> Path:
        assert self.work_queue_scratch is not None
        return self.work_queue_scratch
