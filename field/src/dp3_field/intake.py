"""The head node's intake, as the agent calls it (docs/field-uploads.md): tus, previews, receipts.

Originals go by tus 1.0 through ``tuspy``, configured and wrapped where it
falls short (issue 18 lists how):

- no timeouts: every request here goes through one ``requests.Session``
  with ``(connect, read)`` timeouts, so a dead link fails in seconds, not
  never;
- upload URLs in memory only: tuspy's own storage hook
  (:class:`tusclient.storage.interface.Storage`) is given the SQLite queue,
  keyed by the photo's sha256, so the URL is on disk the moment the head
  node gives it and a restart resumes that upload (``HEAD`` for the offset);
- no bandwidth cap: each ``PATCH`` body is handed to the socket in 16 KiB
  pieces through the token bucket (:mod:`dp3_field.throttle`);
- no idea of "already have it": the creation's ``409`` is
  :class:`AlreadyHaveIt`, and the agent sends nothing.

Errors, by what the agent does about them (the rest of the agent never sees
a ``requests`` or ``tusclient`` exception)::

    IntakeError
     +-- Unreachable      the link or the head node is down: back off, try again, forever
     +-- NotAllowed       the token is unknown or revoked (401/403): say so, keep trying slowly
     +-- Refused          this photo can never go (413 too large, 400 bad name): say so, skip it
     +-- StartAgain       the head node discarded the upload (460 mismatch, 404 expired): new upload
     +-- AlreadyHaveIt    the head node has these bytes archived (409 already_have_it): nothing to send
     +-- OutOfStep        a PATCH at an offset the head node is not at (tus' 409): ask the offset, go on
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urljoin

import requests
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
from tusclient.fingerprint.interface import Fingerprint
from tusclient.request import TusRequest
from tusclient.storage.interface import Storage
from tusclient.uploader import Uploader

from dp3_field.throttle import RateMeter, TokenBucket

PIECE_BYTES = 16 * 1024
"""What one write to the socket carries: small enough for the token bucket to pace smoothly."""


class IntakeError(Exception):
    """Something the head node's intake said or did not say; :attr:`plain` is for the photographer.

    The field agent's own tree, not :class:`dp3.errors.DP3Error`: its errors are told to a
    photographer on a laptop (:attr:`plain`), never handled by a service.
    """

    plain = "the head node answered something unexpected"

    def __init__(self, detail: str = "", status: int | None = None) -> None:
        super().__init__(detail or self.plain)
        self.detail = detail or self.plain
        self.status = status


class Unreachable(IntakeError):
    plain = "head node unreachable"


class NotAllowed(IntakeError):
    plain = "the head node does not accept this laptop's key (revoked?): ask for a new pairing line"


class Refused(IntakeError):
    plain = "the head node refused this photo"


class StartAgain(IntakeError):
    plain = "the head node asked to send this photo again from the start"


class AlreadyHaveIt(IntakeError):
    plain = "the head node already has this photo"


class OutOfStep(IntakeError):
    plain = "the head node and this laptop disagreed on how much was sent; asking again"


class Pacer:
    """The cap and the meter on every byte the agent sends."""

    def __init__(
        self,
        bytes_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.bucket = TokenBucket(bytes_per_second, clock())
        self.meter = RateMeter()
        self.sent = 0

    def pace(self, size: int) -> None:
        wait = self.bucket.reserve(size, self._clock())
        if wait > 0:
            self._sleep(wait)
        self.sent += size
        self.meter.add(size, self._clock())

    def rate(self) -> float:
        return self.meter.rate(self._clock())


class PacedBody:
    """A request body that goes to the socket piece by piece through the pacer (``len`` keeps Content-Length)."""

    def __init__(self, data: bytes, pacer: Pacer) -> None:
        self._data = data
        self._pacer = pacer

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[bytes]:
        view = memoryview(self._data)
        for start in range(0, len(view), PIECE_BYTES):
            piece = view[start : start + PIECE_BYTES]
            self._pacer.pace(len(piece))
            yield bytes(piece)


def _error_for(response: requests.Response) -> IntakeError:
    status = response.status_code
    try:
        body = response.json()
        detail = str(body.get("detail") or body.get("error") or "")
        code = str(body.get("error") or "")
    except ValueError:
        detail, code = response.text[:200], ""
    if status in (401, 403) and code != "wrong_owner":
        return NotAllowed(detail, status)
    if status == 409:
        # Creation's "already have it"; any other 409 is tus' offset conflict (a PATCH cut off
        # mid-way that the head node finished taking in after the laptop gave up on it).
        return AlreadyHaveIt(detail, status) if code == "already_have_it" else OutOfStep(detail, status)
    if status in (404, 410, 460):
        return StartAgain(detail, status)
    if status in (400, 403, 413, 415):
        return Refused(detail or f"HTTP {status}", status)
    return Unreachable(f"the head node answered HTTP {status}: {detail}", status)


@dataclass(frozen=True)
class PhotoFacts:
    """What the head node is told about a photo before any byte of it (docs/field-uploads.md)."""

    owner: str
    name: str
    sha256: str
    size: int
    captured_at: str | None


class _KeyedBySha256(Fingerprint):  # type: ignore[misc]
    """tuspy keys stored URLs by a fingerprint of the file; ours is the photo's sha256, known already."""

    def __init__(self, sha256: str) -> None:
        self._sha256 = sha256

    def get_fingerprint(self, fs: IO[bytes]) -> str:
        return self._sha256


