"""The order of sending, the backoff and the deletion rule (dp3_field.plan): pure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dp3_field import plan
from dp3_field.plan import OriginalState, Photo, PreviewState


def photo(number: int, day: str, taken: float, **changes: object) -> Photo:
    base = Photo(
        id=number,
        path=f"/card/{number}.jpg",
        name=f"{number}.jpg",
        sha256=f"{number:064x}",
        size=1000,
        day=day,
        taken=taken,
        preview=PreviewState.PENDING,
        original=OriginalState.PENDING,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def drain(photos: list[Photo]) -> list[tuple[str, int]]:
    """Carry out every step as if it succeeded at once; the sequence of (step, photo id)."""
    done: list[tuple[str, int]] = []
    by_id = {p.id: p for p in photos}
    for _ in range(100):
        step = plan.next_step(by_id.values(), now=0.0, free_space=False, receipt_every=60)
        if isinstance(step, plan.Idle):
            return done
        assert not isinstance(step, plan.FreeSpace | plan.AskReceipts)
        if isinstance(step, plan.SendPreview):
            by_id[step.photo.id] = replace(step.photo, preview=PreviewState.SENT)
            done.append(("preview", step.photo.id))
        else:
            by_id[step.photo.id] = replace(step.photo, original=OriginalState.SENT, archived=True)
            done.append(("original", step.photo.id))
    raise AssertionError("never idle")


def test_every_preview_goes_first_newest_day_first_then_originals_oldest_first() -> None:
    photos = [
        photo(1, "2026-11-29", 100.0),
        photo(2, "2026-12-01", 300.0),
        photo(3, "2026-11-30", 200.0),
        photo(4, "2026-12-01", 250.0),
        photo(5, "2025-12-31", 50.0),
    ]
    assert drain(photos) == [
        ("preview", 4),  # the newest day, in the order taken within it
        ("preview", 2),
        ("preview", 3),
        ("preview", 1),
        ("preview", 5),
        ("original", 5),  # then the oldest original first
        ("original", 1),
        ("original", 3),
        ("original", 4),
        ("original", 2),
    ]


def test_a_new_preview_overtakes_an_original_in_the_middle_of_its_upload() -> None:
    uploading = photo(1, "2026-11-30", 100.0, preview=PreviewState.SENT, offset=500)
    arrived = photo(2, "2026-12-01", 200.0)
    step = plan.next_step([uploading, arrived], now=0.0, free_space=False, receipt_every=60)
    assert step == plan.SendPreview(arrived)
    after = replace(arrived, preview=PreviewState.SENT)
    assert plan.next_step([uploading, after], now=0.0, free_space=False, receipt_every=60) == plan.SendOriginal(
        uploading
    )


def test_a_photo_without_preview_still_sends_its_original_and_a_refused_one_sends_nothing() -> None:
    no_preview = photo(1, "2026-12-01", 1.0, preview=PreviewState.NONE)
    refused = photo(2, "2026-12-01", 0.5, preview=PreviewState.NONE, original=OriginalState.REFUSED)
    step = plan.next_step([no_preview, refused], now=0.0, free_space=False, receipt_every=60)
    assert step == plan.SendOriginal(no_preview)


def test_receipts_are_asked_for_sent_originals_until_archived_at_the_given_interval() -> None:
    sent = photo(1, "2026-12-01", 1.0, preview=PreviewState.SENT, original=OriginalState.SENT)
    assert plan.next_step([sent], now=1000.0, free_space=False, receipt_every=60) == plan.AskReceipts((sent,))
    asked = replace(sent, receipt_asked_at=970.0)
    assert plan.next_step([asked], now=1000.0, free_space=False, receipt_every=60) == plan.Idle()
    assert plan.next_step([asked], now=1030.0, free_space=False, receipt_every=60) == plan.AskReceipts((asked,))
    archived = replace(asked, archived=True)
    assert plan.next_step([archived], now=5000.0, free_space=False, receipt_every=60) == plan.Idle()


@pytest.mark.parametrize(
    ("changes", "free_space", "allowed"),
    [
        ({"original": OriginalState.SENT, "archived": True}, True, True),
        ({"original": OriginalState.SENT, "archived": True}, False, False),  # the default deletes nothing
        ({"original": OriginalState.SENT, "archived": False}, True, False),  # no receipt yet
        ({"original": OriginalState.ALREADY, "archived": True}, True, False),  # not sent by this agent
        ({"original": OriginalState.REFUSED, "archived": True}, True, False),
        ({"original": OriginalState.PENDING, "archived": True}, True, False),
        ({"original": OriginalState.SENT, "archived": True, "deleted": True}, True, False),
    ],
)
def test_a_local_original_may_be_freed_only_when_sent_by_this_agent_and_archived(
    changes: dict[str, object], free_space: bool, allowed: bool
) -> None:
    candidate = photo(1, "2026-12-01", 1.0, preview=PreviewState.SENT, **changes)
    assert plan.may_delete(candidate, free_space) is allowed
    step = plan.next_step([candidate], now=0.0, free_space=free_space, receipt_every=60)
    assert isinstance(step, plan.FreeSpace) is allowed


def test_the_last_check_before_deleting_is_the_local_file_hashed_again() -> None:
    archived = photo(1, "2026-12-01", 1.0, original=OriginalState.SENT, archived=True)
    assert plan.still_the_same_bytes(archived, archived.sha256)
    assert not plan.still_the_same_bytes(archived, "f" * 64)  # edited since it was sent
    assert not plan.still_the_same_bytes(archived, None)  # gone or unreadable


def test_backoff_doubles_then_stays_at_the_cap_exactly() -> None:
    delays = [plan.backoff_seconds(n, base=1.0, cap=60.0) for n in range(0, 10)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert plan.backoff_seconds(3, cap=60.0, jitter=0.99) == pytest.approx(4 * 1.2475)
    assert plan.backoff_seconds(1000, cap=60.0, jitter=0.99) == 60.0  # "every minute" means every minute


def test_every_due_receipt_is_one_question_oldest_first_and_never_larger_than_the_intake_takes() -> None:
    from dp3_intake.rules import RECEIPTS_PER_REQUEST

    assert plan.RECEIPTS_PER_QUESTION <= RECEIPTS_PER_REQUEST
    many = plan.RECEIPTS_PER_QUESTION + 5
    sent = [
        photo(number, "2026-12-01", float(many - number), preview=PreviewState.SENT, original=OriginalState.SENT)
        for number in range(many)
    ]
    recent = replace(sent[0], receipt_asked_at=990.0)  # asked 10 s ago: not due
    archived = replace(sent[1], archived=True)  # nothing more to ask
    step = plan.next_step([recent, archived, *sent[2:]], now=1000.0, free_space=False, receipt_every=60)
    assert isinstance(step, plan.AskReceipts)
    assert len(step.photos) == plan.RECEIPTS_PER_QUESTION
    assert [p.taken for p in step.photos] == sorted(p.taken for p in step.photos)  # oldest first
    assert recent not in step.photos and archived not in step.photos
    assert step.photos[0] == sent[-1]
