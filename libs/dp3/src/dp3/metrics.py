"""Metrics made by a factory into a registry, not registered at import.

Each service declares its metrics as a frozen dataclass with a ``register``
classmethod, and exposes ``per_registry(TheMetrics.register)`` as its
factory: a service calls it with no argument (the process's default
registry, served on ``/metrics``; every caller in the process shares the one
set, since a registry refuses a name twice), a test with a fresh
:class:`~prometheus_client.CollectorRegistry` it then reads, in its own
interpreter. Names stay where they are (:mod:`dp3.metric_names` for those
other services read).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import REGISTRY, CollectorRegistry

MetricsT = TypeVar("MetricsT")


def per_registry(register: Callable[[CollectorRegistry], MetricsT]) -> Callable[..., MetricsT]:
    """``register`` run once per registry; later calls with the same registry return the same metrics."""
    made: weakref.WeakKeyDictionary[CollectorRegistry, MetricsT] = weakref.WeakKeyDictionary()
    lock = threading.Lock()

    def factory(registry: CollectorRegistry = REGISTRY) -> MetricsT:
        with lock:
            metrics = made.get(registry)
            if metrics is None:
                metrics = made[registry] = register(registry)
            return metrics

    return factory