class UrlStore(Storage):  # type: ignore[misc]
    """tuspy's URL storage hook over the agent's queue: ``get``/``set``/``remove`` by sha256."""

    def __init__(self, get: Callable[[str], str | None], put: Callable[[str, str | None], None]) -> None:
        self._get = get
        self._put = put

    def get_item(self, key: str) -> str | None:
        return self._get(key)

    def set_item(self, key: str, value: str) -> None:
        self._put(key, value)

    def remove_item(self, key: str) -> None:
        self._put(key, None)


class _PacedRequest(TusRequest):  # type: ignore[misc]
    """tuspy's PATCH, sent through the agent's session (timeouts) with a paced body."""

    def __init__(self, uploader: _Uploader) -> None:
        super().__init__(uploader)
        self._session = uploader.session
        self._timeout = uploader.timeout
        self._pacer = uploader.pacer

    def perform(self) -> None:
        chunk = self.file.read(self._content_length)
        response = self._session.patch(
            self._url, data=PacedBody(chunk, self._pacer), headers=self._request_headers, timeout=self._timeout
        )
        self.status_code = response.status_code
        self.response_content = response.content
        self.response_headers = {key.lower(): value for key, value in response.headers.items()}


class _Uploader(Uploader):  # type: ignore[misc]
    """tuspy's uploader with the session, the pacer and the error mapping; one chunk per :meth:`upload_chunk`."""

    def __init__(self, *, session: requests.Session, timeout: tuple[float, float], pacer: Pacer, **kwargs: Any) -> None:
        # Set before tuspy's __init__, which already asks the offset of a stored URL.
        self.session = session
        self.timeout = timeout
        self.pacer = pacer
        super().__init__(**kwargs)

    def _get_fingerprint(self) -> str:
        # tuspy's own opens the stream in a ``with``, which closes the file this upload keeps reading.
        return str(self.fingerprinter.get_fingerprint(self.file_stream))

    def get_offset(self) -> int:
        response = self.session.head(self.url, headers=self.get_headers(), timeout=self.timeout)
        if response.status_code >= 300:
            raise _error_for(response)
        offset = response.headers.get("upload-offset")
        if offset is None:
            raise Unreachable("the head node gave no Upload-Offset")
        return int(offset)

    def create_url(self) -> str:
        response = self.session.post(self.client.url, headers=self.get_url_creation_headers(), timeout=self.timeout)
        if response.status_code >= 300:
            raise _error_for(response)
        location = response.headers.get("location")
        if location is None:
            raise Unreachable(f"the head node created no upload (HTTP {response.status_code})")
        return urljoin(str(self.client.url), location)

    def _do_request(self) -> None:
        self.request = _PacedRequest(self)
        self.request.perform()
        if not 200 <= self.request.status_code < 300:
            response = requests.Response()
            response.status_code = self.request.status_code
            response._content = self.request.response_content
            raise _error_for(response)


