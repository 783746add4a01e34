"""Ask a running manager about its workers, over its own port (as ``work_queue_status`` does).

A task's ``hostname`` field can come back as freed memory in cctools 8.0
(seen for workers whose host name does not resolve, as on Condor slots), yet
the host blocklist is keyed by exactly that name. The manager's
``worker_status`` answer carries each worker's ``hostname`` next to its
``address_port``, which a task's ``host`` field reports reliably, so the name
to block can be looked up by address.

The manager answers only while some thread is inside ``work_queue_wait``; do
not call this from the thread that owns the manager.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerInfo:
    hostname: str
    address: str
    tasks_running: int


def query_workers(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> list[WorkerInfo]:
    """The workers connected to the manager at ``host:port``."""
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(b"worker_status\n")
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    records = json.loads(b"".join(chunks) or b"[]")
    return [
        WorkerInfo(
            hostname=str(record.get("hostname", "")),
            address=str(record.get("address_port", "")),
            tasks_running=int(record.get("total_tasks_running", 0)),
        )
        for record in records
        if isinstance(record, dict)
    ]


def hostname_of(port: int, worker_address: str, host: str = "127.0.0.1") -> str | None:
    """The host name the manager knows for the worker at ``worker_address``, if it is connected."""
    for worker in query_workers(port, host):
        if worker.address == worker_address:
            return worker.hostname or None
    return None
