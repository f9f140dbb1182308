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
from npsloop_platform.stores import load_stores

from .api.cases import router as cases_router
from .api.customers import router as customers_router
from .api.figures import router as figures_router
from .config import ActionsSettings
from .consumer import build_consumer
from .context import Context
from .models import SCHEMA, OutboxRow
from .policy import load_policy
from .sla import SlaMonitor

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: ActionsSettings, bus: Bus, db: Database | None = None) -> ServiceParts:
    # A wrong policy or store file stops the service here, naming the file and the line.
    ctx = Context(load_policy(settings.policy_file), load_stores(settings.stores_file), settings.source_name)
    db = db or Database(settings.dsn)
    relay = OutboxRelay(
        db,
        bus,
        cast(Table, OutboxRow.__table__),
        batch=settings.outbox_batch,
        poll_s=settings.outbox_poll_s,
        group=settings.group_id,
    )
    consumer = build_consumer(settings, bus, db, relay, ctx)
    keys = KeyStore(db, cache_ttl_s=settings.access_cache_ttl_s)
    monitor = [SlaMonitor(db, ctx, relay, poll_s=settings.sla_poll_s)] if settings.sla_monitor else []
    return ServiceParts(
        components=[
            db,
            Migrations(settings.dsn, ACCESS_MIGRATIONS, ACCESS_SCHEMA),
            Migrations(settings.dsn, MIGRATIONS, SCHEMA),
            keys,
            relay,
            consumer,
            *monitor,
        ],
        routers=[cases_router, customers_router, figures_router, admin_router],
        db=db,
        consumers=[consumer],
        keys=keys,
        extras={"actions": ctx, "actions_relay": relay},
    )


def create_app(settings: ActionsSettings | None = None, bus: Bus | None = None) -> FastAPI:
    return create_service_app("actions", settings or ActionsSettings(), build, bus)
