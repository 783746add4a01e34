"""The scanner's decision on a finished file, rule by rule (``dp3_scanner.decision``): pure, in milliseconds."""

from __future__ import annotations

import pytest

from dp3.events import Status
from dp3_scanner import decision as rules
from dp3_scanner.decision import ConsiderAgain, Emit, Hold, Ignore, Read, RefreshKey
from dp3_scanner.index import ArchivedPhoto, FileKey, ScanOutcome, SeenFile
from dp3_scanner.names import IgnoreReason
from dp3_scanner.outcome import Upload, decide

KEY: FileKey = (4096, 1_355_517_208_000_000_000, 77, 1_355_517_208_000_000_001)
TOUCHED: FileKey = (4096, 1_400_000_000_000_000_000, 77, 1_400_000_000_000_000_001)
GREW: FileKey = (8192, 1_400_000_000_000_000_000, 77, 1_400_000_000_000_000_001)
LIMITS = rules.HoldLimits(stable_seconds=2.0, incomplete_seconds=60.0)
NO_HOLD = rules.HoldLimits(stable_seconds=2.0, incomplete_seconds=2.0)


def opened(
    name: str = "DSC00372.JPG",
    key_at_open: FileKey = KEY,
    sniffed: str | None = "jpeg",
    cut_off: bool = False,
    held: float = 0.0,
) -> rules.Opened:
    return rules.Opened(name, KEY, key_at_open, sniffed, cut_off, held)


OPEN_CASES: list[tuple[str, rules.Opened, rules.HoldLimits, rules.Action]] = [
    # 1. Replaced between lstat and open: watched again from the new stat, whatever else holds.
    ("replaced", opened(key_at_open=GREW), LIMITS, ConsiderAgain(GREW)),
    ("replaced, not a photo either", opened("notes.txt", GREW, None), LIMITS, ConsiderAgain(GREW)),
    # 2. Neither a photo extension nor a photo's first bytes: ignored.
    ("no extension, no photo bytes", opened("README", sniffed=None), LIMITS, Ignore(IgnoreReason.UNSUPPORTED_TYPE)),
    ("other extension, no photo bytes", opened("a.txt", sniffed=None), LIMITS, Ignore(IgnoreReason.UNSUPPORTED_TYPE)),
    (
        "other extension, cut off bytes",
        opened("a.txt", sniffed=None, cut_off=True),
        LIMITS,
        Ignore(IgnoreReason.UNSUPPORTED_TYPE),
    ),
    # ... either one is enough to be read: the extension (any case) whatever the bytes, or the bytes.
    ("photo extension, no photo bytes", opened("DSC.jpeg", sniffed=None), LIMITS, Read()),
    ("photo extension in lower case", opened("img.heic", sniffed="heif"), LIMITS, Read()),
    ("no extension, JPEG bytes", opened("IMG_0001", sniffed="jpeg"), LIMITS, Read()),
    ("odd extension, PNG bytes", opened("shot.bin", sniffed="png"), LIMITS, Read()),
    # 3. Cut off, never held, the hold longer than the window: held for DP3_INCOMPLETE_SECONDS, once.
    ("cut off", opened(cut_off=True), LIMITS, Hold(60.0)),
    ("cut off, no extension", opened("IMG_0001", cut_off=True), LIMITS, Hold(60.0)),
    ("cut off, held before", opened(cut_off=True, held=60.0), LIMITS, Read()),
    ("cut off, hold not longer than the window", opened(cut_off=True), NO_HOLD, Read()),
    (
        "cut off, hold shorter than the window",
        opened(cut_off=True),
        rules.HoldLimits(stable_seconds=5.0, incomplete_seconds=3.0),
        Read(),
    ),
    # 4. Otherwise read it.
    ("whole JPEG", opened(), LIMITS, Read()),
    ("whole JPEG, no hold configured", opened(), NO_HOLD, Read()),
]


@pytest.mark.parametrize(
    ("facts", "limits", "expected"), [case[1:] for case in OPEN_CASES], ids=[case[0] for case in OPEN_CASES]
)
def test_on_open(facts: rules.Opened, limits: rules.HoldLimits, expected: rules.Action) -> None:
    assert rules.on_open(facts, limits) == expected


READ_CASES: list[tuple[str, FileKey, int, ConsiderAgain | None]] = [
    # 5. Changed while read (its stat moved, or the bytes read are not its size): not finished after all.
    ("unchanged", KEY, 4096, None),
    ("stat moved", TOUCHED, 4096, ConsiderAgain(TOUCHED)),
    ("grew", GREW, 8192, ConsiderAgain(GREW)),
    ("fewer bytes read than its size", KEY, 1000, ConsiderAgain(KEY)),
    ("more bytes read than its size", KEY, 5000, ConsiderAgain(KEY)),
]


@pytest.mark.parametrize(
    ("after", "size_read", "expected"), [case[1:] for case in READ_CASES], ids=[case[0] for case in READ_CASES]
)
def test_on_read(after: FileKey, size_read: int, expected: ConsiderAgain | None) -> None:
    assert rules.on_read(KEY, after, size_read) == expected


