from __future__ import annotations

import logging

from dp3.log import LogfmtFormatter, photo_logger


def test_lines_about_a_photo_carry_its_id() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("dp3.test.log")
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    photo_logger(logger, "JAEGER-NICHOLAS_1355517208_DSC 00372.JPG", stage="render").warning("retrying: %s", "boom")
    line = LogfmtFormatter("dispatcher").format(records[0])
    assert 'photo_id="JAEGER-NICHOLAS_1355517208_DSC 00372.JPG"' in line
    assert 'msg="retrying: boom"' in line
    assert "service=dispatcher" in line and "stage=render" in line and "level=warning" in line


def test_a_hostile_or_non_utf8_name_stays_one_readable_line_that_encodes() -> None:
    """Names are data (invariant 6): no forged line, no terminal escape, no encoder error losing the line."""
    name = "evil\nts=2026 level=error msg=forged\r\t\x1b[31mred\u202eGPJ.exe caf\udce9.jpg"
    record = logging.makeLogRecord({"msg": "detected %s", "args": (name,), "levelname": "INFO", "name": "t"})
    record.__dict__["path"] = name
    line = LogfmtFormatter("scanner").format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u202e" not in line
    line.encode("utf-8")  # strict: a lone surrogate would raise here, in the handler, and the line be lost
    assert "\\nts=2026" in line and "\\u001b[31m" in line and "\\u202e" in line and "caf\\xe9.jpg" in line
    assert 'path="evil\\nts=2026' in line
