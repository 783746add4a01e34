"""In-memory fakes behind DP3's narrow interfaces, for unit tests of the code that carries out decisions.

Each fake implements a :class:`typing.Protocol` declared beside the real
adapter, so mypy holds the two to the same shape:

* :class:`FakePublisher`: :class:`dp3.broker.EventPublisher` (RabbitMQ with
  publisher confirms); records what was published, and can refuse.
* :class:`FakeRunner`: ``dp3_dispatcher.runner.Runner`` (the Work Queue
  manager's loop thread); records each submitted task with its future, which
  the test resolves with the task result it wants the code to see.

Fakes serve unit tests of orchestration only; every adapter itself is
tested against the real thing (RabbitMQ, Work Queue, files) in
``tests/integration``. Nothing in a service imports this module.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from dp3.broker import Message
from dp3.errors import PublishNotConfirmed
from dp3.events import JournalEntry

TaskT = TypeVar("TaskT")
ResultT = TypeVar("ResultT")
StatsT = TypeVar("StatsT")


def delivered(
    entry: JournalEntry, *, redelivered: bool = False, handler_failures: int = 0, retries: int = 0
) -> Message:
    """``entry`` as a consumer's handler receives it."""
    return Message(
        entry=entry, redelivered=redelivered, handler_failures=handler_failures, retries=retries, body=entry.to_json()
    )


class FakePublisher:
    """Records published events; ``refuse`` makes the next publishes fail as an unconfirmed publish does."""

    def __init__(self) -> None:
        self.published: list[JournalEntry] = []
        self.refuse = False
        self._lock = threading.Lock()

    def publish(self, entry: JournalEntry) -> None:
        with self._lock:
            if self.refuse:
                raise PublishNotConfirmed(f"fake: refused {entry.routing_key}")
            self.published.append(entry)


@dataclass
class Submitted(Generic[TaskT, ResultT]):
    """One task handed to a :class:`FakeRunner`, and the future its submitter waits on."""

    task: TaskT
    future: concurrent.futures.Future[ResultT] = field(default_factory=concurrent.futures.Future)


class FakeRunner(Generic[TaskT, ResultT, StatsT]):
    """A task runner without a manager: tasks wait in :attr:`submitted` until the test resolves them.

    ``stats`` is whatever the test says the manager reports; ``hosts`` maps a
    worker address to its host name (for the hosts the code asks about), and
    ``blocked`` lists ``(host, seconds)`` in the order the code blocked them.
    """

    def __init__(self, stats: StatsT, *, hosts: dict[str, str] | None = None) -> None:
        self.stats = stats
        self.hosts = dict(hosts or {})
        self.blocked: list[tuple[str, int | None]] = []
        self.submitted: list[Submitted[TaskT, ResultT]] = []
        self._changed = threading.Condition()

    def submit(self, task: TaskT) -> concurrent.futures.Future[ResultT]:
        with self._changed:
            self.submitted.append(Submitted(task))
            self._changed.notify_all()
            return self.submitted[-1].future

    def block_host(self, hostname: str, seconds: int | None = None) -> None:
        with self._changed:
            self.blocked.append((hostname, seconds))
            self._changed.notify_all()

    def worker_hosts(self) -> set[str]:
        return set(self.hosts.values())

    def hostname_of(self, worker_address: str) -> str | None:
        return self.hosts.get(worker_address)

    def wait_for(self, condition: Callable[[FakeRunner[TaskT, ResultT, StatsT]], bool], timeout: float = 10.0) -> None:
        """Block until ``condition(self)`` holds (the code under test submits from its own threads)."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), timeout):
                raise TimeoutError(f"the runner did not reach the expected state within {timeout}s")

    def task(self, number: int) -> Submitted[TaskT, ResultT]:
        """The ``number``-th task submitted (from 0), waiting for it to come."""
        self.wait_for(lambda runner: len(runner.submitted) > number)
        return self.submitted[number]
