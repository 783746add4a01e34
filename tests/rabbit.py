"""A throwaway RabbitMQ virtual host per test session, so runs never collide."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from dp3.broker import Publisher
from dp3.events import JournalEntry

REPO_ROOT = Path(__file__).resolve().parent.parent


def rabbitmqctl(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def create_vhost(prefix: str = "dp3-test") -> tuple[str, str]:
    """Create a fresh vhost that guest may use; returns (vhost, amqp url)."""
    vhost = f"{prefix}-{secrets.token_hex(4)}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    return vhost, f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


def delete_vhost(vhost: str) -> None:
    rabbitmqctl("delete_vhost", vhost)


def restart_broker_app() -> None:
    """Stop and start the RabbitMQ application (the node stays up), as an operator would."""
    rabbitmqctl("stop_app")
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    if condition():  # a slow condition (an HTTP call) gets its last chance after the sleep
        return
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def publish(amqp_url: str, entries: Iterable[JournalEntry]) -> None:
    """Publish ``entries`` in order, each confirmed, as the services do."""
    publisher = Publisher(amqp_url)
    try:
        for entry in entries:
            publisher.publish(entry)
    finally:
        publisher.close()
