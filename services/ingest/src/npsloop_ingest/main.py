"""The ingest app factory: `uvicorn --factory npsloop_ingest.main:create_app`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from npsloop_platform.access import MIGRATIONS as ACCESS_MIGRATIONS
from npsloop_platform.access import SCHEMA as ACCESS_SCHEMA
from npsloop_platform.access import KeyStore
from npsloop_platform.app import Component, ServiceParts, create_service_app
from npsloop_platform.bus import Bus
from npsloop_platform.db import CUSTOM_PLANS, Database, Migrations

from .api.fast import FeedbackFastPath
from .api.feedback import router as feedback_router
from .api.updates import router as updates_router
from .config import IngestSettings
from .idempotency import IdempotencyStore
from .models import SCHEMA

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: IngestSettings, bus: Bus, keys: KeyStore | None = None, db: Database | None = None) -> ServiceParts:
    """The parts of ingest, for the app below or for the one-process embedded runner (which passes
    the key store and database it shares with the other services)."""
    own_db = db is None
    # Custom plans, always. The claim and the mark take their ids as arrays, which a generic plan
    # counts as 10 rows; PostgreSQL switched to one after five calls, while the table was small
    # (a sequential scan and a hash join), and kept it as the table grew: at 60,000 ids, ~800 us
    # of its CPU per paced post instead of ~270 (bench/README.md). Planning each call costs less.
    db = db or Database(settings.dsn, pool_size=8, session_settings=CUSTOM_PLANS)
    components: list[Component] = [db] if own_db else []
    if keys is None:
        keys = KeyStore(db, cache_ttl_s=settings.access_cache_ttl_s)
        components += [Migrations(settings.dsn, ACCESS_MIGRATIONS, ACCESS_SCHEMA), keys]
    idempotency = IdempotencyStore(db, retention_s=settings.idempotency_retention_s)
    components += [Migrations(settings.dsn, MIGRATIONS, SCHEMA), idempotency]
    return ServiceParts(
        components=components,
        routers=[feedback_router, updates_router],
        keys=keys,
        extras={"idempotency": idempotency},
        middleware=[FeedbackFastPath],
    )


def create_app(settings: IngestSettings | None = None, bus: Bus | None = None) -> FastAPI:
    return create_service_app(
        "ingest",
        settings or IngestSettings(),
        build,
        bus,
        description="Accepts NPS feedback and publishes it to Kafka. 202 only after the broker's ack.",
    )
