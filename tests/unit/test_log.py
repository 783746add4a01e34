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
