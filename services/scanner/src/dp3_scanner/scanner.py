"""The scanner loop: candidate paths in, one event per finished upload out.

One thread owns the loop. Paths reach it two ways: hints from inotify
(:mod:`dp3_scanner.watch`, low latency) and full rescans (at start-up and
every ``DP3_RESCAN_SECONDS``, the safety net for missed events and for files
that arrived while the scanner was down). Either way a file is compared with
the index first: an unchanged file already handled costs one dict lookup.

A changed or new file waits in ``pending`` until its state has rested for
``DP3_STABLE_SECONDS`` (:mod:`dp3.stability`); then it is opened once
(without following symlinks), hashed, dated, turned into an event
(:mod:`dp3_scanner.decision` decides, :mod:`dp3_scanner.outcome` words it), published with a confirm, and only then
recorded in the index. A crash in between re-emits it (at-least-once); a
lost message is healed by the re-drive of files still in the inbox.

The scanner never writes, moves or deletes anything in the inbox.

One file never stops the loop: whatever raises while one path is handled
(a name no one foresaw, a bug) is caught for that path alone, counted in
``dp3_scanner_file_errors_total{reason}``, logged with the path (escaped), and
the file is looked at again after the re-drive interval, growing per try.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dp3 import layout
from dp3.errors import BrokerError
from dp3.events import JournalEntry, Status
from dp3.filenames import escape_os
from dp3.files import sha256_stream
from dp3.stability import FileState, Watched, is_stable, observe, stable_at
from dp3_scanner import decision
from dp3_scanner.capture_time import capture_time
from dp3_scanner.filetype import SNIFF_BYTES, TAIL_BYTES, lacks_end_marker, sniff_format
from dp3_scanner.index import FileKey, Index, ScanOutcome, SeenFile
from dp3_scanner.metrics import ScannerMetrics, scanner_metrics
from dp3_scanner.names import IgnoreReason, name_ignore_reason, owner_of, relative_parts
from dp3_scanner.outcome import SERVICE, Upload, photo_id, unreadable
from dp3_scanner.settings import ScannerSettings
from dp3_scanner.walk import walk_inbox

log = logging.getLogger(__name__)

Publish = Callable[[JournalEntry], None]
"""Publishes one event and returns once the broker confirmed it (raises BrokerError otherwise)."""

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_REDRIVEN_OUTCOMES = (ScanOutcome.DETECTED, ScanOutcome.DUPLICATE)
_Settled = decision.ConsiderAgain | decision.Ignore | decision.Hold | decision.RefreshKey
"""A decision on a finished file that publishes nothing."""


def _key(info: os.stat_result) -> FileKey:
    return (info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)


def _state(key: FileKey) -> FileState:
    return FileState(*key)


@dataclass(frozen=True)
class _Forget:
    path: str
    sha256: str | None


def remaining_wait(next_at: float, wall: float, interval: float) -> float:
    """Seconds until a re-drive the index scheduled for wall-clock ``next_at``, never more than ``interval``.

    A deadline further away than its own interval can only come from a wall
    clock that was stepped backwards since it was set (while the scanner
    was down): waiting for it would stall the re-drive by the size of the
    step, so it counts as ``interval`` from now at most.
    """
    return min(max(next_at - wall, 0.0), interval)


class Scanner:
    """Turns finished uploads in the inbox into events; see the module docstring."""

    def __init__(
        self,
        settings: ScannerSettings,
        index: Index,
        publish: Publish,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        metrics: ScannerMetrics | None = None,
    ) -> None:
        self.inbox = os.path.abspath(settings.inbox_dir)
        self._metrics = metrics or scanner_metrics()
        self._settings = settings
        self._zone = settings.zone
        self._hold_limits = decision.HoldLimits(settings.stable_seconds, settings.incomplete_seconds)
        self._index = index
        self._publish = publish
        self._clock = clock
        self._wall = wall_clock
        self.pending: dict[str, Watched] = {}
        self._hints: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._forgets: queue.SimpleQueue[_Forget] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._next_rescan = 0.0
        # Re-drive deadlines on the monotonic clock, by path: the index keeps wall-clock ones
        # (they must survive a restart), which a clock stepped backwards would push away.
        self._redrive_at: dict[str, float] = {}
        self.rescans = 0
        """Completed full rescans (tests and the health check read it)."""
        self.last_step = clock()

    # --- called from other threads -------------------------------------------

    def hint(self, path: str) -> None:
        """Something happened at ``path`` (from inotify); look at it soon."""
        self._hints.put(path)
        self._wake.set()

    def forget_later(self, path: str, sha256: str | None) -> None:
        """The photo at ``path`` was collected (removed by the archiver): drop it from the index."""
        self._forgets.put(_Forget(path, sha256))
        self._wake.set()

    def request_rescan(self) -> None:
        self._next_rescan = 0.0
        self._wake.set()

    # --- the loop ---------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Scan until ``stop`` is set; the first step is the start-up rescan."""
        while not stop.is_set():
            self.step()
            self._wake.wait(max(0.0, min(self._next_deadline() - self._clock(), 1.0)))
            self._wake.clear()

    def step(self) -> None:
        """One round: collected paths, inotify hints, a rescan if due, then finished uploads."""
        self.last_step = self._clock()
        self._drain_forgets()
        self._drain_hints()
        if self._clock() >= self._next_rescan:
            self.rescan()
        self._handle_due()

    def _next_deadline(self) -> float:
        deadline = self._next_rescan
        stable = self._settings.stable_seconds
        for watched in self.pending.values():
            deadline = min(deadline, stable_at(watched, stable))
        return deadline

    # --- one file's trouble stays with that file -----------------------------

    @contextmanager
    def _guard(self, path: str, key: FileKey | None = None) -> Iterator[None]:
        """Run one path's handling; an exception is recorded for that path and the loop goes on."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - one file must never stop the scanner
            reason = type(exc).__name__
            self._metrics.file_errors.labels(reason).inc()
            log.error("could not handle %s (%s: %s); trying it again later", escape_os(path), reason, exc)
            self.pending.pop(path, None)
            try:
                self._retry_later(path, key, reason)
            except Exception:  # not even recordable: the next rescan tries it again
                log.exception("could not record the failure for %s", escape_os(path))

    def _retry_later(self, path: str, key: FileKey | None, reason: str) -> None:
        """Remember the failure, so the file is retried after a growing interval rather than on every step."""
        previous = self._index.get(path)
        redrives = previous.redrives + 1 if previous is not None and previous.outcome == ScanOutcome.FAILED else 0
        if key is None:
            try:
                key = _key(os.lstat(path))
            except OSError:
                return
        self._index.put(
            SeenFile(
                path=path,
                key=key,
                outcome=ScanOutcome.FAILED,
                reason=f"error:{reason}",
                redrives=redrives,
                next_redrive_at=self._wall() + self._redrive_interval(redrives),
            )
        )

    # --- rescans ---------------------------------------------------------------

    def rescan(self) -> None:
        """Walk the whole inbox and compare it with the index in memory."""
        started = time.perf_counter()
        walked = walk_inbox(self.inbox)
        now, wall = self._clock(), self._wall()
        known = self._index.files
        pending = self.pending
        due: list[SeenFile] = []
        for path, key in walked.files.items():
            record = known.get(path)
            if record is not None and record.key == key:
                if record.next_redrive_at is not None and self._redrive_due(record, now, wall):
                    due.append(record)
                continue
            pending[path] = observe(pending.get(path), _state(key), now)
        for path, reason in walked.refused.items():
            with self._guard(path):
                self._ignore(path, reason, None)
        vanished = [
            path
            for path in known
            if path not in walked.files
            and path not in walked.refused
            and not any(path.startswith(folder + "/") for folder in walked.unlistable)
        ]
        self._index.forget(vanished)
        for path in vanished:
            self._redrive_at.pop(path, None)
        for path in [path for path in pending if path not in walked.files]:
            del pending[path]
        for record in due:
            with self._guard(record.path, record.key):
                self._redrive(record)
        self._next_rescan = self._clock() + self._settings.rescan_seconds
        self.rescans += 1
        self._metrics.inbox_files.set(len(walked.files))
        self._metrics.inbox_bytes.set(walked.total_bytes)
        elapsed = time.perf_counter() - started
        self._metrics.scan_seconds.observe(elapsed)
        log.debug("rescan: %d files, %d pending, %.3fs", len(walked.files), len(pending), elapsed)

    # --- hints -----------------------------------------------------------------

    def _drain_hints(self) -> None:
        seen: set[str] = set()
        while True:
            try:
                path = self._hints.get_nowait()
            except queue.Empty:
                break
            if path not in seen:
                seen.add(path)
                with self._guard(path):
                    self._look_at(path)

    def _look_at(self, path: str) -> None:
        path = os.path.normpath(path)
        parts = relative_parts(self.inbox, path)
        if parts is None:
            return
        for depth, part in enumerate(parts, start=1):
            reason = name_ignore_reason(part)
            if reason is not None:  # counted once, at the hidden or temporary entry itself
                self._ignore(os.path.join(self.inbox, *parts[:depth]), reason, None)
                return
        # inotify reports paths as the kernel walked them; refuse anything below a symlinked folder.
        folder = self.inbox
        for part in parts[:-1]:
            folder = os.path.join(folder, part)
            if os.path.islink(folder):
                return
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            self.pending.pop(path, None)
            if self._index.get(path) is not None:
                self._index.forget([path])
            return
        except OSError:
            return
        if stat.S_ISLNK(info.st_mode):
            self._ignore(path, IgnoreReason.SYMLINK, None)
        elif stat.S_ISDIR(info.st_mode):
            walked = walk_inbox(path)  # a folder moved in arrives as one event
            for file_path, key in walked.files.items():
                self._consider(file_path, key)
            for refused, why in walked.refused.items():
                with self._guard(refused):
                    self._ignore(refused, why, None)
        elif stat.S_ISREG(info.st_mode):
            self._consider(path, _key(info))
        else:
            self._ignore(path, IgnoreReason.NOT_REGULAR, None)

    def _consider(self, path: str, key: FileKey) -> None:
        record = self._index.get(path)
        if record is not None and record.key == key:
            return
        self.pending[path] = observe(self.pending.get(path), _state(key), self._clock())

    def _drain_forgets(self) -> None:
        while True:
            try:
                forget = self._forgets.get_nowait()
            except queue.Empty:
                return
            record = self._index.get(forget.path)
            if record is not None and (forget.sha256 is None or record.sha256 == forget.sha256):
                with self._guard(forget.path):
                    self._index.forget([forget.path])
                    self.pending.pop(forget.path, None)
                    if os.path.lexists(forget.path):
                        self.hint(forget.path)  # new bytes at the same name: look again

    # --- finished uploads ------------------------------------------------------

    def _handle_due(self) -> None:
        now = self._clock()
        stable = self._settings.stable_seconds
        for path, watched in list(self.pending.items()):
            if now < stable_at(watched, stable):
                continue
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                del self.pending[path]
                continue
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                del self.pending[path]
                self._look_at(path)
                continue
            current = _state(_key(info))
            if not is_stable(watched, current, now, stable):
                self.pending[path] = observe(watched, current, now)
                continue
            del self.pending[path]
            with self._guard(path, _key(info)):
                self._handle_finished(path, _key(info), watched)

    def _handle_finished(self, path: str, key: FileKey, watched: Watched) -> None:
        parts = relative_parts(self.inbox, path)
        if parts is None:
            return
        name, owner = parts[-1], owner_of(parts)
        finished_wall = self._wall()
        stable_since_wall = finished_wall - (self._clock() - stable_at(watched, self._settings.stable_seconds))
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            return
        except OSError as exc:
            self._unreadable(path, name, owner, key, exc)
            return
        with os.fdopen(fd, "rb") as stream:
            try:
                head = os.pread(fd, SNIFF_BYTES, 0)
                tail = os.pread(fd, TAIL_BYTES, max(0, key[0] - TAIL_BYTES))
                opened = decision.Opened(
                    name,
                    key,
                    _key(os.fstat(fd)),
                    sniff_format(head),
                    lacks_end_marker(head, tail),
                    watched.hold_seconds,
                )
                admitted = decision.on_open(opened, self._hold_limits)
                if not isinstance(admitted, decision.Read):
                    self._carry_out(path, key, watched, admitted)
                    return
                sha256, size = sha256_stream(stream)
                stream.seek(0)
                taken = capture_time(stream, key[1], self._zone)
                after = _key(os.fstat(fd))
            except OSError as exc:
                self._unreadable(path, name, owner, key, exc)
                return
        changed = decision.on_read(key, after, size)
        if changed is not None:
            self._carry_out(path, key, watched, changed)
            return
        upload = Upload(path, name, owner, taken.seconds, sha256, size, finished_wall)
        archived = self._index.archived(sha256)
        assigned_id = self._index.assign_id(photo_id(upload), sha256)
        concluded = decision.on_hashed(upload, key, archived, assigned_id, self._index.get(path))
        if isinstance(concluded, decision.RefreshKey):
            self._carry_out(path, key, watched, concluded)
            return
        entry = concluded.entry
        if not self._emit(entry, path, key):
            return
        self._metrics.detect_latency.observe(max(0.0, self._wall() - stable_since_wall))
        if entry.status == Status.DETECTED:
            self._metrics.detected.labels(entry.owner or "").inc()
        elif entry.status == Status.DUPLICATE:
            self._metrics.duplicates.labels(entry.owner or "").inc()
            log.info("re-upload of archived %s", entry.duplicate_of, extra={"photo_id": entry.id})
        elif entry.error is not None:
            self._metrics.failed.labels(entry.error.kind.value).inc()
            log.warning("%s: %s", entry.error.kind.value, entry.path, extra={"photo_id": entry.id})

    def _carry_out(self, path: str, key: FileKey, watched: Watched, action: _Settled) -> None:
        """Do what :mod:`dp3_scanner.decision` said for a finished file, short of emitting an event."""
        if isinstance(action, decision.ConsiderAgain):
            self._consider(path, action.key)
        elif isinstance(action, decision.Ignore):
            self._ignore(path, action.reason, key)
        elif isinstance(action, decision.Hold):
            self.pending[path] = Watched(watched.state, watched.since, action.seconds)
            self._metrics.held_incomplete.inc()
            log.info(
                "%s looks cut off (no end marker): waiting up to %.0fs in all for the rest of it",
                escape_os(path),
                action.seconds,
            )
        else:
            previous = self._index.get(path)
            assert previous is not None  # decided from it
            previous.key = action.key
            self._index.put(previous)

    def _emit(self, entry: JournalEntry, path: str, key: FileKey) -> bool:
        """Publish, then record; False (and the file is tried again later) if the broker refused."""
        try:
            self._publish(entry)
        except BrokerError as exc:
            self._metrics.publish_errors.inc()
            log.error("could not publish %s (%s); will retry", entry.status, exc, extra={"photo_id": entry.id})
            self.pending[path] = observe(None, _state(key), self._clock())
            return False
        wall = self._wall()
        redriven = entry.status in (Status.DETECTED, Status.DUPLICATE)
        outcome = {Status.DETECTED: ScanOutcome.DETECTED, Status.DUPLICATE: ScanOutcome.DUPLICATE}.get(
            entry.status, ScanOutcome.FAILED
        )
        self._index.put(
            SeenFile(
                path=path,
                key=key,
                outcome=outcome,
                reason=entry.error.kind.value if entry.error else None,
                sha256=entry.sha256,
                event=entry.to_json().decode(),
                emitted_at=wall,
                redrives=entry.attempt,
                next_redrive_at=wall + self._redrive_interval(entry.attempt) if redriven else None,
            )
        )
        self._schedule_redrive(path, self._redrive_interval(entry.attempt) if redriven else None)
        log.info("%s %s", entry.status, entry.path, extra={"photo_id": entry.id})
        return True

    def _redrive_due(self, record: SeenFile, now: float, wall: float) -> bool:
        """True when ``record`` is due for a re-drive, by the monotonic clock ``now``."""
        due = self._redrive_at.get(record.path)
        if due is None:  # first seen since start: from the index's wall-clock deadline, bounded
            assert record.next_redrive_at is not None
            wait = remaining_wait(record.next_redrive_at, wall, self._redrive_interval(record.redrives))
            due = self._redrive_at[record.path] = now + wait
        return due <= now

    def _schedule_redrive(self, path: str, interval: float | None) -> None:
        if interval is None:
            self._redrive_at.pop(path, None)
        else:
            self._redrive_at[path] = self._clock() + interval

    def _redrive_interval(self, redrives: int) -> float:
        """``DP3_REDRIVE_SECONDS`` doubled per re-drive so far, capped at ``DP3_REDRIVE_MAX_SECONDS``."""
        base, cap = self._settings.redrive_seconds, self._settings.redrive_max_seconds
        return float(min(base * 2 ** min(redrives, 40), cap))

    def _redrive(self, record: SeenFile) -> None:
        if record.outcome == ScanOutcome.FAILED:
            # An unreadable file, or one whose handling raised: try it again (permissions fixed, bug fixed).
            record.next_redrive_at = None
            self._schedule_redrive(record.path, None)
            self.pending[record.path] = Watched(_state(record.key), self._clock() - self._settings.stable_seconds)
            return
        if record.outcome not in _REDRIVEN_OUTCOMES or record.event is None:
            return
        last = JournalEntry.from_json(record.event)
        if layout.id_problem(last.id) is not None:
            # Emitted before ids were kept within NAME_MAX: it could never be staged. Detect it anew.
            self._index.forget([record.path])
            self.pending[record.path] = Watched(_state(record.key), self._clock() - self._settings.stable_seconds)
            return
        entry = last.next(last.status, service=SERVICE, attempt=record.redrives + 1)
        if self._emit(entry, record.path, record.key):
            self._metrics.redriven.labels(entry.status.value).inc()
            log.info("re-drove %s (attempt %d)", entry.status, entry.attempt, extra={"photo_id": entry.id})

    def _unreadable(self, path: str, name: str, owner: str | None, key: FileKey, exc: OSError) -> None:
        previous = self._index.get(path)
        wall = self._wall()
        if previous is not None and previous.outcome == ScanOutcome.FAILED and previous.reason == "unreadable":
            redrives = previous.redrives + 1
            previous.key, previous.redrives = key, redrives
            previous.next_redrive_at = wall + self._redrive_interval(redrives)
            self._index.put(previous)  # reported already: just look again later
            self._schedule_redrive(path, self._redrive_interval(redrives))
            return
        entry = unreadable(path, name, owner, key[1], exc.strerror or type(exc).__name__)
        if self._emit(entry, path, key):
            self._metrics.failed.labels("unreadable").inc()
            log.warning("cannot read %s: %s", entry.path, exc, extra={"photo_id": entry.id})
            record = self._index.get(path)
            if record is not None:
                record.next_redrive_at = wall + self._redrive_interval(0)
                self._index.put(record)
                self._schedule_redrive(path, self._redrive_interval(0))

    # --- ignored entries ---------------------------------------------------------

    def _ignore(self, path: str, reason: IgnoreReason, key: FileKey | None) -> None:
        """Count and log an ignored entry once per path and reason."""
        record = self._index.get(path)
        if record is not None and record.outcome == ScanOutcome.IGNORED and record.reason == reason.value:
            if key is not None and record.key != key:
                record.key = key
                self._index.put(record)
            return
        self._metrics.ignored.labels(reason.value).inc()
        log.info("ignoring %s (%s)", escape_os(path), reason.value)
        self._index.put(SeenFile(path=path, key=key or (0, 0, 0, 0), outcome=ScanOutcome.IGNORED, reason=reason.value))
