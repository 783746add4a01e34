"""Who consumes what: the broker topology every service declares the same way.

One durable queue per consuming stage, bound to the routing keys it needs.
Keeping the table here, beside the event contract, means a stage and its
producers can never disagree about a routing key.
"""

from __future__ import annotations

from dataclasses import dataclass

from dp3.events import Status


@dataclass(frozen=True)
class QueueSpec:
    name: str
    bindings: tuple[str, ...]
    retired: tuple[str, ...] = ()
    """Routing keys an earlier release bound to this queue: unbound at every declare, so a broker
    carried over from that release stops delivering them (a binding outlives the code that made it)."""


DISPATCHER = QueueSpec("dispatcher", (Status.DETECTED.routing_key,))
ARCHIVER = QueueSpec(
    "archiver",
    (Status.PROCESSED.routing_key, Status.FAILED.routing_key, Status.DUPLICATE.routing_key),
)
COLLECTOR = QueueSpec("archiver.collect", (Status.ARCHIVED.routing_key,))
SCANNER = QueueSpec("scanner.archived", (Status.ARCHIVED.routing_key, Status.COLLECTED.routing_key))
PORTAL = QueueSpec("portal.journal", ("photo.#",))

ALL_QUEUES = (DISPATCHER, ARCHIVER, COLLECTOR, SCANNER, PORTAL)

DEAD_LETTER_EXCHANGE = "dp3.dead"
DEAD_LETTER_QUEUE = "dp3.dead"
