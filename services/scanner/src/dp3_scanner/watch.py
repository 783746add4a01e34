"""inotify, through watchdog: turns filesystem events into hints for the scanner.

Events only say "look at this path soon"; the scanner re-checks everything
itself (lstat, stability, index), so a missed, duplicated or reordered event
costs at most the latency until the next rescan, never correctness.

Only the events that say an upload may have *finished arriving* are asked of
the kernel (:data:`WATCHED`): a name appearing (created, moved in), a writer
closing the file, a name going away. Not every ``write`` (``IN_MODIFY``: one
per chunk a sync client writes) and not every reader's open and close
(``IN_OPEN``, ``IN_CLOSE_NOWRITE``: the scanner's own hash, the dispatcher,
the archiver, each read of each photo): each of those cost the watchdog
thread and then the scanner loop a wake-up and a parse, per photo several
times over, and none of them can tell the scanner anything the stability
check does not (a file still being written is seen changing when its
stability deadline comes, and the writer's close hints it again).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

log = logging.getLogger(__name__)

WATCHED: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileClosedEvent,  # IN_CLOSE_WRITE: a writer is done with the file
    FileDeletedEvent,
    DirDeletedEvent,
]
"""The events asked of the kernel (watchdog builds the inotify mask from them)."""
_UNINTERESTING = frozenset({"opened", "closed_no_write"})  # readers' events, should a watchdog deliver them anyway


class _HintHandler(FileSystemEventHandler):
    def __init__(self, hint: Callable[[str], None]) -> None:
        super().__init__()
        self._hint = hint

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _UNINTERESTING:
            return
        self._hint(os.fsdecode(event.src_path))
        dest = getattr(event, "dest_path", "")
        if dest:
            self._hint(os.fsdecode(dest))


class InboxWatcher:
    """A recursive inotify watch on the inbox; optional (rescans alone are correct, just slower)."""

    def __init__(self, inbox: str, hint: Callable[[str], None]) -> None:
        self._inbox = inbox
        self._hint = hint
        self._observer: BaseObserver | None = None

    def start(self) -> bool:
        """Start watching; False (and a warning) if inotify is unavailable, e.g. out of watches."""
        observer = Observer()
        try:
            observer.schedule(_HintHandler(self._hint), self._inbox, recursive=True, event_filter=WATCHED)
            observer.start()
        except OSError as exc:
            log.warning("no inotify watch on %s (%s); relying on rescans", self._inbox, exc)
            return False
        self._observer = observer
        return True

    @property
    def alive(self) -> bool:
        return self._observer is not None and bool(self._observer.is_alive())

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None
