"""``Portal``: what every request handler of the portal may use, built once per web app.

It lives apart from :mod:`dp3_portal.app`, which builds it and includes the
routes, so that the routes (and :mod:`dp3_portal.retry`) depend on the
state alone and not on the module that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.templating import Jinja2Templates
from pymongo import AsyncMongoClient

from dp3.broker import Publisher
from dp3_portal.auth import BasicCache, LoginThrottle, Sessions, SessionTable, Users
from dp3_portal.catalog import Catalog
from dp3_portal.consuming import RecorderThread
from dp3_portal.device_registry import DeviceRegistry
from dp3_portal.settings import PortalSettings
from dp3_portal.store_health_probe import StoreHealthProbe
from dp3_portal.workers_probe import WorkersProbe


@dataclass
class Portal:
    """Everything a request handler may use; built in the web app's ``lifespan``."""

    settings: PortalSettings
    client: AsyncMongoClient[dict[str, Any]]
    catalog: Catalog
    users: Users
    sessions: Sessions
    session_table: SessionTable
    templates: Jinja2Templates
    workers_probe: WorkersProbe
    publisher: Publisher
    throttle: LoginThrottle
    store_health_probe: StoreHealthProbe = field(default_factory=lambda: StoreHealthProbe(None))
    basic_cache: BasicCache = field(default_factory=BasicCache)
    recorder: RecorderThread | None = None
    devices: DeviceRegistry | None = None


__all__ = ["Portal"]
