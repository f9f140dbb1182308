"""Ingest's CPU per post, in process: its ASGI app driven directly, on real Kafka and PostgreSQL.

    uv run --frozen python -m bench.ingest_cpu                       # 5,000 posts, 20 batches of 1,000
    uv run --frozen python -m bench.ingest_cpu --profile single      # and where a single post's time goes

`make bench-ingest` measures throughput over HTTP, which on a shared 2-core machine moves with
whatever else runs (the broker, PostgreSQL, the load generator, other work). This one leaves out
uvicorn, the sockets and the load generator and reports ingest's own CPU per post (process time,
so the broker's and the database's are not in it), next to the bare endpoint's in the same run:
the figure to compare a change by. Every post must be accepted (202, or 200 per batch).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import os
import pstats
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from npsloop_platform.testing.servers import free_port_pair

from .infra import work_dir
from .load import make_events


async def call(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """One request through the ASGI app, as uvicorn would hand it over; (status, body)."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    status, chunks = 0, []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            chunks.append(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return status, b"".join(chunks)


async def drive(app: Any, path: str, bodies: list[bytes], headers: Any, concurrency: int, ok: int) -> float:
    """Post every body, `concurrency` in flight; the CPU seconds it took. Raises on another status."""
    queue = list(reversed(bodies))

    async def worker() -> None:
        while queue:
            status, answer = await call(app, path, queue.pop(), headers)
            if status != ok:
                raise RuntimeError(f"{path} answered {status}: {answer[:300]!r}")

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu


def profiled(enabled: bool) -> cProfile.Profile | None:
    if not enabled:
        return None
    profile = cProfile.Profile()
    profile.enable()
    return profile


async def measure(args: argparse.Namespace, bootstrap: str, pg_url: str) -> dict[str, float]:
    from npsloop_platform.testing.helpers import make_key
    from npsloop_platform.testing.infra import fresh_database

    out: dict[str, float] = {}
    async with fresh_database(pg_url) as db_url:
        key = await make_key(db_url, "source", tenant="bench")
        os.environ.update(
            {
                "NPSLOOP_MODE": "dev",
                "NPSLOOP_BUS": "kafka",
                "NPSLOOP_KAFKA_BOOTSTRAP": bootstrap,
                "NPSLOOP_TOPIC_PREFIX": f"bc{uuid.uuid4().hex[:8]}.",
                "DATABASE_URL": db_url,
                "NPSLOOP_LOG_LEVEL": "WARNING",
                "NPSLOOP_RATE_LIMIT_PER_S": "1000000",
                "NPSLOOP_RATE_LIMIT_BURST": "1000000",
            }
        )
        headers = [(b"content-type", b"application/json"), (b"authorization", f"Bearer {key}".encode())]
        for name, module in (("bare", "bench.bare_app"), ("ingest", "npsloop_ingest.main")):
            app = importlib.import_module(module).create_app()
            async with app.router.lifespan_context(app):
                for attempt in range(100):  # the topic is created on the first publish
                    status, _ = await call(app, "/v1/feedback", make_events(1, 99, attempt)[0].body, headers)
                    if status == 202:
                        break
                    await asyncio.sleep(0.2)
                await drive(app, "/v1/feedback", [e.body for e in make_events(300, 98, 1000)], headers, 16, 202)
                bodies = [e.body for e in make_events(args.posts, args.seed, 10_000)]
                profile = profiled(args.profile == "single" and name == "ingest")
                cpu = await drive(app, "/v1/feedback", bodies, headers, args.concurrency, 202)
                out[f"{name}_single_us"] = cpu / len(bodies) * 1e6
                if profile is not None:
                    profile.disable()
                    pstats.Stats(profile).sort_stats("tottime").print_stats(30)
                if name == "ingest" and args.batches:
                    items = make_events(args.batches * 1000, args.seed + 1, 100_000)
                    batches = [
                        b'{"items": [' + b",".join(e.body for e in items[i : i + 1000]) + b"]}"
                        for i in range(0, len(items), 1000)
                    ]
                    profile = profiled(args.profile == "batch")
                    cpu = await drive(app, "/v1/feedback:batch", batches, headers, args.batch_concurrency, 200)
                    out["ingest_batch_item_us"] = cpu / len(items) * 1e6
                    if profile is not None:
                        profile.disable()
                        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_cpu", description=__doc__)
    parser.add_argument("--posts", type=int, default=5000, help="single posts per app")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 to ingest")
    parser.add_argument("--batch-concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", choices=["single", "batch"], default=None)
    args = parser.parse_args(argv)
    from npsloop_platform.testing.infra import kafka_broker, postgres_server

    with (
        work_dir(False) as work,
        kafka_broker(Path(work) / "kafka", free_port_pair()) as bootstrap,
        postgres_server(Path(work) / "pg" / "data") as pg_url,
    ):
        result = asyncio.run(measure(args, bootstrap, pg_url))
    bare, single = result["bare_single_us"], result["ingest_single_us"]
    print(f"\ningest CPU in process ({os.cpu_count()} CPUs), real Kafka and PostgreSQL")
    print(f"  bare endpoint, single post   {bare:8.0f} us")
    print(f"  ingest, single post          {single:8.0f} us   ({single / bare:.1f}x the bare endpoint)")
    if "ingest_batch_item_us" in result:
        print(f"  ingest, per item of a batch  {result['ingest_batch_item_us']:8.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
