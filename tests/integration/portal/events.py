"""Journal entries for portal tests: whole photo lifecycles, as the pipeline emits them."""

from __future__ import annotations

import datetime as dt

from dp3.events import ErrorInfo, ErrorKind, JournalEntry, Status


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lifecycle(
    owner: str,
    capture: int,
    name: str,
    *,
    model: str = "Canon EOS 40D",
    stores: tuple[str, ...] = ("/a", "/b"),
    error: ErrorKind | None = None,
    at: float = 1_790_000_000.0,
    sha256: str = "ab" * 32,
    size: int = 1000,
    meta: dict[str, object] | None = None,
) -> list[JournalEntry]:
    """Detected -> Processed (or Failed) -> Archived -> Collected for one photo."""
    photo_id = f"{owner}_{capture}_{name}"
    day = dt.datetime.fromtimestamp(capture, dt.UTC).strftime("%Y-%m-%d")
    first = JournalEntry(
        id=photo_id,
        status=Status.DETECTED,
        datetime=capture,
        owner=owner,
        path=f"/inbox/{owner}/{name}",
        sha256=sha256,
        size=size,
        service="scanner",
        at=iso(at),
    )
    if error is None:
        second = first.next(
            Status.PROCESSED, service="dispatcher", meta=meta or {"model": model, "width": 640}, at=iso(at + 1)
        )
    else:
        info = ErrorInfo(stage="render", kind=error, message=f"render refused it ({error.value})")
        second = first.next(Status.FAILED, service="dispatcher", error=info, at=iso(at + 1))
    archived = second.next(
        Status.ARCHIVED, service="archiver", archives=[f"{store}/{day}" for store in stores], at=iso(at + 2)
    )
    collected = archived.next(Status.COLLECTED, service="archiver", at=iso(at + 3))
    return [first, second, archived, collected]
