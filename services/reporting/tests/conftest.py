from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from npsloop_platform.db import Database, migrate
from npsloop_platform.stores import StoreDirectory, load_stores
from npsloop_reporting.consumer import MIGRATIONS
from npsloop_reporting.models import SCHEMA

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
