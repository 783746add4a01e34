"""A consumer process for the SIGKILL test: prints each event id, never acks."""

from __future__ import annotations

import sys
import threading

from dp3.broker import Consumer, Message, Publisher
from dp3.topology import QueueSpec


def main() -> None:
    url, queue = sys.argv[1], sys.argv[2]
    spec = QueueSpec(queue, ("photo.#",))

    def handler(message: Message) -> list[object]:
        print(f"got {message.entry.event_id}", flush=True)
        threading.Event().wait()  # hang "mid-work" until killed
        return []

    publisher = Publisher(url, queues=[spec])
    Consumer(url, spec, handler, publisher=publisher, queues=[spec], prefetch=1, workers=1).run()  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
