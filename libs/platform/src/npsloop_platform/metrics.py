"""Prometheus metrics every service exports on `GET /metrics`.

Metrics are process-wide (the embedded runner holds every service in one process; labels tell
the parts apart). Updates are cheap (a dict lookup and a lock per call, once per request and once
per batch, never per message); what costs a query (the outbox depth) is measured at scrape time.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from . import tracing

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)

HTTP_REQUESTS = Counter(
    "npsloop_http_requests", "HTTP requests answered, by route template and status.", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "npsloop_http_request_duration_seconds", "Time to answer, by route template.", ["method", "route"], buckets=_LATENCY
)
CONSUMER_LAG = Gauge(
    "npsloop_consumer_lag",
    "Messages behind the newest offset, per partition (at the last fetch).",
    ["group", "topic", "partition"],
)
BATCH_SIZE = Histogram("npsloop_consumer_batch_size", "Messages per consumed batch.", ["group"], buckets=_SIZES)
HANDLER_SECONDS = Histogram(
    "npsloop_consumer_handler_seconds",
    "Time of one unit of work (a batch or a part of one).",
    ["group"],
    buckets=_LATENCY,
)
CONSUMED = Counter("npsloop_consumer_events", "Events handled, by type.", ["group", "event_type"])
DEAD_LETTERED = Counter("npsloop_dead_lettered", "Messages sent to a DLQ, by source topic.", ["group", "topic"])
RETRIES = Counter("npsloop_consumer_retries", "Retried units of work (outages and faults).", ["group"])
PUBLISHED = Counter("npsloop_events_published", "Events a consumer published, by type.", ["group", "event_type"])
DELIVERIES = Counter(
    "npsloop_deliveries", "Delivery outcomes reported (notification.status.v1), by kind and status.", ["kind", "status"]
)
OUTBOX_DEPTH = Gauge("npsloop_outbox_depth", "Outbox rows not yet published.", ["table"])
OUTBOX_OLDEST = Gauge(
    "npsloop_outbox_oldest_unpublished_seconds", "Age of the oldest unpublished outbox row (0: none).", ["table"]
)
OUTBOX_PUBLISHED = Counter("npsloop_outbox_published", "Outbox rows published.", ["table"])


class HttpMetrics:
    """ASGI middleware: one count and one latency per request, labelled with the route template
    (`/v1/cases/{case_id}`), never the raw path, so that ids do not explode the series. The
    labelled children are cached: a request costs two dict lookups, an increment and an observe."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._seconds: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if tracing.enabled():
            with tracing.server_span(scope.get("method", ""), scope.get("path", ""), scope.get("headers", ())) as span:
                await self._serve(scope, receive, send, span)
        else:
            await self._serve(scope, receive, send, None)

    async def _serve(self, scope: Any, receive: Any, send: Any, span: Any) -> None:
        status = 500
        t0 = time.perf_counter()

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope.get("method", "")
            route = scope.get("route")
            path = getattr(route, "path", None) or "<unmatched>"
            count = self._counts.get((method, path, status))
            if count is None:
                count = self._counts[(method, path, status)] = HTTP_REQUESTS.labels(method, path, str(status))
            seconds = self._seconds.get((method, path))
            if seconds is None:
                seconds = self._seconds[(method, path)] = HTTP_SECONDS.labels(method, path)
            count.inc()
            seconds.observe(time.perf_counter() - t0)
            if span is not None:
                span.update_name(f"{method} {path}")
                span.set_attribute("http.route", path)
                span.set_attribute("http.response.status_code", status)


def count_events(counter: Counter, group: str, type_tags: Iterable[str]) -> None:
    """One increment per event type (not per event) for a batch."""
    for tag, n in Tally(type_tags).items():
        counter.labels(group, tag).inc(n)


def count_deliveries(events: Iterable[Any]) -> None:
    for event in events:
        if getattr(event, "event_type", None) == "notification.status":
            DELIVERIES.labels(_value(event.payload.kind), _value(event.payload.status)).inc()


def _value(member: Any) -> str:
    return str(getattr(member, "value", member))


ScrapeHook = Callable[[], Awaitable[None]]


async def render(hooks: Iterable[ScrapeHook]) -> tuple[bytes, str]:
    """Run the scrape-time measurements (their failures leave the last value), then the text format."""
    import asyncio

    await asyncio.gather(*(hook() for hook in hooks), return_exceptions=True)
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
