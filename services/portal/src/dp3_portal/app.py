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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates
from pymongo import AsyncMongoClient

from dp3 import store_places
from dp3.broker import BrokerOptions, Publisher
from dp3_portal import metrics
from dp3_portal.auth import BasicCache, LoginThrottle, Sessions, SessionTable, Users, load_secret_key
from dp3_portal.catalog import Catalog
from dp3_portal.consuming import RecorderThread
from dp3_portal.device_registry import DeviceRegistry
from dp3_portal.settings import PortalSettings
from dp3_portal.store_schema import ensure_indexes_async
from dp3_portal.stores import StoresProbe
from dp3_portal.workers import WorkersProbe

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Portal:
    """Everything a request handler may use; built in ``lifespan``."""

    settings: PortalSettings
    client: AsyncMongoClient[dict[str, Any]]
    catalog: Catalog
    users: Users
    sessions: Sessions
    session_table: SessionTable
    templates: Jinja2Templates
    workers: WorkersProbe
    publisher: Publisher
    throttle: LoginThrottle
    stores: StoresProbe = field(default_factory=lambda: StoresProbe(None))
    basic_cache: BasicCache = field(default_factory=BasicCache)
    recorder: RecorderThread | None = None
    devices: DeviceRegistry | None = None


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
            workers=WorkersProbe(settings.dispatcher_metrics_url),
            publisher=publisher,
            throttle=LoginThrottle(settings.login_free_attempts, settings.login_delay_seconds),
            stores=StoresProbe(settings.archiver_metrics_url),
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

    from dp3_portal.routes import api, devices, login, ops, pages

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


__all__ = ["Portal", "create_app"]
