"""``create_app(settings)``: the portal's FastAPI application.

Resources open and close in ``lifespan``: the asynchronous MongoDB client
for the pages and API, the publisher for retries, and (unless disabled) the
journal recorder's consumer thread with its own synchronous client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.templating import Jinja2Templates
from pymongo import AsyncMongoClient

from dp3 import store_places
from dp3.app import HandlerTable
from dp3.broker import BrokerOptions, HandlerResult, Message, Publisher
from dp3.errors import ConfigError
from dp3.topology import PORTAL, QueueSpec
from dp3_portal import metrics
from dp3_portal.auth import LoginThrottle, Sessions, SessionTable, Users, load_secret_key
from dp3_portal.catalog import Catalog
from dp3_portal.consuming import RecorderThread, journal_table
from dp3_portal.device_registry import DeviceRegistry
from dp3_portal.embedded import EmbeddedMongo, mongo_dir
from dp3_portal.routes import api, devices, login, ops, pages
from dp3_portal.settings import PortalSettings
from dp3_portal.state import Portal
from dp3_portal.store_health_probe import StoreHealthProbe
from dp3_portal.store_schema import ensure_indexes_async
from dp3_portal.workers_probe import WorkersProbe

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
STARTUP_FAILURE = 3
"""uvicorn's exit status when it could not start serving."""


def create_app(
    settings: PortalSettings, *, record: bool = True, broker_options: BrokerOptions | None = None
) -> FastAPI:
    """The app; ``record=False`` serves without consuming the journal (tests, read-only replicas)."""
    if not settings.mongo_url:
        raise ValueError("create_app needs settings.mongo_url (the entry point starts the embedded server)")
    mongo_url = settings.mongo_url

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
        db = client[settings.mongo_database]
        await ensure_indexes_async(db)
        users = Users(db)
        generated = await users.ensure_admin(
            settings.admin_password.get_secret_value() if settings.admin_password else None
        )
        if generated:
            # Printed once, on the first start; it is never stored in clear.
            print(f"dp3-portal: created user 'admin' with password: {generated}", file=sys.stderr, flush=True)
        for alias in await asyncio.to_thread(store_places.check_distinct, settings.stores):
            log.error("%s", alias.line())  # the status page says so too, for as long as it lasts
        secret = load_secret_key(settings.secret_key.get_secret_value() if settings.secret_key else None, settings.home)
        publisher = Publisher(settings.amqp_url, options=broker_options)
        portal = Portal(
            settings=settings,
            client=client,
            catalog=Catalog(db, settings.zone),
            users=users,
            sessions=Sessions(secret, settings.session_hours * 3600),
            session_table=SessionTable(db, settings.session_hours * 3600),
            templates=Jinja2Templates(directory=str(TEMPLATES)),
            workers_probe=WorkersProbe(settings.dispatcher_metrics_url),
            publisher=publisher,
            throttle=LoginThrottle(settings.login_free_attempts, settings.login_delay_seconds),
            store_health_probe=StoreHealthProbe(settings.archiver_metrics_url),
            devices=DeviceRegistry(mongo_url, settings.mongo_database),
        )
        if record:
            portal.recorder = await asyncio.to_thread(
                RecorderThread,
                settings.amqp_url,
                mongo_url,
                settings.mongo_database,
                publisher=publisher,
                prefetch=settings.recorder_prefetch,
                batch=settings.recorder_batch,
                options=broker_options,
            )
            portal.recorder.start()
        app.state.portal = portal
        try:
            yield
        finally:
            if portal.recorder is not None:
                await asyncio.to_thread(portal.recorder.stop)
            await asyncio.to_thread(publisher.close)
            if portal.devices is not None:
                portal.devices.close()
            await client.close()

    app = FastAPI(
        title="DP3 portal",
        summary="Gallery, pipeline status and JSON API for the DP3 photo catalog",
        lifespan=lifespan,
        # The default docs routes would be public; protected ones are in routes/api.py.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.middleware("http")(metrics.measure)
    login.install(app)
    for module in (ops, login, pages, devices, api):
        app.include_router(module.router)
    return app


class PortalApp:
    """The whole portal process in the shape of every service (:mod:`dp3.app`); constructing it does no I/O.

    :meth:`start` starts the embedded MongoDB-wire server when no
    ``DP3_MONGO_URL`` is given and builds the web app; :meth:`run` serves it
    with uvicorn until the stop event (the web app serves ``/metrics`` and
    ``/healthz`` itself, and its ``lifespan`` opens the database, the publisher
    and the recorder); :meth:`stop` stops the embedded server.
    """

    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings
        self._embedded: EmbeddedMongo | None = None
        self._web: FastAPI | None = None
        self._server: uvicorn.Server | None = None

    def handlers(self) -> Mapping[QueueSpec, HandlerTable]:
        # The consumer that dispatches through this table is built in the web app's
        # lifespan (dp3_portal.consuming.RecorderThread), from the same journal_table.
        return {PORTAL: journal_table(self._record)}

    def _record(self, message: Message) -> HandlerResult:
        portal: Portal | None = getattr(self._web.state, "portal", None) if self._web is not None else None
        if portal is None or portal.recorder is None:
            raise RuntimeError("the portal is not recording")
        return portal.recorder.handler(message)

    def health(self) -> tuple[bool, str]:
        if self._server is None or not self._server.started:
            return False, "starting"
        return True, f"ok: serving on port {self.settings.portal_port}"

    def start(self) -> None:
        settings = self.settings
        if not settings.mongo_url:
            self._embedded = EmbeddedMongo(mongo_dir(settings.home), run_dir=mongo_dir(settings.home))
            try:
                url = self._embedded.start()
            except ConfigError as exc:
                raise SystemExit(f"dp3-portal: bad configuration: {exc}") from None
            log.info("DP3_MONGO_URL unset: started the embedded MongoDB-wire server at %s", url)
            settings = settings.model_copy(update={"mongo_url": url})
        self._web = create_app(settings)
        self._server = uvicorn.Server(
            uvicorn.Config(
                self._web,
                host=settings.portal_host,
                port=settings.portal_port,
                log_config=None,
                access_log=False,
                # Behind the TLS proxy (deploy/caddy) the client is the proxy: believe its
                # X-Forwarded-For, so the login throttle counts each real client, and only its.
                proxy_headers=settings.trusted_proxies is not None,
                forwarded_allow_ips=settings.trusted_proxies,
            )
        )

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set (uvicorn also stops on SIGTERM/SIGINT by itself)."""
        server = self._server
        if server is None:
            raise RuntimeError("the portal is not started")

        def exit_on_stop() -> None:
            stop.wait()
            server.should_exit = True

        threading.Thread(target=exit_on_stop, name="dp3-portal-stop", daemon=True).start()
        # uvicorn restores the handlers it found (dp3.service's, which set ``stop``) and
        # re-raises the signal that stopped it: that lands there, harmlessly.
        server.run()
        if not server.started and not stop.is_set():
            raise SystemExit(STARTUP_FAILURE)  # e.g. the port is taken; uvicorn said why

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None


__all__ = ["PortalApp", "create_app"]
