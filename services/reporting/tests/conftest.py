from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from npsloop_platform.app import AppState, create_app
from npsloop_platform.bus import MemoryBus
from npsloop_platform.db import Database, migrate
from npsloop_platform.stores import StoreDirectory, load_stores
from npsloop_reporting.config import ReportingSettings
from npsloop_reporting.consumer import MIGRATIONS
from npsloop_reporting.main import build
from npsloop_reporting.models import SCHEMA
from npsloop_reporting.samples import classified, fold_into, opened

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)  # Wednesday of 2026-W48
W47 = datetime(2026, 11, 18, 10, tzinfo=UTC)

STORES_TOML = """
[defaults]
time_zone = "Europe/Berlin"

[regions.north]
name = "North"
digest_recipients = ["north@example.com"]

[regions.asia]
name = "Asia"

[stores."acme/berlin-1"]
region = "north"
time_zone = "Europe/Berlin"
digest_recipients = ["berlin-1@example.com", "staff@example.com"]

[stores."acme/hamburg-2"]
region = "north"
time_zone = "Europe/Berlin"

[stores."acme/tokyo-1"]
region = "asia"
time_zone = "Asia/Tokyo"
digest_recipients = ["tokyo@example.com"]
"""


@pytest.fixture
def stores_file(tmp_path: Path) -> Path:
    path = tmp_path / "stores.toml"
    path.write_text(STORES_TOML)
    return path


@pytest.fixture
def stores(stores_file: Path) -> StoreDirectory:
    return load_stores(stores_file)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await migrate(database_url, MIGRATIONS, SCHEMA)
    database = Database(database_url, pool_size=2)
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
async def api(database_url: str, stores_file: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    bus = MemoryBus()
    await bus.start()
    settings = ReportingSettings(
        database_url=database_url, bus="memory", stores_file=str(stores_file), digest_enabled=False, log_json=False
    )
    parts = build(settings, bus, clock=lambda: NOW)
    for c in parts.components:
        await c.start()
    app = create_app(
        "reporting",
        [],
        parts.routers,
        AppState(bus=bus, settings=settings, db=parts.db, keys=parts.keys, extras=parts.extras),
    )
    stores = load_stores(stores_file)
    events = [
        classified(W47 + timedelta(minutes=i), s, store="berlin-1")
        for i, s in enumerate([10] * 20 + [8] * 10 + [2] * 10)
    ]
    events += [classified(W47, 3, store="hamburg-2", channel="web", comment="<script>alert(1)</script>")]
    events += [opened(events[-1], W47, sla_due_at=W47 + timedelta(hours=24))]
    events += [classified(W47, 10, tenant="globex", store="berlin-1")]
    await fold_into(parts.db, stores, events)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
            yield client, parts
    finally:
        for c in reversed(parts.components):
            await c.stop()
        await bus.stop()
