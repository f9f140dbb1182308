"""Load generation: the feedbacks (a third in each band), their Kafka payloads, and a lean
keep-alive HTTP client that POSTs them with a bounded number in flight, optionally at a fixed rate."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

TENANT = "bench"

DETRACTOR_COMMENTS = (
    "Rude staff and a long queue at the till",
    "Waited forever, the product was broken and nobody helped",
    "Overpriced and the store was dirty",
    "The delivery was late and the package damaged",
    "Card payment failed twice, I want a refund",
    "Nobody answered my questions, slow service",
)
PROMOTER_COMMENTS = (None, "Friendly and helpful staff", "Great prices and fresh products")


@dataclass
class Event:
    event_id: str
    band: str  # promoter | passive | detractor
    body: bytes
    key: str


def make_events(n: int, seed: int, offset: int = 0) -> list[Event]:
    """`n` feedbacks, a third in each band; customers `c-<offset>` on, so phases never share one."""
    from npsloop_schemas import customer_key

    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(offset, offset + n):
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        customer_id = f"c-{i:06d}"
        body: dict[str, Any] = {
            "tenant_id": TENANT,
            "event_id": event_id,
            "customer_id": customer_id,
            "store_id": f"store-{i % 40:02d}",
            "channel": ("pos", "web", "app")[i % 3 if i % 2 else 0],
            "locale": "de-DE",
        }
        kind = i % 3
        if kind == 0:
            band = "promoter"
            body["score"] = 9 + (i // 3) % 2
            body["contact"] = {"name": f"Customer {i}", "email": f"customer{i}@example.com"}
            comment = PROMOTER_COMMENTS[(i // 3) % len(PROMOTER_COMMENTS)]
            if comment:
                body["comment"] = comment
        elif kind == 1:
            band = "passive"
            body["score"] = 7 + (i // 3) % 2
        else:
            band = "detractor"
            body["score"] = (i // 3) % 7
            body["comment"] = DETRACTOR_COMMENTS[(i // 3) % len(DETRACTOR_COMMENTS)]
            body["contact"] = {"name": f"Customer {i}", "phone": f"+49 151 {i:07d}"}
        out.append(
            Event(event_id, band, json.dumps(body).encode(), customer_key(TENANT, customer_id, uuid.UUID(event_id)))
        )
    return out


def kafka_payloads(events: Sequence[Event]) -> list[tuple[bytes, bytes]]:
    """(key, value) exactly as ingest would publish each body (same model, same serializer)."""
    from npsloop_ingest.handlers import FeedbackIn, to_event
    from npsloop_schemas import serialize_event

    return [
        (e.key.encode(), serialize_event(to_event(FeedbackIn.model_validate_json(e.body), "npsloop-ingest", TENANT)))
        for e in events
    ]


@dataclass
class LoadResult:
    first_post_start: float | None = None
    last_post_start: float | None = None
    last_ack: float | None = None
    acked_at: dict[str, float] = field(default_factory=dict)
    http_latency: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)


class HttpConnection:
    """A minimal HTTP/1.1 keep-alive client connection on asyncio streams.

    The load generator must not be the bottleneck: httpx spends ~2-10 ms of CPU per request on this
    machine (its connection pool scales badly with 64 connections in flight), which capped the
    measured ingest rate at ~80/s. This one spends ~0.15 ms. `--http-client httpx` uses httpx.
    """

    def __init__(self, host: str, port: int, api_key: str = "") -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"{self.auth}Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await self._writer.drain()
            head = await self._reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
                elif name == b"transfer-encoding":
                    raise RuntimeError("chunked responses are not supported by the bench client")
            payload = await self._reader.readexactly(length) if length else b""
            if close:
                await self.close()
            return status, payload
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._reader = self._writer = None


async def post_all(
    base_url: str,
    events: Sequence[Event],
    concurrency: int,
    deadline: float,
    client_kind: str = "raw",
    rate: float | None = None,
    api_key: str = "",
) -> LoadResult:
    """POST every event once, `concurrency` in flight; record when each 202 came back.

    `rate`: start at most this many requests per second (open loop, evenly spaced); None: as fast
    as `concurrency` allows.
    """
    import httpx

    res = LoadResult()
    it = iter(enumerate(events))
    t_begin = time.monotonic()
    host, port = base_url.split("://", 1)[1].rsplit(":", 1)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            conn = HttpConnection(host, int(port), api_key)
            try:
                for i, ev in it:
                    if rate:
                        delay = t_begin + i / rate - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    if time.monotonic() > deadline:
                        res.statuses["not sent (deadline)"] += 1
                        continue
                    start = time.time()
                    if res.first_post_start is None:
                        res.first_post_start = start
                    res.last_post_start = start if res.last_post_start is None else max(res.last_post_start, start)
                    try:
                        if client_kind == "httpx":
                            r = await client.post("/v1/feedback", content=ev.body, headers=headers)
                            status, text = r.status_code, r.text
                        else:
                            async with asyncio.timeout(60):
                                status, payload = await conn.post("/v1/feedback", ev.body)
                            text = payload.decode(errors="replace")
                    except (httpx.HTTPError, OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                        res.statuses[type(exc).__name__] += 1
                        if len(res.error_samples) < 5:
                            res.error_samples.append(f"{ev.event_id}: {type(exc).__name__}: {exc}")
                        continue
                    at = time.time()
                    res.statuses[str(status)] += 1
                    if status == 202:
                        res.acked_at[ev.event_id] = at
                        res.http_latency.append(at - start)
                        res.last_ack = at if res.last_ack is None else max(res.last_ack, at)
                    elif len(res.error_samples) < 5:
                        res.error_samples.append(f"{ev.event_id}: HTTP {status} {text[:300]}")
            finally:
                await conn.close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return res
