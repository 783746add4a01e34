"""The broker's counters: made by a factory into a registry (no fresh interpreter needed), every series from 0."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from dp3 import ports
from dp3.broker import Consumer, Publisher, broker_metrics
from dp3.topology import DISPATCHER

NOWHERE = f"amqp://guest:guest@127.0.0.1:{ports.free_port()}/%2F"


def test_a_new_publisher_exports_every_routing_key_at_zero() -> None:
    registry = CollectorRegistry()  # this test's own: nothing another test published is in it
    Publisher(NOWHERE, metrics=broker_metrics(registry))
    text = generate_latest(registry).decode()
    for status in ("detected", "processed", "archived", "collected", "failed", "duplicate"):
        assert f'dp3_broker_published_total{{routing_key="photo.{status}"}} 0.0' in text, status


def test_the_factory_registers_once_per_registry_and_the_process_shares_its_counters() -> None:
    registry = CollectorRegistry()
    assert broker_metrics(registry) is broker_metrics(registry)
    assert broker_metrics(registry) is not broker_metrics(CollectorRegistry())
    publisher = Publisher(NOWHERE)  # a service's: the default registry, served on /metrics
    consumer = Consumer(NOWHERE, DISPATCHER, lambda _message: [], publisher=publisher)
    assert publisher._metrics is consumer._metrics is broker_metrics(REGISTRY)
    assert "dp3_broker_published_total" in generate_latest(REGISTRY).decode()


def test_each_services_metrics_come_from_a_factory_into_the_registry_it_is_given() -> None:
    from dp3_dispatcher.metrics import dispatcher_metrics
    from dp3_scanner.metrics import scanner_metrics

    for factory, name in (
        (scanner_metrics, "dp3_scanner_inbox_files"),
        (dispatcher_metrics, "dp3_dispatcher_workers_connected"),
    ):
        registry = CollectorRegistry()
        made = factory(registry)
        assert factory(registry) is made  # registered once; a second register would raise
        assert name in generate_latest(registry).decode(), name
