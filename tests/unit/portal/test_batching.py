"""One event the catalog cannot take fails alone: the rest of its batch is recorded (names are bytes, issue 14)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dp3.broker import Message
from dp3.events import JournalEntry, Status
from dp3_portal.recorder import BatchingHandler, Recorder


class OneBadEvent(Recorder):
    """Records into a list; any batch holding the bad event raises, as a write of an unstorable document would."""

    def __init__(self) -> None:
        self.recorded: list[str] = []

    def record(self, entries: Sequence[JournalEntry]) -> int:
        if any(entry.id == "bad" for entry in entries):
            raise ValueError("document cannot be encoded")
        self.recorded += [entry.id for entry in entries]
        return len(entries)


def message(photo_id: str) -> Message:
    entry = JournalEntry(id=photo_id, status=Status.DETECTED, datetime=0, path=f"/inbox/A/{photo_id}")
    return Message(entry=entry, redelivered=False, handler_failures=0, retries=0, body=entry.to_json())


def test_a_batch_with_one_bad_event_records_the_others() -> None:
    recorder = OneBadEvent()
    handler = BatchingHandler(recorder, batch=10, linger=0.3)
    try:
        futures = {photo_id: handler(message(photo_id)) for photo_id in ("a", "bad", "c")}
        assert futures["a"].result(5) == () and futures["c"].result(5) == ()
        with pytest.raises(ValueError, match="cannot be encoded"):
            futures["bad"].result(5)
        assert sorted(recorder.recorded) == ["a", "c"]
    finally:
        handler.stop()
