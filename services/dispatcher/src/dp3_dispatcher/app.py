"""The dispatcher assembled: manager, wait loop, factory, staging, consumer.

:class:`DispatcherApp` owns the lifetimes, in the shape of every service
(:mod:`dp3.app`): its constructor only keeps the settings; :meth:`DispatcherApp.start`
clears staging, stops the factories a killed predecessor left, opens the
manager's port and starts the loop, the factory and the consumer. Stop order matters: the consumer
first (no new work), then the Work Queue loop (outstanding renders are
abandoned unacknowledged, so RabbitMQ redelivers them), then the factory and
every worker it started.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from dp3.app import HandlerTable, Started, consumers
from dp3.broker import Consumer, HandlerResult, Message, Publisher
from dp3.events import Status
from dp3.files import ensure_secret_file
from dp3.topology import DISPATCHER, QueueSpec
from dp3_dispatcher.dispatcher import Dispatcher
from dp3_dispatcher.metrics import dispatcher_metrics
from dp3_dispatcher.orphans import reap_orphaned_factories
from dp3_dispatcher.runner import TaskRunner
from dp3_dispatcher.settings import DispatcherSettings
from dp3_dispatcher.staging import Staging
from dp3_dispatcher.workers import DemandFile, FactoryConfig, WorkerFactory, factory_workers, local_worker_environment
from dp3_dispatcher.workqueue import Manager

log = logging.getLogger(__name__)

METRICS_PERIOD = 1.0
DEMAND_FILE = "work-queue-demand.json"


@dataclass
class _Parts:
    """What :meth:`DispatcherApp.start` brought up; :meth:`DispatcherApp.stop` takes it down."""

    staging: Staging
    manager: Manager
    runner: TaskRunner
    factory: WorkerFactory | None
    demand_file: DemandFile | None
    dispatcher: Dispatcher
    publisher: Publisher
    consumer: Consumer
    consumer_thread: threading.Thread


class DispatcherApp:
    """The whole dispatcher (:class:`dp3.app.ServiceApp`); constructing it does nothing but keep the settings."""

    def __init__(self, settings: DispatcherSettings) -> None:
        self.settings = settings
        # In memory only, and now: /metrics shows every series from its first scrape, before start.
        self.metrics = dispatcher_metrics()
        self._started: Started[_Parts] = Started("dispatcher")

    def handlers(self) -> Mapping[QueueSpec, HandlerTable]:
        return {DISPATCHER: {Status.DETECTED: self._on_detected}}

    def _on_detected(self, message: Message) -> HandlerResult:
        return self._started.parts.dispatcher.handle(message)

    def start(self) -> None:
        """Clear what a previous run left, open the manager's port, start the loop, the factory and the consumer."""
        settings = self.settings
        staging = Staging(settings.staging_dir, max_pixels=settings.max_pixels)
        reaped = staging.reap()
        if reaped:
            log.info("removed %d render workspaces left by a previous run", reaped)
        # A SIGKILLed predecessor could not stop its factory and workers: stop them now.
        reap_orphaned_factories(settings.scratch_dir)
        # Workers must present this password (a cluster's other users can reach the port).
        if ensure_secret_file(settings.password_file):
            log.info("generated the Work Queue workers' password in %s", settings.password_file)
        manager = Manager(settings.work_queue_port, settings.work_queue_name, password_file=settings.password_file)
        # A worker that vanished without closing its connection (a crashed node, or a
        # killed worker whose task still holds the socket) is noticed by keepalives.
        manager.set_keepalive(settings.worker_keepalive_interval, settings.worker_keepalive_timeout)
        log.info("Work Queue manager listening on port %d", manager.port)
        runner = TaskRunner(manager)
        factory = self._factory(manager.port)
        # Workers from elsewhere: a factory outside (compose's condor profile) reads the demand from here.
        demand_file = DemandFile(settings.home / DEMAND_FILE) if factory is None else None
        dispatcher = Dispatcher(settings, runner, staging, metrics=self.metrics)
        publisher = Publisher(settings.amqp_url)
        (consumer,) = consumers(self.handlers(), settings.amqp_url, publisher=publisher, prefetch=settings.prefetch)
        consumer_thread = threading.Thread(target=consumer.run, name="dp3-consume", daemon=True)
        self._started.set(
            _Parts(staging, manager, runner, factory, demand_file, dispatcher, publisher, consumer, consumer_thread)
        )
        runner.start()
        if factory is not None and settings.workers_min > 0:
            factory.ensure_running()
        consumer_thread.start()

    def _factory(self, manager_port: int) -> WorkerFactory | None:
        settings = self.settings
        if settings.worker_provider == "none":
            return None
        config = FactoryConfig(
            provider=settings.worker_provider,
            manager_host=settings.work_queue_host or ("127.0.0.1" if settings.worker_provider == "local" else _fqdn()),
            manager_port=manager_port,
            workers_min=settings.workers_min,
            workers_max=settings.workers_max,
            idle_timeout=settings.worker_idle_timeout,
            scratch=settings.scratch_dir,
            condor_requirements=settings.condor_requirements,
            password_file=settings.password_file.absolute(),  # the factory runs in a folder of its own
            extra_env=local_worker_environment() if settings.worker_provider == "local" else {},
        )
        return WorkerFactory(config)

    def health(self) -> tuple[bool, str]:
        if not self._started.ready:
            return False, "starting"
        parts = self._started.parts
        if not parts.runner.alive.is_set():
            return False, "the Work Queue loop is not running"
        if not parts.consumer.connected.is_set():
            return False, "not consuming from RabbitMQ"
        return True, f"ok, {parts.runner.stats.workers_connected} workers on port {parts.manager.port}"

    def run(self, stop: threading.Event) -> None:
        """Refresh the gauges and keep the factory alive until ``stop`` is set."""
        parts = self._started.parts
        gauges = self.metrics
        while not stop.wait(METRICS_PERIOD):
            stats = parts.runner.stats
            gauges.workers_connected.set(stats.workers_connected)
            gauges.tasks_waiting.set(stats.tasks_waiting)
            gauges.tasks_running.set(stats.tasks_running)
            gauges.staging_full.set(int(parts.staging.full()))
            # The factory starts on first demand, a second after the first task is
            # queued, so that its first cycle sees the burst (it looks every 30 s);
            # once started it is kept running (restarted if it dies).
            if parts.demand_file is not None:
                parts.demand_file.write(
                    factory_workers(
                        parts.dispatcher.demand,
                        stats.workers_connected,
                        self.settings.workers_min,
                        self.settings.workers_max,
                    )
                )
            factory = parts.factory
            if factory is not None and (factory.pid is not None or stats.tasks_waiting > 0):
                factory.set_demand(parts.dispatcher.demand, stats.workers_connected)
                factory.ensure_running()
            if not parts.runner.alive.is_set():
                log.error("the Work Queue loop died; stopping")
                break

    def stop(self) -> None:
        """In the order of the module docstring; nothing if :meth:`start` never got as far as starting anything."""
        parts = self._started.take_for_stop()
        if parts is None:
            return
        parts.consumer.stop()
        if parts.consumer_thread.is_alive():
            parts.consumer_thread.join(30)
        parts.dispatcher.close()  # unsettled photos stay unacknowledged: RabbitMQ redelivers them
        parts.runner.stop()
        if parts.factory is not None:
            parts.factory.stop()
        parts.publisher.close()


def _fqdn() -> str:
    """The name Condor workers use to reach this manager."""
    return socket.getfqdn()
