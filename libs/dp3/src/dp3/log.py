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


_NAMED_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(c: str) -> str:
    """One character as it may stand in a quoted value: a line always stays one line, readable as text.

    File names are data (invariant 6): a name with a newline, an escape
    sequence or a bidi override must not forge a log line or rewrite the
    terminal, and one that is not UTF-8 (a surrogate from ``os.fsdecode``)
    must not make the stream's encoder raise and lose the line.
    """
    named = _NAMED_ESCAPES.get(c)
    if named is not None:
        return named
    if c.isprintable():
        return c
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, as surrogateescape keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _quote(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-_./:@+" for c in text) and text.isprintable():
        return text
    return '"' + "".join(_escape_char(c) for c in text) + '"'


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