class Intake:
    """The head node's intake API for one paired device."""

    def __init__(self, base_url: str, token: str, *, timeout: float, pacer: Pacer) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = (timeout, timeout)
        self.pacer = pacer

    def close(self) -> None:
        self.session.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, urljoin(self.base_url, path), timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise _error_for(response)
        return response

    def device(self) -> dict[str, Any]:
        """Who this token is: ``{"owner": ..., ...}`` (an assumption beyond the written contract, see docs)."""
        body = self._call("GET", "api/device").json()
        return body if isinstance(body, dict) else {}

    def receipt(self, sha256: str) -> dict[str, Any]:
        """One photo's receipt: the many-photo question, asked about one."""
        answers = self.receipts([sha256])
        if sha256 not in answers:
            raise Unreachable("the head node gave no receipt for the photo asked about")
        return answers[sha256]

    def receipts(self, sha256s: list[str]) -> dict[str, dict[str, Any]]:
        """The receipts of many photos in one round trip, by sha256 (``POST /api/receipts``)."""
        body = self._call("POST", "api/receipts", json={"sha256": sha256s}).json()
        answers = body.get("receipts") if isinstance(body, dict) else None
        if not isinstance(answers, list):
            raise Unreachable("the receipts answer has no list of receipts")
        return {
            str(answer["sha256"]): answer
            for answer in answers
            if isinstance(answer, dict) and answer.get("sha256") in sha256s
        }

    def send_preview(self, facts: PhotoFacts, jpeg: bytes) -> int:
        photo = {"owner": facts.owner, "name": facts.name, "size": facts.size, "captured_at": facts.captured_at}
        header = base64.b64encode(json.dumps(photo).encode()).decode("ascii")
        response = self._call(
            "PUT",
            f"api/previews/{facts.sha256}",
            data=PacedBody(jpeg, self.pacer),
            headers={"DP3-Photo": header, "Content-Type": "image/jpeg"},
        )
        return response.status_code

    def original(self, facts: PhotoFacts, stream: IO[bytes], chunk_bytes: int, urls: UrlStore) -> Original:
        """An upload of ``stream`` (the original), resumed from a stored URL when there is one."""
        return Original(self, facts, stream, chunk_bytes, urls)


class Original:
    """One original's tus upload, one chunk per :meth:`send_chunk`; the head node's offset is the truth."""

    def __init__(self, intake: Intake, facts: PhotoFacts, stream: IO[bytes], chunk_bytes: int, urls: UrlStore) -> None:
        self.facts = facts
        self._urls = urls
        metadata = {"owner": facts.owner, "filename": facts.name, "sha256": facts.sha256}
        if facts.captured_at:
            metadata["captured_at"] = facts.captured_at
        try:
            self._uploader = _Uploader(
                session=intake.session,
                timeout=intake.timeout,
                pacer=intake.pacer,
                file_stream=stream,
                client=TusClient(urljoin(intake.base_url, "files"), headers={"Tus-Resumable": "1.0.0"}),
                chunk_size=chunk_bytes,
                metadata=metadata,
                store_url=True,
                url_storage=urls,
                fingerprinter=_KeyedBySha256(facts.sha256),
            )
        except StartAgain:
            urls.remove_item(facts.sha256)  # expired or discarded upload: create another
            raise
        except (requests.RequestException, TusCommunicationError) as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc

    @property
    def offset(self) -> int:
        return int(self._uploader.offset)

    @property
    def done(self) -> bool:
        return self._uploader.url is not None and self.offset >= self.facts.size

    def send_chunk(self) -> int:
        """Create the upload if needed, then send one chunk; the head node's new offset."""
        try:
            if self._uploader.url is None:
                self._uploader.set_url(self._uploader.create_url())
                self._uploader.offset = 0
                if self.facts.size == 0:
                    return 0
            self._uploader.upload_chunk()
        except StartAgain:
            self._urls.remove_item(self.facts.sha256)
            raise
        except (requests.RequestException, TusCommunicationError) as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        return self.offset
