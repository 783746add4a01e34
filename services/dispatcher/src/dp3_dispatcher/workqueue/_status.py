"""Ask a running manager about its workers, over its own port (as ``work_queue_status`` does).

A task's ``hostname`` field can come back as freed memory in cctools 8.0
(seen for workers whose host name does not resolve, as on Condor slots), yet
the host blocklist is keyed by exactly that name. The manager's
``worker_status`` answer carries each worker's ``hostname`` next to its
``address_port``, which a task's ``host`` field reports reliably, so the name
to block can be looked up by address.

The manager answers only while some thread is inside ``work_queue_wait``; do
not call this from the thread that owns the manager.

A manager with a password authenticates every connection, status queries
included, with cctools' ``link_auth_password`` exchange (done here in
Python): each side sends a random challenge and answers the other's with
``sha1(password + " " + challenge)``, so the password never crosses the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
from dataclasses import dataclass
from typing import BinaryIO

_AUTH_IDENT = b"auth password sha1"


@dataclass(frozen=True)
class WorkerInfo:
    hostname: str
    address: str
    tasks_running: int


def query_workers(
    port: int, host: str = "127.0.0.1", timeout: float = 10.0, *, password: bytes | None = None
) -> list[WorkerInfo]:
    """The workers connected to the manager at ``host:port`` (``password``: the manager's, if it has one)."""
    with socket.create_connection((host, port), timeout=timeout) as connection, connection.makefile("rb") as reader:
        if password is not None:
            _authenticate(connection, reader, password)
        connection.sendall(b"worker_status\n")
        answer = reader.read()
    records = json.loads(answer or b"[]")
    return [
        WorkerInfo(
            hostname=str(record.get("hostname", "")),
            address=str(record.get("address_port", "")),
            tasks_running=int(record.get("total_tasks_running", 0)),
        )
        for record in records
        if isinstance(record, dict)
    ]


def hostname_of(
    port: int, worker_address: str, host: str = "127.0.0.1", *, password: bytes | None = None
) -> str | None:
    """The host name the manager knows for the worker at ``worker_address``, if it is connected."""
    for worker in query_workers(port, host, password=password):
        if worker.address == worker_address:
            return worker.hostname or None
    return None


def _authenticate(connection: socket.socket, reader: BinaryIO, password: bytes) -> None:
    """cctools' symmetric challenge-response; PermissionError if either side refuses the other."""
    connection.sendall(_AUTH_IDENT + b"\n")
    if _line(reader) != _AUTH_IDENT:
        raise PermissionError("the manager does not use password authentication")
    mine = secrets.token_hex(32).encode()
    connection.sendall(mine + b"\n")
    theirs = _line(reader)
    connection.sendall(_response(password, theirs) + b"\n")
    accepted = hmac.compare_digest(_line(reader), _response(password, mine))
    connection.sendall(b"ok\n" if accepted else b"failure\n")
    if not accepted or _line(reader) != b"ok":
        raise PermissionError("the manager and this process do not hold the same Work Queue password")


def _response(password: bytes, challenge: bytes) -> bytes:
    return hashlib.sha1(password + b" " + challenge).hexdigest().encode()  # noqa: S324 - cctools' protocol


def _line(reader: BinaryIO) -> bytes:
    return reader.readline(1024).rstrip(b"\r\n")
