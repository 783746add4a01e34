"""Benchmark: the intake's tus upload vs a plain HTTP PUT of the same bytes to the same server, on loopback.

Usage (from the repository root)::

    .venv/bin/python benchmarks/intake_bench.py [--mb 64] [--rounds 3] [--chunk-mb 4] [--dir DIR]

One intake app (the real one: device auth against an embedded MongoDB-wire
server, :class:`~dp3_intake.storage.DurableStorage`, sha256 verification and
placement in the inbox) is served by one uvicorn server on a free loopback
port. The same app gets one more route for the baseline, ``PUT /bench/plain``,
which streams the body to a file and fsyncs it once at the end: the least a
server can do to keep an upload.

Each round sends a file of ``--mb`` megabytes made of the real corpus photos:

* tus: tuspy (the field agent's client) in ``--chunk-mb`` chunks: POST, one
  PATCH per chunk (each fsynced before its reply), the completion's hash and
  the copy into the inbox;
* plain: one ``PUT`` of the same bytes with httpx.

It prints MB/s for both and the ratio. At the dig sites' 0.5 Mbps the link,
not the intake, is the limit: the number that matters is that the intake is
far above any field link.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import Request, Response
from pymongo import MongoClient
from tusclient import client as tus

from dp3 import devices
from dp3.files import write_all
from dp3.ports import free_port
from dp3_intake.app import Intake, create_app
from dp3_intake.receipts import COLLECTION, ReceiptIndex
from dp3_intake.settings import IntakeSettings
from dp3_portal.embedded import EmbeddedMongo

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "exif-samples"
OWNER = "BENCH-MARK"


def make_payload(path: Path, total_mb: int) -> None:
    sources = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg"))
    written = 0
    with path.open("wb") as stream:
        while written < total_mb * 1_000_000:
            for source in sources:
                data = source.read_bytes()
                stream.write(data)
                written += len(data)
                if written >= total_mb * 1_000_000:
                    break


def variant(payload: Path, out: Path, tag: int) -> str:
    """The payload plus a trailing tag byte string: new bytes each round, so nothing is "already there"."""
    data = payload.read_bytes() + f"round {tag}".encode()
    out.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def serving(work: Path) -> Iterator[tuple[str, str]]:
    """The intake app plus the baseline route on one uvicorn server; yields (base URL, device token)."""
    mongo = EmbeddedMongo(None, run_dir=work / "mongo")
    url = mongo.start()
    client: MongoClient[dict[str, Any]] = MongoClient(url)
    database = client["bench"]
    _, token = devices.create(database[devices.COLLECTION], owner=OWNER, label="bench")
    settings = IntakeSettings(home=work / "home", intake_progress_seconds=3600)
    intake = Intake(settings, database[devices.COLLECTION], ReceiptIndex(database[COLLECTION]), None)
    app = create_app(intake)
    plain_dir = work / "plain"
    plain_dir.mkdir()

    @app.put("/bench/plain/{name}")
    async def plain(name: str, request: Request) -> Response:
        fd = os.open(plain_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            async for chunk in request.stream():
                write_all(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        return Response(status_code=201)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(10)
        client.close()
        mongo.stop()


def tus_round(base: str, token: str, path: Path, sha256: str, chunk: int) -> float:
    uploader = tus.TusClient(f"{base}/files", headers={"Authorization": f"Bearer {token}"}).uploader(
        file_path=str(path), chunk_size=chunk, metadata={"owner": OWNER, "filename": path.name, "sha256": sha256}
    )
    started = time.perf_counter()
    uploader.upload()
    return time.perf_counter() - started


def plain_round(base: str, path: Path) -> float:
    with path.open("rb") as stream:
        started = time.perf_counter()
        response = httpx.put(f"{base}/bench/plain/{path.name}", content=stream, timeout=300)
        elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=64, help="megabytes per upload")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk-mb", type=float, default=4.0, help="tus PATCH size (the field agent's chunk)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        payload = work / "payload.bin"
        make_payload(payload, args.mb)
        megabytes = payload.stat().st_size / 1_000_000
        print(f"{megabytes:.1f} MB per upload (corpus photos), {args.rounds} rounds, tus chunks {args.chunk_mb} MB")
        tus_rates, plain_rates = [], []
        with serving(work) as (base, token):
            for round_ in range(args.rounds):
                upload = work / f"IMG_{round_:04d}.JPG"
                sha256 = variant(payload, upload, round_)
                tus_seconds = tus_round(base, token, upload, sha256, int(args.chunk_mb * 1_000_000))
                plain_seconds = plain_round(base, upload)
                tus_rates.append(megabytes / tus_seconds)
                plain_rates.append(megabytes / plain_seconds)
                print(f"round {round_ + 1}: tus {tus_rates[-1]:.1f} MB/s, plain PUT {plain_rates[-1]:.1f} MB/s")
                upload.unlink()
        tus_rate, plain_rate = statistics.median(tus_rates), statistics.median(plain_rates)
        print(f"median: intake (tus) {tus_rate:.1f} MB/s, plain PUT {plain_rate:.1f} MB/s")
        print(f"ratio tus / plain PUT = {tus_rate / plain_rate:.2f}")
        print(f"0.5 Mbps field link = {0.5 / 8:.3f} MB/s: the intake is {tus_rate / (0.5 / 8):.0f}x faster")


if __name__ == "__main__":
    main()
