"""Fixtures of the notifier's tests: the notifier alone on the parametrized bus and real
PostgreSQL, an injected clock and sleep, an admin key, and real loopback receivers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from npsloop_notifier.api.deps import EXTRA, NotifierApi
from npsloop_notifier.config import NotifierSettings
from npsloop_notifier.handlers import Notifier
from npsloop_notifier.main import build
from npsloop_platform.access import KeyStore, Role
from npsloop_platform.app import AppState, create_app
from npsloop_platform.bus import Bus
from npsloop_platform.testing.helpers import bearer
from npsloop_schemas import (
    CaseOpenedPayloadV1,
    CaseOpenedV1,
    Contact,
    NotificationKind,
    NotificationRequestedPayloadV1,
    NotificationRequestedV1,
    Topics,
    serialize_event,
)


class Clock:
    """An injected clock: starts at real time (webhook timestamps must be near now), moves on demand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class Sleeps:
    """An injected sleep: records each wait, never waits; `hook` runs at each sleep (e.g. start SMTP)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.hook: Any = None

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.hook is not None:
            self.hook(len(self.waits))


@dataclass
class Service:
    settings: NotifierSettings
    bus: Bus
    api: NotifierApi
    notifier: Notifier
    keys: KeyStore
    http: httpx.AsyncClient
    admin: str
    clock: Clock
    sleeps: Sleeps

    async def publish_case_opened(self, tenant: str = "acme", customer: str = "acme:c-1") -> CaseOpenedV1:
        event = case_opened(tenant, customer)
        await self.bus.publish(Topics.CASE_EVENTS, serialize_event(event), key=customer)
        return event

    async def request(self, req: NotificationRequestedV1) -> None:
        await self.bus.publish(Topics.NOTIFICATION_REQUESTED, serialize_event(req), key=req.payload.customer_key)


def case_opened(tenant: str = "acme", customer: str = "acme:c-1") -> CaseOpenedV1:
    return CaseOpenedV1(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        tenant_id=tenant,
        source="actions",
        correlation_id=uuid.uuid4(),
        payload=CaseOpenedPayloadV1(
            case_id=uuid.uuid4(),
            feedback_event_id=uuid.uuid4(),
            customer_key=customer,
            segment="detractor",
            score=2,
            store_id="berlin-1",
            channel="pos",
            reason="detractor, score 2",
        ),
    )


def notification(
    kind: NotificationKind = NotificationKind.THANK_YOU_EMAIL,
    customer: str = "acme:c-1",
    *,
    email: str | None = "ann@example.com",
    phone: str | None = "+4915112345678",
    score: int = 10,
    locale: str | None = None,
    store_id: str | None = "berlin-1",
    tenant: str = "acme",
) -> NotificationRequestedV1:
    return NotificationRequestedV1(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        tenant_id=tenant,
        source="actions",
        correlation_id=uuid.uuid4(),
        payload=NotificationRequestedPayloadV1(
            delivery_id=uuid.uuid4(),
            kind=kind,
            customer_key=customer,
            recipient=Contact(name="Ann", email=email, phone=phone),
            feedback_event_id=uuid.uuid4(),
            score=score,
            comment="Long wait <b>at</b> the till",
            locale=locale,
            store_id=store_id,
        ),
    )


async def started_service(bus: Bus, database_url: str, **overrides: Any) -> tuple[Service, Any]:
    settings = NotifierSettings(
        bus=bus.name,
        database_url=database_url,
        mode=overrides.pop("mode", "dev"),
        log_json=False,
        max_attempts=overrides.pop("max_attempts", 4),
        # these tests see a failure at once; the retry window has its own (test_retry_window.py)
        retry_window_s=overrides.pop("retry_window_s", 0),
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        webhook_cache_ttl_s=0.01,
        **overrides,
    )
    clock, sleeps = Clock(), Sleeps()
    parts = build(settings, bus, clock=clock, sleep=sleeps)
    for c in parts.components:
        await c.start()
    app = create_app(
        "notifier",
        [],
        parts.routers,
        AppState(bus=bus, settings=settings, db=parts.db, keys=parts.keys, extras=parts.extras),
    )
    admin, _ = await parts.keys.create("acme", Role.ADMIN, None, actor="test")
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://notifier", headers=bearer(admin)
    )
    service = Service(
        settings, bus, parts.extras[EXTRA], parts.extras["notifier.delivery"], parts.keys, client, admin, clock, sleeps
    )
    return service, parts


async def stop_service(service: Service, parts: Any) -> None:
    await service.http.aclose()
    for c in reversed(parts.components):
        await c.stop()


@pytest.fixture
async def service(bus: Bus, database_url: str, smtp_server: Any) -> AsyncIterator[Service]:
    svc, parts = await started_service(bus, database_url, smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    try:
        yield svc
    finally:
        await stop_service(svc, parts)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """A real HTTP receiver on 127.0.0.1. `script`: the answers to give first, as (status, headers,
    delay_s); then 204. Every request is recorded with the status it got."""

    url: str = ""
    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """The bodies of the accepted requests, each verified with `secret` by the standardwebhooks package."""
        hook = Webhook(secret)
        return [hook.verify(r.body, r.headers) for r in self.received if r.status < 300]

    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.status < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with rec.lock:
                status, headers, delay = rec.script.pop(0) if rec.script else (204, {}, 0.0)
            if delay:
                time.sleep(delay)
            with rec.lock:
                rec.received.append(Received(dict(self.headers), body, status))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def body_of(r: Received) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(r.body)
    return data


@pytest.fixture
async def mem_service(database_url: str, smtp_server: Any, http_sink: Any) -> AsyncIterator[Service]:
    """The notifier on the memory bus, for what does not depend on the bus (policy, templates)."""
    from npsloop_platform.bus import MemoryBus

    bus = MemoryBus()
    await bus.start()
    svc, parts = await started_service(
        bus, database_url, smtp_host=smtp_server.host, smtp_port=smtp_server.port, call_task_url=http_sink.url
    )
    try:
        yield svc
    finally:
        await stop_service(svc, parts)
        await bus.stop()
