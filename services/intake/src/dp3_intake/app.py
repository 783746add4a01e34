"""The intake's HTTP app: tus at ``/files``, previews, receipts, health and metrics.

tuspyserver provides the tus protocol; this module wraps it where DP3 needs
more (docs/intake.md, "What wraps tuspyserver"):

* every call, tus or not, is authenticated by a device token *before* any
  byte is read (a router-level dependency: tuspyserver's own PATCH reads the
  body before its ``auth`` dependency runs);
* creation checks the declaration (:func:`dp3_intake.rules.declared_upload`),
  answers ``409 already_have_it`` for an archived sha256 and hands back the
  device's unfinished upload of the same sha256 instead of a new one;
* completion verifies the whole file's sha256 and places it in the inbox
  (:mod:`dp3_intake.placement`); a mismatch discards the upload (``460``);
* storage is :class:`dp3_intake.storage.DurableStorage` (fsync before every
  acknowledged offset).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import io
import json
import logging
import os
import threading
import time
import uuid
import zoneinfo
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from PIL import Image, UnidentifiedImageError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.collection import Collection
from tuspyserver import create_tus_router
from tuspyserver.request import get_request_headers

from dp3 import devices
from dp3.broker import Publisher
from dp3.devices import DeviceRecord, MalformedToken
from dp3.events import JournalEntry, Status, preview_id
from dp3.files import atomic_write_bytes, path_under, sha256_file
from dp3_intake import metrics, rules
from dp3_intake.errors import CHECKSUM_MISMATCH, CODES_BY_STATUS, IntakeError, unauthorized
from dp3_intake.idle import BodyIdleTimeout
from dp3_intake.placement import ChecksumMismatch, place
from dp3_intake.receipts import Receipt, ReceiptIndex, receipt
from dp3_intake.settings import IntakeSettings
from dp3_intake.storage import DoneRecord, DurableStorage, UploadRecord

log = logging.getLogger(__name__)

SERVICE = "intake"
TUS_PREFIX = "files"


class ResumeExisting(Exception):
    """Creation of an upload the device already has: answer with that upload's Location.

    Not a :class:`dp3.errors.DP3Error`: it is an answer to one request, turned into an HTTP
    response by the app, and never leaves the service.
    """

    def __init__(self, uid: str) -> None:
        super().__init__(uid)
        self.uid = uid


@dataclass
class Intake:
    """Everything the routes use, built once in :func:`create_app`'s caller and passed down."""

    settings: IntakeSettings
    devices: Collection[dict[str, Any]]
    index: ReceiptIndex
    publisher: Publisher | None
    storage: DurableStorage = field(init=False)
    zone: zoneinfo.ZoneInfo = field(init=False)
    placing: asyncio.Lock = field(default_factory=asyncio.Lock)
    _progress_sent: dict[str, float] = field(default_factory=dict)
    _progress_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.zone = zoneinfo.ZoneInfo(self.settings.timezone)
        self.storage = DurableStorage(
            self.settings.uploads_dir,
            expiry_days=self.settings.intake_expiry_days,
            # A PATCH waiting behind one whose link died waits for that body's cut-off, and some more.
            lock_wait=self.settings.intake_body_idle_seconds + 10.0,
            on_progress=self.progress,
        )

    # --- journal -------------------------------------------------------------------

    def publish(self, entry: JournalEntry) -> None:
        """Publish in the background: a journal that is down never fails an upload (the events are hints)."""
        if self.publisher is None:
            return
        publisher = self.publisher

        def send() -> None:
            try:
                publisher.publish(entry)
            except Exception as exc:  # noqa: BLE001 - logged; the upload itself is unaffected
                log.warning("could not publish %s: %s", entry.routing_key, exc, extra={"photo_id": entry.id})

        threading.Thread(target=send, name="dp3-intake-publish", daemon=True).start()

    def announcement(self, status: Status, record: UploadRecord | PhotoFacts, meta: dict[str, Any]) -> JournalEntry:
        return JournalEntry(
            id=preview_id(record.sha256),
            status=status,
            datetime=capture_seconds(record.captured_at),
            owner=record.owner,
            path=str(self.settings.inbox_dir / record.owner / record.filename),
            sha256=record.sha256,
            size=record.size,
            service=SERVICE,
            meta=meta,
        )

    def progress(self, record: UploadRecord, offset: int) -> None:
        complete = offset >= record.size
        now = time.monotonic()
        with self._progress_lock:
            if not rules.progress_due(
                self._progress_sent.get(record.uid), now, self.settings.intake_progress_seconds, complete=complete
            ):
                return
            self._progress_sent[record.uid] = now
            if complete:
                self._progress_sent.pop(record.uid, None)
        meta = {"offset": offset, "length": record.size}
        self.publish(self.announcement(Status.UPLOADING, record, meta))

    # --- uploads -------------------------------------------------------------------

    def unfinished(self, device: DeviceRecord, sha256: str) -> str | None:
        """The uid of this device's upload of ``sha256`` still on disk (finished or not), if any."""
        for record in self.storage.records():
            if record.device == device.id and record.sha256 == sha256:
                return record.uid
        return None

    def uploading(self, owner: str) -> set[str]:
        """The sha256s of ``owner``'s unfinished uploads."""
        return {
            record.sha256
            for record in self.storage.records()
            if record.owner == owner and self.storage.read_done(record.uid) is None
        }

    def receipts(self, owner: str, sha256s: list[str]) -> list[Receipt]:
        """A receipt for each of ``owner``'s photos asked about (the uploads are listed once for all)."""
        uploading = self.uploading(owner)
        return [
            receipt(
                self.index,
                owner,
                sha256,
                self.settings.stores,
                self.zone,
                uploading=sha256 in uploading,
                previewed=self.preview_path(owner, sha256).exists(),
            )
            for sha256 in sha256s
        ]

    def preview_path(self, owner: str, sha256: str) -> Path:
        return path_under(self.settings.previews_dir, f"{owner}/{sha256}.jpg")

    def clean_expired(self) -> int:
        """Delete partial (and completed) uploads past their expiry; returns how many."""
        now = time.time()
        removed = 0
        partial = 0
        for uid in self.storage.uids():
            if rules.is_expired(self.storage.last_activity(uid), now, self.settings.intake_expiry_days):
                for suffix in ("", ".info", ".dp3", ".done", ".info.tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.storage.root / f"{uid}{suffix}")
                removed += 1
                log.info("expired upload %s deleted", uid)
            elif self.storage.read_done(uid) is None:
                partial += 1
        metrics.EXPIRED.inc(removed)
        metrics.PARTIAL.set(partial)
        return removed


@dataclass(frozen=True)
class PhotoFacts:
    """A preview's declared facts (the ``DP3-Photo`` header)."""

    owner: str
    filename: str
    sha256: str
    size: int
    captured_at: str | None


def capture_seconds(captured_at: str | None) -> int:
    if not captured_at:
        return 0
    moment = dt.datetime.fromisoformat(captured_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def intake_of(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


# --- dependencies ----------------------------------------------------------------------


async def authenticated(request: Request) -> DeviceRecord:
    """The device whose token the request carries; 401 saying why otherwise; 404 for another owner's upload."""
    intake = intake_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("no_token", "send Authorization: Bearer <device token>")
    try:
        device, why = await asyncio.to_thread(devices.lookup, intake.devices, token.strip())
    except MalformedToken as exc:
        raise unauthorized("malformed_token", str(exc)) from None
    if device is None:
        raise unauthorized(f"{why}_token", f"this device token is {why}; pair the device again")
    if devices.should_touch(device.last_seen_at, dt.datetime.now(dt.UTC)):
        await asyncio.to_thread(devices.touch_last_seen, intake.devices, device)
    uid = request.path_params.get("uuid")
    if uid is not None:
        record = intake.storage.read_record(uid) if len(uid) == 32 and uid.isalnum() else None
        if record is None or record.owner != device.owner:
            raise IntakeError(404, "not_found", "no such upload for this device")
    return device


Device = Annotated[DeviceRecord, Depends(authenticated)]


async def tus_guard(request: Request, device: Device) -> None:
    """Refuse the tus features DP3 does not offer, before tuspyserver reads anything; HEAD waits for writers."""
    uid = request.path_params.get("uuid")
    if request.method == "HEAD" and uid is not None:
        try:
            await intake_of(request).storage.settle(uid)
        except TimeoutError:
            raise IntakeError(503, "busy", "another request is still writing this upload: ask again") from None
    if request.method == "POST":
        if request.headers.get("upload-concat") is not None:
            raise IntakeError(400, "unsupported", "the concatenation extension is not offered")
        if request.headers.get("upload-defer-length") is not None:
            raise IntakeError(
                400, "no_length", "declare the file's size in Upload-Length (deferred lengths are refused)"
            )
        if int(request.headers.get("content-length") or 0) > 0:
            raise IntakeError(400, "unsupported", "creation-with-upload is not offered: POST, then PATCH")


def pre_create_dep(request: Request, device: Device) -> Callable[[dict[str, str], dict[str, Any]], None]:
    intake = intake_of(request)

    def check(metadata: dict[str, str], upload_info: dict[str, Any]) -> None:
        declared = rules.declared_upload(
            metadata, upload_info.get("size"), device.owner, intake.settings.intake_max_bytes
        )
        # Archived first: a laptop that never got its receipt must hear "already have it",
        # not be handed back the finished upload.
        if intake.receipts(declared.owner, [declared.sha256])[0].archived:
            raise IntakeError(
                409, "already_have_it", "this photo is archived in every store", {"DP3-Receipt": "archived"}
            )
        existing = intake.unfinished(device, declared.sha256)
        if existing is not None:
            raise ResumeExisting(existing)

    return check


def file_dep(request: Request, device: Device) -> Callable[[dict[str, str]], dict[str, str] | None]:
    """Name a new upload and write its DP3 record before tuspyserver creates it (POST only)."""
    intake = intake_of(request)

    def choose(metadata: dict[str, str]) -> dict[str, str] | None:
        if request.method != "POST" or not metadata:
            return None
        uid = uuid.uuid4().hex
        intake.storage.write_record(
            UploadRecord(
                uid=uid,
                device=device.id,
                owner=metadata["owner"],
                filename=metadata["filename"],
                sha256=metadata["sha256"],
                size=int(request.headers["upload-length"]),
                captured_at=metadata.get("captured_at") or None,
                created_at=time.time(),
            )
        )
        metrics.CREATED.inc()
        log.info("upload %s created for %s/%s", uid, metadata["owner"], metadata["filename"])
        return {"uid": uid}

    return choose


def complete_dep(request: Request) -> Callable[[str, dict[str, Any]], Any]:
    intake = intake_of(request)

    async def completed(path: str, _metadata: dict[str, Any]) -> None:
        uid = os.path.basename(path)
        record = intake.storage.read_record(uid)
        if record is None:
            raise IntakeError(404, "not_found", "no such upload")
        async with intake.placing:
            if intake.storage.read_done(uid) is not None:
                return  # a second completion of the same upload places nothing more
            try:
                placed = await asyncio.to_thread(
                    place, intake.settings.inbox_dir, record.owner, record.filename, Path(path), record.sha256
                )
            except ChecksumMismatch as exc:
                await intake.storage.delete(uid)
                metrics.COMPLETED.labels("checksum_mismatch").inc()
                log.warning("upload %s discarded: %s, declared %s", uid, exc, record.sha256[:12])
                raise IntakeError(
                    CHECKSUM_MISMATCH, "checksum_mismatch", "the bytes do not hash to the declared sha256: start again"
                ) from None
            intake.storage.write_done(uid, DoneRecord(path=str(placed.path), written=placed.written))
            intake.storage.drop_data(uid)
        outcome = "placed" if placed.written else "already_there"
        metrics.COMPLETED.labels(outcome).inc()
        log.info("upload %s %s as %s", uid, outcome, placed.path, extra={"photo_id": preview_id(record.sha256)})

    return completed


# --- the app ------------------------------------------------------------------------


def create_app(intake: Intake) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def cleaning() -> None:
            while True:
                await asyncio.to_thread(intake.clean_expired)
                await asyncio.sleep(intake.settings.intake_cleanup_seconds)

        task = asyncio.create_task(cleaning())
        yield
        task.cancel()

    app = FastAPI(title="DP3 intake", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.intake = intake
    intake.settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    intake.settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    router = create_tus_router(
        prefix=TUS_PREFIX,
        files_dir=str(intake.settings.uploads_dir),
        max_size=intake.settings.intake_max_bytes,
        auth=authenticated,  # type: ignore[arg-type] # FastAPI dependencies; its hints are narrower than its use
        days_to_keep=max(1, round(intake.settings.intake_expiry_days)),
        upload_complete_dep=complete_dep,
        pre_create_dep=pre_create_dep,
        file_dep=file_dep,  # type: ignore[arg-type]
        storage=intake.storage,
    )
    app.include_router(router, dependencies=[Depends(tus_guard)])
    app.add_middleware(BodyIdleTimeout, seconds=intake.settings.intake_body_idle_seconds)
    _routes(app)
    _error_handlers(app)
    return app


def _routes(app: FastAPI) -> None:
    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz(request: Request) -> PlainTextResponse:
        intake = intake_of(request)
        try:
            await asyncio.to_thread(intake.devices.database.command, "ping")
        except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said in the body
            return PlainTextResponse(f"mongodb unreachable: {exc}\n", status_code=503)
        if not os.access(intake.settings.uploads_dir, os.W_OK):
            return PlainTextResponse(f"{intake.settings.uploads_dir} not writable\n", status_code=503)
        return PlainTextResponse("ok\n")

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/device")
    async def get_device(device: Device) -> JSONResponse:
        # The pairing line the portal shows carries only the token: the agent learns here
        # which photographer's folder it writes to, and names it in every upload.
        return JSONResponse({"id": device.id, "owner": device.owner, "label": device.label})

    @app.get("/api/receipts/{sha256}")
    async def get_receipt(sha256: str, request: Request, device: Device) -> JSONResponse:
        rules.check_preview_sha256(sha256)
        (found,) = await asyncio.to_thread(intake_of(request).receipts, device.owner, [sha256])
        metrics.RECEIPTS.labels("true" if found.archived else "false").inc()
        return JSONResponse(found.as_json())

    @app.post("/api/receipts")
    async def post_receipts(request: Request, device: Device) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        asked = rules.receipt_question(body)
        found = await asyncio.to_thread(intake_of(request).receipts, device.owner, asked)
        for answer in found:
            metrics.RECEIPTS.labels("true" if answer.archived else "false").inc()
        return JSONResponse({"receipts": [answer.as_json() for answer in found]})

    @app.put("/api/previews/{sha256}")
    async def put_preview(sha256: str, request: Request, device: Device) -> JSONResponse:
        intake = intake_of(request)
        rules.check_preview_sha256(sha256)
        facts = photo_facts(request.headers.get("dp3-photo"), sha256, device)
        declared = int(request.headers.get("content-length") or 0)
        if declared > rules.PREVIEW_MAX_BYTES:
            raise IntakeError(413, "too_large", f"a preview is at most {rules.PREVIEW_MAX_BYTES} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > rules.PREVIEW_MAX_BYTES:
                raise IntakeError(413, "too_large", f"a preview is at most {rules.PREVIEW_MAX_BYTES} bytes")
        check_image(bytes(body))
        status, outcome = await asyncio.to_thread(store_preview, intake, facts, bytes(body))
        metrics.PREVIEWS.labels(outcome).inc()
        return JSONResponse({"sha256": sha256, "stored": outcome == "stored", "outcome": outcome}, status_code=status)


def photo_facts(header: str | None, sha256: str, device: DeviceRecord) -> PhotoFacts:
    """The ``DP3-Photo`` header, decoded and checked like an upload's metadata."""
    if not header:
        raise IntakeError(400, "bad_metadata", "send the photo's facts in the DP3-Photo header")
    try:
        facts = json.loads(base64.b64decode(header, validate=True))
    except (binascii.Error, ValueError):
        raise IntakeError(400, "bad_metadata", "DP3-Photo must be standard base64 of a JSON object") from None
    if not isinstance(facts, dict):
        raise IntakeError(400, "bad_metadata", "DP3-Photo must be a JSON object")
    owner, name, size = facts.get("owner"), facts.get("name"), facts.get("size")
    if not isinstance(owner, str) or not isinstance(name, str):
        raise IntakeError(400, "bad_metadata", "DP3-Photo needs owner and name as strings")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise IntakeError(400, "bad_metadata", "DP3-Photo needs size as a non-negative integer")
    captured = facts.get("captured_at")
    if captured is not None and not isinstance(captured, str):
        raise IntakeError(400, "bad_metadata", "captured_at must be an ISO 8601 string or null")
    rules.check_owner_and_name(owner, name, device.owner)
    return PhotoFacts(owner, name, sha256, size, rules.check_captured_at(captured))


def check_image(body: bytes) -> None:
    """415 unless ``body`` decodes as an image (fully: a truncated JPEG is refused too)."""
    try:
        with Image.open(io.BytesIO(body)) as image:
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise IntakeError(415, "not_an_image", "the preview does not decode as an image") from None


def store_preview(intake: Intake, facts: PhotoFacts, body: bytes) -> tuple[int, str]:
    """Store the preview and announce it; (HTTP status, outcome)."""
    if intake.receipts(facts.owner, [facts.sha256])[0].archived:
        return 200, "archived"  # the archived record is shown, never a preview
    final = intake.preview_path(facts.owner, facts.sha256)
    if final.exists() and sha256_file(final)[0] == sha256_bytes(body):
        return 200, "same"
    atomic_write_bytes(final, body)
    relative = f"{facts.owner}/{facts.sha256}.jpg"
    intake.publish(intake.announcement(Status.PREVIEWED, facts, {"preview": relative}))
    log.info("preview stored for %s/%s", facts.owner, facts.filename, extra={"photo_id": preview_id(facts.sha256)})
    return 201, "stored"


def sha256_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IntakeError)
    async def intake_error(request: Request, exc: IntakeError) -> JSONResponse:
        metrics.REFUSED.labels(exc.code).inc()
        headers = {"Tus-Resumable": "1.0.0", **exc.headers}
        return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = CODES_BY_STATUS.get(exc.status_code, "error")
        metrics.REFUSED.labels(code).inc()
        headers = {"Tus-Resumable": "1.0.0", **(exc.headers or {})}
        return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())) or "request"
        metrics.REFUSED.labels("bad_request").inc()
        detail = f"{where}: {first.get('msg', 'invalid')}"
        return JSONResponse(
            {"error": "bad_request", "detail": detail}, status_code=400, headers={"Tus-Resumable": "1.0.0"}
        )

    @app.exception_handler(ResumeExisting)
    async def resume(request: Request, exc: ResumeExisting) -> Response:
        location = get_request_headers(request=request, uuid=exc.uid, prefix=TUS_PREFIX)["location"]
        log.info("upload %s handed back for resumption", exc.uid)
        return Response(
            status_code=201, headers={"Location": location, "Tus-Resumable": "1.0.0", "Content-Length": "0"}
        )
