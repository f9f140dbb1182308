"""The reporting app factory: `uvicorn --factory npsloop_reporting.main:create_app`."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from npsloop_platform.access import MIGRATIONS as ACCESS_MIGRATIONS
from npsloop_platform.access import SCHEMA as ACCESS_SCHEMA
from npsloop_platform.access import KeyStore
from npsloop_platform.app import Component, ServiceParts, create_service_app
from npsloop_platform.bus import Bus
from npsloop_platform.db import Database, Migrations
from npsloop_platform.stores import load_stores

from .api.dashboard import router as dashboard_router
from .api.reports import router as reports_router
from .config import ReportingSettings
from .consumer import MIGRATIONS, build_consumer
from .mailer import mailer_for
from .models import SCHEMA
from .scheduler import DigestScheduler


def utc_now() -> datetime:
    return datetime.now(UTC)


def build(
    settings: ReportingSettings,
    bus: Bus,
    db: Database | None = None,
    keys: KeyStore | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> ServiceParts:
    db = db or Database(settings.dsn)
    stores = load_stores(settings.stores_file)
    consumer = build_consumer(settings, bus, db, stores)
    own_keys = keys is None
    keys = keys or KeyStore(db, cache_ttl_s=settings.access_cache_ttl_s)
    components: list[Component] = [db] if own_keys else []
    if own_keys:
        components += [Migrations(settings.dsn, ACCESS_MIGRATIONS, ACCESS_SCHEMA), keys]
    scheduler = DigestScheduler(settings, db, stores, mailer_for(settings), clock=clock)
    components += [Migrations(settings.dsn, MIGRATIONS, SCHEMA), consumer]
    if settings.digest_enabled:
        components.append(scheduler)
    secret = settings.session_secret.get_secret_value().encode() if settings.session_secret else secrets.token_bytes(32)
    return ServiceParts(
        components=components,
        routers=[reports_router, dashboard_router],
        db=db,
        consumers=[consumer],
        keys=keys,
        extras={
            "reporting_settings": settings,
            "reporting_stores": stores,
            "reporting_clock": clock,
            "reporting_digests": scheduler,
            "session_secret": secret,
        },
    )


def create_app(settings: ReportingSettings | None = None, bus: Bus | None = None) -> FastAPI:
    return create_service_app("reporting", settings or ReportingSettings(), build, bus)
