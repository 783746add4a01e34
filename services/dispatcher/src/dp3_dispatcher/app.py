"""The dispatcher assembled: manager, wait loop, factory, staging, consumer.

:class:`DispatcherApp` owns the lifetimes; ``__main__`` only builds settings,
starts it and waits for the stop signal. Stop order matters: the consumer
first (no new work), then the Work Queue loop (outstanding renders are
abandoned unacknowledged, so RabbitMQ redelivers them), then the factory and
every worker it started.
"""

from __future__ import annotations

import logging
import socket
import threading

from dp3.broker import Consumer, Publisher
from dp3.files import ensure_secret_file
from dp3.topology import DISPATCHER
from dp3_dispatcher import metrics
from dp3_dispatcher.dispatcher import Dispatcher
from dp3_dispatcher.orphans import reap_orphaned_factories
from dp3_dispatcher.runner import TaskRunner
from dp3_dispatcher.settings import DispatcherSettings
from dp3_dispatcher.staging import Staging
from dp3_dispatcher.workers import DemandFile, FactoryConfig, WorkerFactory, factory_workers, local_worker_environment
from dp3_dispatcher.workqueue import Manager

log = logging.getLogger(__name__)

METRICS_PERIOD = 1.0
DEMAND_FILE = "work-queue-demand.json"


class DispatcherApp:
    def __init__(self, settings: DispatcherSettings) -> None:
        self.settings = settings
        self.staging = Staging(settings.staging_dir, max_pixels=settings.max_pixels)
        reaped = self.staging.reap()
        if reaped:
            log.info("removed %d render workspaces left by a previous run", reaped)
        # A SIGKILLed predecessor could not stop its factory and workers: stop them now.
        reap_orphaned_factories(settings.scratch_dir)
        # Workers must present this password (a cluster's other users can reach the port).
        if ensure_secret_file(settings.password_file):
            log.info("generated the Work Queue workers' password in %s", settings.password_file)
        self.manager = Manager(settings.work_queue_port, settings.work_queue_name, password_file=settings.password_file)
        # A worker that vanished without closing its connection (a crashed node, or a
        # killed worker whose task still holds the socket) is noticed by keepalives.
        self.manager.set_keepalive(settings.worker_keepalive_interval, settings.worker_keepalive_timeout)
        log.info("Work Queue manager listening on port %d", self.manager.port)
        self.runner = TaskRunner(self.manager)
        self.factory = self._factory()
        # Workers from elsewhere: a factory outside (compose's condor profile) reads the demand from here.
        self.demand_file = DemandFile(settings.home / DEMAND_FILE) if self.factory is None else None
        self.dispatcher = Dispatcher(
            settings,
            self.runner,
            self.staging,
        )
        self.publisher = Publisher(settings.amqp_url)
        self.consumer = Consumer(
            settings.amqp_url,
            DISPATCHER,
            self.dispatcher.handle,
            publisher=self.publisher,
            prefetch=settings.prefetch,
        )
        self._consumer_thread = threading.Thread(target=self.consumer.run, name="dp3-consume", daemon=True)

    def _factory(self) -> WorkerFactory | None:
        settings = self.settings
        if settings.work_queue_batch == "none":
            return None
        config = FactoryConfig(
            batch=settings.work_queue_batch,
            manager_host=settings.work_queue_host or ("127.0.0.1" if settings.work_queue_batch == "local" else _fqdn()),
            manager_port=self.manager.port,
            workers_min=settings.workers_min,
            workers_max=settings.max_workers,
            idle_timeout=settings.worker_idle_timeout,
            scratch=settings.scratch_dir,
            condor_requirements=settings.condor_requirements,
            password_file=settings.password_file.absolute(),  # the factory runs in a folder of its own
            extra_env=local_worker_environment() if settings.work_queue_batch == "local" else {},
        )
        return WorkerFactory(config)

    def healthy(self) -> tuple[bool, str]:
        if not self.runner.alive.is_set():
            return False, "the Work Queue loop is not running"
        if not self.consumer.connected.is_set():
            return False, "not consuming from RabbitMQ"
        return True, f"ok, {self.runner.stats.workers_connected} workers on port {self.manager.port}"

    def start(self) -> None:
        self.runner.start()
        if self.factory is not None and self.settings.workers_min > 0:
            self.factory.ensure_running()
        self._consumer_thread.start()

    def run_until(self, stop: threading.Event) -> None:
        """Refresh the gauges and keep the factory alive until ``stop`` is set."""
        while not stop.wait(METRICS_PERIOD):
            stats = self.runner.stats
            metrics.WORKERS_CONNECTED.set(stats.workers_connected)
            metrics.TASKS_WAITING.set(stats.tasks_waiting)
            metrics.TASKS_RUNNING.set(stats.tasks_running)
            metrics.STAGING_FULL.set(int(self.staging.full()))
            # The factory starts on first demand, a second after the first task is
            # queued, so that its first cycle sees the burst (it looks every 30 s);
            # once started it is kept running (restarted if it dies).
            if self.demand_file is not None:
                self.demand_file.write(
                    factory_workers(
                        self.dispatcher.demand,
                        stats.workers_connected,
                        self.settings.workers_min,
                        self.settings.max_workers,
                    )
                )
            if self.factory is not None and (self.factory.pid is not None or stats.tasks_waiting > 0):
                self.factory.set_demand(self.dispatcher.demand, stats.workers_connected)
                self.factory.ensure_running()
            if not self.runner.alive.is_set():
                log.error("the Work Queue loop died; stopping")
                break

    def stop(self) -> None:
        self.consumer.stop()
        self._consumer_thread.join(30)
        self.dispatcher.close()  # unsettled photos stay unacknowledged: RabbitMQ redelivers them
        self.runner.stop()
        if self.factory is not None:
            self.factory.stop()
        self.publisher.close()


def _fqdn() -> str:
    """The name Condor workers use to reach this manager."""
    return socket.getfqdn()
