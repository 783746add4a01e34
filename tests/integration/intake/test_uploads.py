"""Resumable uploads through the real intake process with the real tus client (tuspy)."""

from __future__ import annotations

import contextlib
import hashlib
import random
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.uploader.uploader import Uploader

from dp3.ports import free_port
from tests.integration.intake.conftest import BODY_IDLE_SECONDS, sha256_of
from tests.integration.intake.harness import IntakeProcess, metadata_header
from tests.stack import metric_samples

pytestmark = pytest.mark.integration


def uploader(
    base: str, token: str, path: Path, *, owner: str, url: str | None = None, chunk: int = 64 * 1024
) -> Uploader:
    client = tus.TusClient(f"{base}/files", headers={"Authorization": f"Bearer {token}"})
    metadata = {"owner": owner, "filename": path.name, "sha256": sha256_of(path)}
    return client.uploader(file_path=str(path), chunk_size=chunk, metadata=metadata, url=url)


def url_of(upload: Uploader) -> str:
    """The upload's URL (tuspy types it as None until created)."""
    url: object = upload.url
    assert isinstance(url, str)
    return url


class CuttingProxy:
    """A TCP proxy that drops the connection after ``budget`` bytes from the client: a link lost at any byte."""

    def __init__(self, target_port: int, budget: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.budget = budget
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                downstream, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(downstream, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, downstream, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while data := source.recv(16384):
                if counted:
                    if self.budget <= 0:
                        break
                    data = data[: self.budget]
                    self.budget -= len(data)
                sink.sendall(data)
                if counted and self.budget <= 0:
                    break
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.server.close()


def head_offset(intake: IntakeProcess, token: str, url: str) -> int:
    response = httpx.head(url, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"})
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


def test_an_upload_lands_in_the_owners_inbox_folder_with_its_bytes(
    intake: IntakeProcess, photo: Path, owner: str
) -> None:
    _, token = intake.device(owner)
    upload = uploader(intake.url, token, photo, owner=owner)
    upload.upload()
    placed = intake.inbox / owner / photo.name
    assert placed.read_bytes() == photo.read_bytes()
    assert intake.inbox_files(owner) == [placed]  # no temporary name left behind
    assert not (intake.uploads / Path(url_of(upload)).name).exists()  # the placed data is not kept twice


def test_uploads_cut_at_random_offsets_resume_from_them(intake: IntakeProcess, photo: Path, owner: str) -> None:
    _, token = intake.device(owner)
    size = photo.stat().st_size
    rng = random.Random(18)
    url: str | None = None
    offsets = []
    for _ in range(3):
        proxy = CuttingProxy(intake.port, budget=rng.randrange(2000, size // 2))
        try:
            base = f"http://127.0.0.1:{proxy.port}"
            upload = uploader(
                base, token, photo, url=url.replace(intake.url, base) if url else None, chunk=size, owner=owner
            )
            with pytest.raises((TusCommunicationError, TusUploadFailed, OSError)):
                upload.upload()
            if url is None:
                url = url_of(upload).replace(base, intake.url)
        finally:
            proxy.close()
        assert url is not None
        offset = head_offset(intake, token, url)
        offsets.append(offset)
        # Whatever was acknowledged or received is on disk, and it is the photo's prefix.
        data = (intake.uploads / Path(url).name).read_bytes()
        assert len(data) == offset and photo.read_bytes()[:offset] == data
    assert offsets == sorted(offsets) and offsets[-1] > 0
    resumed = uploader(intake.url, token, photo, url=url, owner=owner)
    assert resumed.offset == offsets[-1]  # tuspy asked the intake and starts there, not at byte 0
    resumed.upload()
    assert (intake.inbox / owner / photo.name).read_bytes() == photo.read_bytes()


def dead_link_patch(
    intake: IntakeProcess, token: str, url: str, offset: int, sent: bytes, length: int
) -> socket.socket:
    """A PATCH of ``length`` bytes whose link died after ``sent``: the socket stays open and silent (a lost FIN)."""
    connection = socket.create_connection(("127.0.0.1", intake.port))
    head = (
        f"PATCH {httpx.URL(url).path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: {offset}\r\nContent-Length: {length}\r\n\r\n"
    )
    connection.sendall(head.encode() + sent)
    return connection


def test_a_patch_whose_link_died_is_cut_off_keeps_its_bytes_and_frees_the_upload(
    intake: IntakeProcess, photo: Path, owner: str
) -> None:
    _, token = intake.device(owner)
    data = photo.read_bytes()
    first = uploader(intake.url, token, photo, owner=owner, chunk=64 * 1024)
    first.upload_chunk()
    url = url_of(first)
    offset = head_offset(intake, token, url)
    assert offset == 64 * 1024
    # The laptop gave up on three tries at the same offset, each lost mid-body with the link.
    started = time.monotonic()
    dead = [dead_link_patch(intake, token, url, offset, data[offset : offset + 1000], 64 * 1024) for _ in range(3)]
    try:
        deadline = started + 10 * BODY_IDLE_SECONDS
        while head_offset(intake, token, url) == offset:
            assert time.monotonic() < deadline, "a dead link's PATCH still holds the upload"
            time.sleep(0.2)
        assert time.monotonic() - started >= BODY_IDLE_SECONDS * 0.9  # cut off for silence, not at once
        assert head_offset(intake, token, url) == offset + 1000  # the bytes that came are kept
        resumed = uploader(intake.url, token, photo, url=url, owner=owner)
        assert resumed.offset == offset + 1000
        resumed.upload()
    finally:
        for connection in dead:
            connection.close()
    assert (intake.inbox / owner / photo.name).read_bytes() == data


def test_a_head_waits_for_a_patch_in_progress(intake: IntakeProcess, photo: Path, owner: str) -> None:
    """A HEAD asked while a PATCH is still taking in its bytes answers the offset that PATCH leaves.

    The laptop asks (HEAD) after giving up on a PATCH whose last bytes its kernel
    still delivers once the link is back: a stale answer would make it send a
    whole chunk the intake then refuses (409), over a link where every byte counts.
    """
    _, token = intake.device(owner)
    data = photo.read_bytes()
    first = uploader(intake.url, token, photo, owner=owner, chunk=64 * 1024)
    first.upload_chunk()
    url = url_of(first)
    offset, length = 64 * 1024, 4096
    slow = dead_link_patch(intake, token, url, offset, data[offset : offset + 1000], length)
    answers: list[int] = []
    asking = threading.Thread(target=lambda: answers.append(head_offset(intake, token, url)))
    try:
        time.sleep(0.3)  # the PATCH holds the upload
        asking.start()
        time.sleep(0.7)
        assert answers == [], "HEAD answered while a PATCH was still writing the upload"
        slow.sendall(data[offset + 1000 : offset + length])
        asking.join(10)
        assert answers == [offset + length]
        assert b" 204 " in slow.recv(4096)
    finally:
        slow.close()


def test_a_sigkilled_intake_loses_no_acknowledged_byte(intake: IntakeProcess, photo: Path, owner: str) -> None:
    _, token = intake.device(owner)
    size = photo.stat().st_size
    upload = uploader(intake.url, token, photo, chunk=16 * 1024, owner=owner)
    upload.upload(stop_at=size // 2)  # every chunk so far acknowledged
    acknowledged = upload.offset
    intake.kill()
    intake.start()
    assert head_offset(intake, token, url_of(upload)) == acknowledged
    resumed = uploader(intake.url, token, photo, url=url_of(upload), chunk=16 * 1024, owner=owner)
    resumed.upload()
    assert (intake.inbox / owner / photo.name).read_bytes() == photo.read_bytes()


def test_a_client_that_lost_its_url_gets_its_unfinished_upload_back(
    intake: IntakeProcess, photo: Path, owner: str
) -> None:
    _, token = intake.device(owner)
    first = uploader(intake.url, token, photo, chunk=16 * 1024, owner=owner)
    first.upload(stop_at=32 * 1024)
    # Creating it again: the intake answers with the first upload's Location, which tuspy then resumes.
    url = uploader(intake.url, token, photo, owner=owner).create_url()
    assert url == url_of(first)
    resumed = uploader(intake.url, token, photo, url=url, chunk=16 * 1024, owner=owner)
    assert resumed.offset == first.offset
    resumed.upload()
    assert (intake.inbox / owner / photo.name).read_bytes() == photo.read_bytes()


def test_two_completions_of_one_upload_deliver_one_file(intake: IntakeProcess, photo: Path, owner: str) -> None:
    _, token = intake.device(owner)
    upload = uploader(intake.url, token, photo, owner=owner)
    upload.upload()
    size = photo.stat().st_size
    headers = {
        "Authorization": f"Bearer {token}",
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": str(size),
        "Content-Type": "application/offset+octet-stream",
    }
    again = httpx.patch(url_of(upload), headers=headers, content=b"")
    assert again.status_code == 204, again.text
    assert intake.inbox_files(owner) == [intake.inbox / owner / photo.name]


def test_the_same_bytes_from_two_uploads_are_placed_once_and_other_bytes_get_a_tagged_name(
    intake: IntakeProcess, photo: Path, tmp_path: Path, owner: str
) -> None:
    _, first_token = intake.device(owner, "laptop")
    _, second_token = intake.device(owner, "phone")
    uploader(intake.url, first_token, photo, owner=owner).upload()
    uploader(intake.url, second_token, photo, owner=owner).upload()
    assert intake.inbox_files(owner) == [intake.inbox / owner / photo.name]
    other = tmp_path / photo.name
    other.write_bytes(photo.read_bytes() + b"\0edited")
    uploader(intake.url, first_token, other, owner=owner).upload()
    tagged = intake.inbox / owner / f"{photo.stem}~{sha256_of(other)[:12]}{photo.suffix}"
    assert tagged.read_bytes() == other.read_bytes()
    assert (intake.inbox / owner / photo.name).read_bytes() == photo.read_bytes()


def test_a_sha256_mismatch_discards_the_bytes_and_says_start_again(
    intake: IntakeProcess, photo: Path, owner: str
) -> None:
    _, token = intake.device(owner)
    client = tus.TusClient(f"{intake.url}/files", headers={"Authorization": f"Bearer {token}"})
    wrong = hashlib.sha256(b"not these bytes").hexdigest()
    upload = client.uploader(file_path=str(photo), metadata={"owner": owner, "filename": photo.name, "sha256": wrong})
    with pytest.raises(TusUploadFailed) as failed:
        upload.upload()
    assert failed.value.status_code == 460
    assert b"checksum_mismatch" in (failed.value.response_content or b"")
    assert intake.inbox_files(owner) == []
    assert not (intake.uploads / Path(url_of(upload)).name).exists()
    gone = httpx.head(url_of(upload), headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"})
    assert gone.status_code == 404


def test_metrics_count_the_durable_bytes_and_the_placement(intake: IntakeProcess, photo: Path, owner: str) -> None:
    _, token = intake.device(owner)
    before = metric_samples(f"{intake.url}/metrics", "dp3_intake_bytes_received_total")[""]
    placed = metric_samples(f"{intake.url}/metrics", "dp3_intake_uploads_completed_total")['{outcome="placed"}']
    uploader(intake.url, token, photo, owner=owner).upload()
    after = metric_samples(f"{intake.url}/metrics", "dp3_intake_bytes_received_total")[""]
    assert after - before == photo.stat().st_size
    now = metric_samples(f"{intake.url}/metrics", "dp3_intake_uploads_completed_total")['{outcome="placed"}']
    assert now == placed + 1


def test_creation_headers_are_checked(intake: IntakeProcess, photo: Path, owner: str) -> None:
    _, token = intake.device(owner)
    meta = metadata_header({"owner": owner, "filename": photo.name, "sha256": sha256_of(photo)})
    base = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", "Upload-Metadata": meta}
    deferred = httpx.post(f"{intake.url}/files", headers={**base, "Upload-Defer-Length": "1"})
    assert deferred.status_code == 400 and deferred.json()["error"] == "no_length"
    assert intake.inbox_files(owner) == []


def test_a_partial_upload_without_a_byte_for_the_expiry_is_deleted(
    tmp_path: Path, mongo_url: str, amqp_url: str, photo: Path, owner: str
) -> None:
    # 0.00005 days = 4.3 s; the cleanup looks every half second.
    intake = IntakeProcess(
        home=tmp_path / "home",
        mongo_url=mongo_url,
        database="dp3test_expiry",
        amqp_url=amqp_url,
        env_extra={"DP3_INTAKE_EXPIRY_DAYS": "0.00005", "DP3_INTAKE_CLEANUP_SECONDS": "0.5"},
    )
    intake.start()
    try:
        _, token = intake.device(owner)
        upload = uploader(intake.url, token, photo, chunk=16 * 1024, owner=owner)
        upload.upload(stop_at=16 * 1024)
        uid = Path(url_of(upload)).name
        assert (intake.uploads / uid).stat().st_size == 16 * 1024
        deadline = time.monotonic() + 30
        while any(intake.uploads.glob(f"{uid}*")):
            assert time.monotonic() < deadline, list(intake.uploads.iterdir())
            time.sleep(0.2)
        gone = httpx.head(url_of(upload), headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"})
        assert gone.status_code == 404
        assert "dp3_intake_expired_total 1.0" in httpx.get(f"{intake.url}/metrics").text
        assert intake.inbox_files(owner) == []
    finally:
        intake.stop()


def test_two_uploads_of_the_same_bytes_completing_at_once_deliver_one_file(
    intake: IntakeProcess, photo: Path, owner: str
) -> None:
    tokens = [intake.device(owner, f"laptop {n}")[1] for n in range(2)]
    uploads = [uploader(intake.url, token, photo, chunk=32 * 1024, owner=owner) for token in tokens]
    for upload in uploads:
        upload.upload(stop_at=photo.stat().st_size - 1)  # all but the last byte, then both finish together
    threads = [threading.Thread(target=upload.upload) for upload in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(upload.offset == photo.stat().st_size for upload in uploads)
    assert intake.inbox_files(owner) == [intake.inbox / owner / photo.name]
    assert (intake.inbox / owner / photo.name).read_bytes() == photo.read_bytes()
