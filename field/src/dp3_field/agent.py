"""The run loop: find finished photos, then carry out :func:`dp3_field.plan.next_step`, one step at a time.

One thread does everything (the status page has its own). A step is short:
one preview, one chunk of an original (``DP3_FIELD_CHUNK_BYTES``), one
receipt, one deletion; between two steps the loop looks at the folder
again, so a new day's previews overtake an original in the middle of its
upload. Any failure to reach the head node backs off (1, 2, 4 ... seconds,
then every ``DP3_FIELD_RETRY_MAX_SECONDS``) and the same step is tried
again: nobody presses anything. Every state change is committed to the
queue before the next step, so ``kill -9`` at any moment loses nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
import time
import zoneinfo
from pathlib import Path

from dp3.files import sha256_file
from dp3_field import plan
from dp3_field.folder import FolderWatch, file_key
from dp3_field.intake import (
    AlreadyHaveIt,
    Intake,
    IntakeError,
    NotAllowed,
    Original,
    OutOfStep,
    Pacer,
    PhotoFacts,
    Refused,
    StartAgain,
    Unreachable,
    UrlStore,
)
from dp3_field.pairing import Pairing
from dp3_field.preview import render_preview
from dp3_field.queue import Found, Queue
from dp3_field.settings import FieldSettings

log = logging.getLogger(__name__)

RENDER_BUDGET_SECONDS = 2.0
"""Previews rendered per pass at most this long, so sending never waits long behind a full card."""


class Agent:
    def __init__(
        self,
        settings: FieldSettings,
        pairing: Pairing,
        folder: Path,
        *,
        max_kbps: float,
        free_space: bool,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.pairing = pairing
        self.folder = folder
        self.free_space = free_space
        self.stop = stop or threading.Event()
        self.queue = Queue(settings.queue_path)
        self.zone = zoneinfo.ZoneInfo(settings.timezone)
        self.pacer = Pacer(max_kbps * 1000 / 8)
        self.intake = Intake(pairing.url, pairing.token, timeout=settings.timeout_seconds, pacer=self.pacer)
        inside = settings.home.resolve() if settings.home.resolve().is_relative_to(folder.resolve()) else None
        self.watch = FolderWatch(folder, settings.stable_seconds, self.queue.known_file, skip=inside)
        self._next_scan = 0.0
        self._failures = 0
        self._upload: Original | None = None
        self._owner = pairing.owner
        self.queue.note(
            "run", {"folder": str(folder), "max_kbps": max_kbps, "free_space": free_space, "pid": os.getpid()}
        )

    # --- the loop --------------------------------------------------------------------

    def run(self) -> None:
        while not self.stop.is_set():
            self.look()
            step = plan.next_step(
                self.queue.photos(),
                now=time.time(),
                free_space=self.free_space,
                receipt_every=self.settings.receipt_seconds,
            )
            if isinstance(step, plan.Idle):
                self._note_rate()
                self.stop.wait(min(1.0, self.settings.scan_seconds))
                continue
            try:
                self.carry_out(step)
            except Unreachable as exc:
                self._link_down(exc)
            except NotAllowed as exc:
                self._link_down(exc, plain=exc.plain)
            except Exception as exc:  # one odd photo or a bug must not stop the agent: logged, backed off
                log.exception("unexpected problem on %s", type(step).__name__)
                self._link_down(IntakeError(f"{type(exc).__name__}: {exc}"), plain="something unexpected went wrong")
            else:
                if self._failures:
                    log.info("head node reachable again")
                self._failures = 0
                self.queue.note("link", {"ok": True, "at": time.time()})
            self._note_rate()
        self.intake.close()

    def _link_down(self, exc: IntakeError, plain: str | None = None) -> None:
        self._failures += 1
        self._upload = None  # ask the head node's offset again when it is back
        delay = plan.backoff_seconds(self._failures, cap=self.settings.retry_max_seconds, jitter=random.random())
        notes = self.queue.notes().get("link") or {}
        since = notes.get("since") if not notes.get("ok", True) else None
        self.queue.note(
            "link",
            {
                "ok": False,
                "since": since or time.time(),
                "retry_seconds": delay,
                "retry_cap": self.settings.retry_max_seconds,
                "plain": plain,
                "detail": exc.detail,
            },
        )
        log.warning("%s (try %d, next in %.0fs): %s", plain or exc.plain, self._failures, delay, exc.detail)
        self.stop.wait(delay)

    def _note_rate(self) -> None:
        self.queue.note("rate", {"bytes_per_second": self.pacer.rate(), "sent": self.pacer.sent, "at": time.time()})

    # --- finding photos ----------------------------------------------------------------

    def look(self) -> None:
        now = time.monotonic()
        if now < self._next_scan:
            return
        self._next_scan = now + self.settings.scan_seconds
        finished = sorted(self.watch.finished(), key=lambda item: item[1].st_mtime, reverse=True)
        started = time.monotonic()
        for path, info in finished:
            if time.monotonic() - started > RENDER_BUDGET_SECONDS:
                self._next_scan = 0.0  # the rest on the next pass, after one send
                break
            self.read(path, info)

    def read(self, path: Path, info: os.stat_result) -> None:
        rendered = render_preview(path, self.settings.previews_dir, info.st_mtime, self.zone)
        found = Found(
            path=str(path),
            name=path.name,
            sha256=rendered.sha256,
            size=rendered.size,
            day=rendered.day,
            taken=rendered.taken,
            captured_at=rendered.captured_at,
            preview_file=None if rendered.preview is None else str(rendered.preview),
            problem=None if rendered.preview is not None else f"not sent: not a photo DP3 renders ({rendered.problem})",
        )
        if self.queue.add(found, file_key(info), time.time()):
            log.info("queued %s (%d bytes, taken %s)", path.name, rendered.size, rendered.day)

    # --- steps ----------------------------------------------------------------------------

    def owner(self) -> str:
        if self._owner is None:
            self._owner = str(self.intake.device()["owner"])
            self.queue.note("owner", self._owner)
        return self._owner

    def facts(self, photo: plan.Photo) -> PhotoFacts:
        row = self.queue.row(photo.id)
        return PhotoFacts(self.owner(), photo.name, photo.sha256, photo.size, row["captured_at"])

    def carry_out(self, step: plan.Step) -> None:
        if isinstance(step, plan.SendPreview):
            self.send_preview(step.photo)
        elif isinstance(step, plan.FreeSpace):
            self.free(step.photo)
        elif isinstance(step, plan.AskReceipts):
            self.ask_receipts(step.photos)
        elif isinstance(step, plan.SendOriginal):
            self.send_original(step.photo)

    def send_preview(self, photo: plan.Photo) -> None:
        preview_file = self.queue.row(photo.id)["preview_file"]
        try:
            jpeg = Path(preview_file).read_bytes()
        except OSError as exc:
            self.queue.preview_refused(photo.id, f"its preview is gone ({exc}); the original still goes")
            return
        try:
            self.intake.send_preview(self.facts(photo), jpeg)
        except (Refused, StartAgain, AlreadyHaveIt) as exc:
            self.queue.preview_refused(photo.id, f"preview refused: {exc.detail}")
            return
        self.queue.preview_sent(photo.id, time.time())
        Path(preview_file).unlink(missing_ok=True)  # ours, and sent: the head node keeps it now
        log.info("preview of %s sent", photo.name)

    def ask_receipts(self, photos: tuple[plan.Photo, ...]) -> None:
        answers = self.intake.receipts([photo.sha256 for photo in photos])
        now = time.time()
        answered = [(photo, answers[photo.sha256]) for photo in photos if photo.sha256 in answers]
        for photo, receipt in answered:  # a photo not answered is asked again next time
            archived = bool(receipt.get("archived"))
            self.queue.receipt(photo.id, receipt, archived, now)
            if archived:
                log.info("receipt: %s archived in %s", photo.name, ", ".join(map(str, receipt.get("verified", []))))
        if answered:
            # The status shows the newest good news: the last archived photo, else the last one asked about.
            photo, receipt = next(((p, r) for p, r in reversed(answered) if r.get("archived")), answered[-1])
            self.queue.note("last_receipt", {"name": photo.name, "at": now, **receipt})

    def send_original(self, photo: plan.Photo) -> None:
        if self._upload is None or self._upload.facts.sha256 != photo.sha256:
            if not self._receipt_first(photo):
                return
            self._upload = self._open_upload(photo)
            if self._upload is None:
                return
        upload = self._upload
        if not upload.done:
            try:
                upload.send_chunk()
            except StartAgain as exc:
                self._upload = None
                log.warning("%s: %s; starting it again", photo.name, exc.detail)
                return
            except OutOfStep as exc:
                self._upload = None  # the next step asks the head node's offset (HEAD) and resumes there
                log.info("%s: %s (%s)", photo.name, exc.plain, exc.detail)
                return
            except Refused as exc:
                self._upload = None
                self.queue.original_refused(photo.id, f"refused by the head node: {exc.detail}")
                return
            except AlreadyHaveIt:
                self._upload = None
                self.queue.original_done(photo.id, plan.OriginalState.ALREADY, time.time())
                return
            self.queue.set_offset(photo.id, upload.offset)
            self.queue.note("current", {"name": photo.name, "offset": upload.offset, "size": photo.size})
        if upload.done:
            self._upload = None
            self.queue.original_done(photo.id, plan.OriginalState.SENT, time.time())
            log.info("original %s sent (%d bytes)", photo.name, photo.size)

    def _receipt_first(self, photo: plan.Photo) -> bool:
        """Ask before creating an upload: an archived photo (or one the head node holds) sends nothing."""
        if self.queue.upload_url(photo.id) is not None:
            return True  # an upload of ours exists: resume it
        receipt = self.intake.receipt(photo.sha256)
        if receipt.get("state") in ("processing", "archived", "collected") or receipt.get("archived"):
            self.queue.original_done(photo.id, plan.OriginalState.ALREADY, time.time())
            self.queue.receipt(photo.id, receipt, bool(receipt.get("archived")), time.time())
            log.info("%s: the head node already has it (%s); nothing sent", photo.name, receipt.get("state"))
            return False
        return True

    def _open_upload(self, photo: plan.Photo) -> Original | None:
        urls = UrlStore(
            lambda _sha: self.queue.upload_url(photo.id), lambda _sha, url: self.queue.set_upload_url(photo.id, url)
        )
        try:
            stream = open(photo.path, "rb")  # noqa: SIM115 -- kept open for the upload's life, closed by GC
        except OSError as exc:
            self.queue.original_refused(photo.id, f"the file can no longer be read ({exc})")
            return None
        try:
            return self.intake.original(self.facts(photo), stream, self.settings.chunk_bytes, urls)
        except StartAgain:
            return self.intake.original(self.facts(photo), stream, self.settings.chunk_bytes, urls)
        except AlreadyHaveIt:
            self.queue.original_done(photo.id, plan.OriginalState.ALREADY, time.time())
            return None

    def free(self, photo: plan.Photo) -> None:
        """``--free-space``: delete the local original after its receipt, if its bytes are still the archived ones."""
        path = Path(photo.path)
        try:
            sha256_now, _size = sha256_file(path)
        except OSError:
            sha256_now = None
        if not plan.still_the_same_bytes(photo, sha256_now):
            self.queue.freed(photo.id, time.time())  # nothing more to free for this photo, ever
            self.queue.set_problem(photo.id, "kept: the local file changed since it was sent")
            return
        path.unlink()
        self.queue.freed(photo.id, time.time())
        log.info("freed %s: archived on the head node (receipt at %s)", photo.name, dt.datetime.now().isoformat())
