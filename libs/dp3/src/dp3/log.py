"""Structured logging: one logfmt line per record, with the photo id when there is one.

Pass the photo id as ``extra={"photo_id": ...}`` (or use :func:`photo_logger`)
and every line about a photo carries ``photo_id=...``, so an operator can grep
a photo's whole story across services.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _quote(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-_./:@+" for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=... service=... logger=... photo_id=... msg="..." key=value``."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        fields: dict[str, object] = {
            "ts": ts,
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
        }
        photo_id = getattr(record, "photo_id", None)
        if photo_id is not None:
            fields["photo_id"] = photo_id
        fields["msg"] = record.getMessage()
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key != "photo_id" and not key.startswith("_"):
                fields[key] = value
        line = " ".join(f"{key}={_quote(value)}" for key, value in fields.items())
        if record.exc_info:
            line += " error=" + _quote(self.formatException(record.exc_info))
        return line


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send logfmt lines to stderr; called once, from a service's main()."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.WARNING)


class PhotoLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger bound to one photo id."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


def photo_logger(logger: logging.Logger, photo_id: str, **context: object) -> PhotoLogger:
    """``photo_logger(log, entry.id).info("rendered")`` carries the id on every line."""
    extra: Mapping[str, object] = {"photo_id": photo_id, **context}
    return PhotoLogger(logger, extra)