SHA = "ab" * 32
OTHER_SHA = "cd" * 32
PHOTO_ID = "JAEGER-NICHOLAS_1355517208_DSC00372.JPG"


def upload(owner: str | None = "JAEGER-NICHOLAS", sha256: str = SHA) -> Upload:
    path = f"/inbox/{owner}/DSC00372.JPG" if owner else "/inbox/DSC00372.JPG"
    return Upload(path, "DSC00372.JPG", owner, 1355517208, sha256, 4096, 1e9)


def emitted(status: Status, sha256: str = SHA, archived: ArchivedPhoto | None = None) -> SeenFile:
    """The index's record of a path whose last event had ``status``."""
    owner = None if status is Status.FAILED else "JAEGER-NICHOLAS"
    entry = decide(upload(owner, sha256), archived, PHOTO_ID)
    assert entry.status is status
    return SeenFile(upload(owner).path, KEY, ScanOutcome.DETECTED, sha256=sha256, event=entry.to_json().decode())


ELSEWHERE = ArchivedPhoto("REEDER-PHILIP_1_x.jpg", ["/a/2012-12-14", "/b/2012-12-14"])
SAME_ID_WAITING = ArchivedPhoto(PHOTO_ID, ["/a/2012-12-14"], collected=False)
SAME_ID_COLLECTED = ArchivedPhoto(PHOTO_ID, ["/a/2012-12-14"], collected=True)

HASHED_CASES: list[tuple[str, Upload, ArchivedPhoto | None, SeenFile | None, str]] = [
    # 6. The event: Failed/no_owner in the root; Duplicate of an archived photo collected or under another id; Detected.
    ("new photo", upload(), None, None, "emit detected"),
    ("inbox root", upload(owner=None), None, None, "emit failed no_owner"),
    ("inbox root, archived bytes", upload(owner=None), ELSEWHERE, None, "emit failed no_owner"),
    ("archived under another id", upload(), ELSEWHERE, None, "emit duplicate of REEDER-PHILIP_1_x.jpg"),
    ("archived, collected", upload(), SAME_ID_COLLECTED, None, f"emit duplicate of {PHOTO_ID}"),
    ("archived, original still waiting", upload(), SAME_ID_WAITING, None, "emit detected"),
    # 7. Same bytes and same status as the last event for the path: nothing new, only the new stat.
    ("touched", upload(), None, emitted(Status.DETECTED), "refresh key"),
    ("touched duplicate", upload(), ELSEWHERE, emitted(Status.DUPLICATE, archived=ELSEWHERE), "refresh key"),
    ("touched in the root", upload(owner=None), None, emitted(Status.FAILED), "refresh key"),
    # 8. ... anything else is said: new bytes, a new status, or a record with no event.
    ("new bytes at the path", upload(), None, emitted(Status.DETECTED, sha256=OTHER_SHA), "emit detected"),
    ("collected meanwhile", upload(), SAME_ID_COLLECTED, emitted(Status.DETECTED), f"emit duplicate of {PHOTO_ID}"),
    (
        "was unreadable",
        upload(),
        None,
        SeenFile("/inbox/JAEGER-NICHOLAS/DSC00372.JPG", KEY, ScanOutcome.FAILED, "unreadable"),
        "emit detected",
    ),
    (
        "was set aside after an error, same bytes",
        upload(),
        None,
        SeenFile("/inbox/JAEGER-NICHOLAS/DSC00372.JPG", KEY, ScanOutcome.FAILED, "error:KeyError", sha256=SHA),
        "emit detected",
    ),
]


def picture(action: RefreshKey | Emit) -> str:
    if isinstance(action, RefreshKey):
        return "refresh key"
    entry = action.entry
    text = f"emit {entry.status.value.lower()}"
    if entry.error is not None:
        text += f" {entry.error.kind.value}"
    if entry.duplicate_of is not None:
        text += f" of {entry.duplicate_of}"
    return text


@pytest.mark.parametrize(
    ("read", "archived", "previous", "expected"),
    [case[1:] for case in HASHED_CASES],
    ids=[case[0] for case in HASHED_CASES],
)
def test_on_hashed(read: Upload, archived: ArchivedPhoto | None, previous: SeenFile | None, expected: str) -> None:
    assert picture(rules.on_hashed(read, TOUCHED, archived, PHOTO_ID, previous)) == expected


def test_refresh_key_carries_the_new_stat() -> None:
    assert rules.on_hashed(upload(), TOUCHED, None, PHOTO_ID, emitted(Status.DETECTED)) == RefreshKey(TOUCHED)


def test_the_event_carries_the_assigned_id_and_the_facts_read() -> None:
    action = rules.on_hashed(upload(), KEY, None, PHOTO_ID + "~abcd", None)
    assert isinstance(action, Emit)
    entry = action.entry
    assert (entry.id, entry.sha256, entry.size, entry.datetime) == (PHOTO_ID + "~abcd", SHA, 4096, 1355517208)
    assert entry.status is Status.DETECTED and entry.error is None
