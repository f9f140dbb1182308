"""The ingest app factory: `uvicorn --factory npsloop_ingest.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from npsloop_platform.access import MIGRATIONS as ACCESS_MIGRATIONS
from npsloop_platform.access import SCHEMA as ACCESS_SCHEMA
from npsloop_platform.access import KeyStore
from npsloop_platform.app import ServiceParts, create_service_app
from npsloop_platform.bus import Bus
from npsloop_platform.db import Database, Migrations

from .api.feedback import router as feedback_router
from .config import IngestSettings


def build(settings: IngestSettings, bus: Bus, keys: KeyStore | None = None) -> ServiceParts:
    """The parts of ingest, for the app below or for the one-process embedded runner (which
    passes the key store it shares with the other services)."""
    if keys is not None:
        return ServiceParts(routers=[feedback_router], keys=keys)
    db = Database(settings.dsn, pool_size=4)
    keys = KeyStore(db, cache_ttl_s=settings.access_cache_ttl_s)
    return ServiceParts(
        components=[db, Migrations(settings.dsn, ACCESS_MIGRATIONS, ACCESS_SCHEMA), keys],
        routers=[feedback_router],
        keys=keys,
    )


def create_app(settings: IngestSettings | None = None, bus: Bus | None = None) -> FastAPI:
    return create_service_app(
        "ingest",
        settings or IngestSettings(),
        build,
        bus,
        description="Accepts NPS feedback and publishes it to Kafka. 202 only after the broker's ack.",
    )
