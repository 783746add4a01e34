"""The names the portal reads from other services' /metrics are the names those services register."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY, generate_latest

from dp3 import metric_names
from dp3_archiver.metrics import archiver_metrics
from dp3_dispatcher.metrics import dispatcher_metrics
from dp3_portal.store_health_probe import parse_stores
from dp3_portal.workers_probe import parse_workers

STORE = "/unit-test/metric-names"


def _exposed() -> dict[str, set[str]]:
    """Each sample name in this process's registry, with the label names it carries."""
    found: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


@contextmanager
def _one_store_in_trouble() -> Iterator[None]:
    """Series for one store on the archiver's real metric objects, removed afterwards."""
    archiver_metrics().store_up.labels(store=STORE).set(0)
    archiver_metrics().store_problem_since.labels(store=STORE).set(100.0)
    archiver_metrics().store_problem_until.labels(store=STORE).set(160.0)
    archiver_metrics().store_errors.labels(store=STORE, kind="full").inc(3)
    archiver_metrics().store_alias.labels(store=STORE, other="/unit-test/other", reason="nested").set(1)
    try:
        yield
    finally:
        archiver_metrics().store_up.remove(STORE)
        archiver_metrics().store_problem_since.remove(STORE)
        archiver_metrics().store_problem_until.remove(STORE)
        archiver_metrics().store_errors.remove(STORE, "full")
        archiver_metrics().store_alias.remove(STORE, "/unit-test/other", "nested")


def test_every_name_the_portal_reads_is_registered_with_the_labels_it_reads() -> None:
    dispatcher_metrics()  # the dispatcher registers them into the process registry when it builds its parts
    with _one_store_in_trouble():
        exposed = _exposed()
    for name, labels in metric_names.READ_BY_PORTAL.items():
        assert name in exposed, name
        assert exposed[name] == set(labels), name
        if name != metric_names.DISPATCHER_WORKERS_CONNECTED:
            assert name.startswith(metric_names.ARCHIVER_STORE_PREFIX), name


def test_the_portal_parses_what_the_archiver_and_dispatcher_expose() -> None:
    dispatcher_metrics()
    with _one_store_in_trouble():
        text = generate_latest().decode()
    (health,) = [store for store in parse_stores(text) if store.store == STORE]
    assert (health.up, health.since, health.until) == (False, 100.0, 160.0)
    assert health.errors == {"full": 3}
    assert health.aliases == {"/unit-test/other": "nested"}
    assert parse_workers(text) is not None
