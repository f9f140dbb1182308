"""The notifier's pool plans its statements for their ids every time (bench/README.md)."""

from __future__ import annotations

from npsloop_notifier.config import NotifierSettings
from npsloop_notifier.main import build
from npsloop_platform.bus import MemoryBus
from npsloop_platform.db import Database, driver_connection


async def test_the_notifier_pool_asks_for_custom_plans(database_url: str) -> None:
    """begin and finish take their delivery ids as arrays; a generic plan made while
    notifier.deliveries was small scanned it, 27-82 ms a statement once 150,000 rows had come
    before the next ANALYZE. Every connection of the notifier's own pool plans each call."""
    parts = build(NotifierSettings(database_url=database_url), MemoryBus())
    db = next(c for c in parts.components if isinstance(c, Database))
    try:
        for _ in range(2):  # two connections from the pool, not one checked once
            async with driver_connection(db.engine) as conn:
                assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    finally:
        await db.stop()
