from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from npsloop.loop import Loop
from npsloop_platform.access import Role
from npsloop_platform.bus import Bus
from npsloop_platform.testing.helpers import bearer
from npsloop_platform.testing.servers import HttpSink, SmtpSink


@pytest.fixture
async def loop(bus: Bus, database_url: str, smtp_server: SmtpSink, http_sink: HttpSink) -> AsyncIterator[Loop]:
    """All four services in this process on the parametrized bus, with real SMTP and HTTP sinks."""
    the_loop = Loop(
        bus,
        database_url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        call_task_url=http_sink.url,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        log_json=False,
    )
    await the_loop.start()
    try:
        yield the_loop
    finally:
        await the_loop.stop()


@pytest.fixture
async def admin_key(loop: Loop) -> str:
    """An admin key of tenant acme: may post feedback and read everything of acme."""
    key, _ = await loop.keys.create("acme", Role.ADMIN, None, actor="test")
    return key


@pytest.fixture
async def client(loop: Loop, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    app = loop.app(manage_bus=False, manage_components=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://npsloop", headers=bearer(admin_key)) as c:
        yield c
