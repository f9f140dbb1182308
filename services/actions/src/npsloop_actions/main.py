"""The actions app factory: `uvicorn --factory npsloop_actions.main:create_app`."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from fastapi import FastAPI
from sqlalchemy import Table

from npsloop_platform.access import MIGRATIONS as ACCESS_MIGRATIONS
from npsloop_platform.access import SCHEMA as ACCESS_SCHEMA
from npsloop_platform.access import KeyStore
from npsloop_platform.access.api import router as admin_router
from npsloop_platform.app import ServiceParts, create_service_app
from npsloop_platform.bus import Bus
from npsloop_platform.db import Database, Migrations
from npsloop_platform.outbox import OutboxRelay

from .api.cases import router as cases_router
from .config import ActionsSettings
from .consumer import build_consumer
from .models import SCHEMA, OutboxRow

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: ActionsSettings, bus: Bus, db: Database | None = None) -> ServiceParts:
    db = db or Database(settings.dsn)
    relay = OutboxRelay(
        db,
        bus,
        cast(Table, OutboxRow.__table__),
        batch=settings.outbox_batch,
        poll_s=settings.outbox_poll_s,
    )
    consumer = build_consumer(settings, bus, db, relay)
    keys = KeyStore(db, cache_ttl_s=settings.access_cache_ttl_s)
    return ServiceParts(
        components=[
            db,
            Migrations(settings.dsn, ACCESS_MIGRATIONS, ACCESS_SCHEMA),
            Migrations(settings.dsn, MIGRATIONS, SCHEMA),
            keys,
            relay,
            consumer,
        ],
        routers=[cases_router, admin_router],
        db=db,
        consumers=[consumer],
        keys=keys,
    )


def create_app(settings: ActionsSettings | None = None, bus: Bus | None = None) -> FastAPI:
    return create_service_app("actions", settings or ActionsSettings(), build, bus)
