"""One event the catalog cannot take fails alone: the rest of its batch is recorded (names are bytes, issue 14)."""

from __future__ import annotations

import time
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


class Batches(Recorder):
    """Records the size of each batch it is given."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def record(self, entries: Sequence[JournalEntry]) -> int:
        self.sizes.append(len(entries))
        return len(entries)


def test_events_arriving_a_tenth_of_a_second_apart_share_one_batch_by_default() -> None:
    # A photo's events reach the portal spread out; each batch costs the catalog the same few round trips,
    # so the default linger gathers what arrives within a quarter of a second (issue 17: 50 ms made batches
    # of 3-4 events at a cluster's rate). With the old 50 ms the third event below would start a second batch.
    recorder = Batches()
    handler = BatchingHandler(recorder)
    try:
        futures = []
        for photo_id in ("a", "b", "c"):
            futures.append(handler(message(photo_id)))
            time.sleep(0.05)
        for future in futures:
            assert future.result(5) == ()
        assert recorder.sizes == [3]
    finally:
        handler.stop()
