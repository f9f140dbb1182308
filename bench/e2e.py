"""End-to-end benchmark: the whole loop on real Kafka and Postgres, each service its own process.

    uv run --frozen python -m bench.e2e --events 20000        (what `make bench` runs)

1. Starts a Kafka broker (own data dir, free port) and an embedded PostgreSQL in a temp dir, plus
   a real SMTP server and a real HTTP call-task sink (bench.sinks, own process). All on 127.0.0.1.
2. Starts ingest, classifier, actions and notifier as four uvicorn processes (unique topic prefix,
   JSON logs at WARNING into the temp dir) and waits for every /readyz.
3. POSTs N feedbacks to ingest (`--concurrency` in flight): a third promoters with an email,
   a third passives, a third detractors with a comment and a phone number.
4. Waits until every detractor has a case in Postgres, every promoter's thank-you email reached the
   SMTP server and every detractor's call task reached the HTTP sink (until no progress for
   `--stall` seconds), then checks for missing and duplicate effects.
5. Measures the ceiling: the same payloads through three raw aiokafka consume-and-produce hops
   (bench.raw_hops), and prints pipeline/raw ratios.

Results: a table on stdout and `.cache/bench/e2e-<timestamp>.json`. Exit status 0 only when every
expected effect happened exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from npsloop_platform.testing.servers import free_port, free_port_pair

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / ".cache" / "bench"
SERVICES = ("ingest", "classifier", "actions", "notifier")
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


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- processes --

try:
    _LIBC: Any = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: never outlive the benchmark


class Child:
    """A child process with its output in a log file; stopped by pid (SIGTERM, then SIGKILL)."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.name, self.log_path = name, log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd or REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def stop(self, timeout: float = 30) -> None:
        self.signal_stop()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout}s; SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(10)
        if not self._log.closed:
            self._log.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Children:
    def __init__(self) -> None:
        self.all: list[Child] = []

    def spawn(
        self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Child:
        child = Child(name, argv, log_path, env, cwd)
        self.all.append(child)
        return child

    def stop(self, children: Sequence[Child] | None = None, timeout: float = 30) -> None:
        targets = [c for c in (children if children is not None else self.all)]
        for c in targets:  # SIGTERM all first, so they shut down in parallel
            c.signal_stop()
        for c in targets:
            c.stop(timeout)


# ------------------------------------------------------------------------------------- stats --


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


def summary_ms(values_s: Sequence[float]) -> dict[str, Any]:
    if not values_s:
        return {"n": 0}
    v = sorted(x * 1000 for x in values_s)
    return {
        "n": len(v),
        "min": v[0],
        "p50": percentile(v, 50),
        "p95": percentile(v, 95),
        "p99": percentile(v, 99),
        "max": v[-1],
        "mean": sum(v) / len(v),
    }


# ----------------------------------------------------------------------------------- workload --


@dataclass
class Event:
    event_id: str
    band: str  # promoter | passive | detractor
    body: bytes
    key: str


def make_events(n: int, seed: int) -> list[Event]:
    from npsloop_schemas import customer_key

    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(n):
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
    from npsloop_ingest.api.feedback import FeedbackIn, to_event
    from npsloop_schemas import serialize_event

    return [
        (e.key.encode(), serialize_event(to_event(FeedbackIn.model_validate_json(e.body), "npsloop-ingest")))
        for e in events
    ]


# --------------------------------------------------------------------------------- the sinks --


class JsonlTail:
    """Reads the complete lines appended to a JSON-lines file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self._offset, self._partial = path, 0, b""
        self.records: list[dict[str, Any]] = []

    def poll(self) -> int:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        self._offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            if line.strip():
                self.records.append(json.loads(line))
        return len(lines)


# ----------------------------------------------------------------------------- cpu accounting --


class CpuMeter:
    """CPU seconds per component (process and its children) between `start()` and `stop()`."""

    def __init__(self) -> None:
        self.pids: dict[str, list[int]] = {}
        self._t0: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.wall = 0.0
        self._wall0 = 0.0
        self._recursive: set[str] = set()

    def add(self, name: str, pid: int | None, *, with_children: bool = False) -> None:
        """`with_children`: count its child processes too (Postgres backends); not for the benchmark
        itself, whose children are the services, counted on their own."""
        if pid:
            self.pids.setdefault(name, []).append(pid)
            if with_children:
                self._recursive.add(name)

    def _cpu(self, name: str) -> float:
        import psutil

        total = 0.0
        for pid in self.pids.get(name, []):
            try:
                p = psutil.Process(pid)
                procs = [p, *(p.children(recursive=True) if name in self._recursive else [])]
            except psutil.Error:
                continue
            for q in procs:
                with contextlib.suppress(psutil.Error):
                    t = q.cpu_times()
                    total += t.user + t.system
            if name in self._recursive:  # children that already exited (and were reaped)
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.children_user + t.children_system
        return total

    def start(self) -> None:
        self._wall0 = time.monotonic()
        self._t0 = {name: self._cpu(name) for name in self.pids}

    def stop(self) -> None:
        self.wall = time.monotonic() - self._wall0
        self.used = {name: self._cpu(name) - self._t0.get(name, 0.0) for name in self.pids}


def postgres_pid(data_dir: Path) -> int | None:
    pidfile = data_dir / "postmaster.pid"
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def kafka_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------ the benchmark --


@dataclass
class LoadResult:
    first_post_start: float | None = None
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

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
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
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            conn = HttpConnection(host, int(port))
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


async def wait_ready(child: Child, url: str, timeout: float) -> float:
    import httpx

    t0 = time.monotonic()
    last = ""
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() - t0 < timeout:
            if not child.alive():
                raise RuntimeError(
                    f"{child.name} exited with {child.proc.returncode} before it was ready; "
                    f"last lines of {child.log_path}:\n{child.tail()}"
                )
            try:
                r = await client.get(url)
                if r.status_code == 200:
                    return time.monotonic() - t0
                last = f"HTTP {r.status_code} {r.text[:300]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
            await asyncio.sleep(0.5)
    raise RuntimeError(
        f"{child.name} not ready after {timeout:.0f}s ({last}); last lines of {child.log_path}:\n{child.tail()}"
    )


def service_env(name: str, *, bootstrap: str, prefix: str, db_url: str, sinks: dict[str, Any]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NPSLOOP_") and k not in ("DATABASE_URL", "VIRTUAL_ENV_PROMPT")
    }
    env.update(
        NPSLOOP_BUS="kafka",
        NPSLOOP_KAFKA_BOOTSTRAP=bootstrap,
        NPSLOOP_TOPIC_PREFIX=prefix,
        DATABASE_URL=db_url,
        NPSLOOP_SMTP_HOST=sinks["smtp_host"],
        NPSLOOP_SMTP_PORT=str(sinks["smtp_port"]),
        NPSLOOP_CALL_TASK_URL=sinks["call_task_url"],
        NPSLOOP_LOG_JSON="true",
        NPSLOOP_LOG_LEVEL="WARNING",
        NPSLOOP_HTTP_HOST="127.0.0.1",
        PYTHONUNBUFFERED="1",
    )
    return env


async def scalar(db: Any, sql: str) -> Any:
    from sqlalchemy import text

    async with db.session() as session:
        return (await session.execute(text(sql))).scalar_one()


async def rows(db: Any, sql: str) -> list[Any]:
    from sqlalchemy import text

    async with db.session() as session:
        return list((await session.execute(text(sql))).all())


def count_effects(records: Sequence[dict[str, Any]], expected: dict[str, str]) -> dict[str, Any]:
    """First receive time per expected delivery id; duplicates; unexpected ids."""
    seen = Counter(r["id"] for r in records)
    first: dict[str, float] = {}
    for r in records:
        if r["id"] in expected and r["id"] not in first:
            first[r["id"]] = r["t"]
    return {
        "first": first,
        "received": len(records),
        "duplicates": sum(c - 1 for c in seen.values() if c > 1),
        "duplicate_ids": sorted(i for i, c in seen.items() if c > 1)[:10],
        "missing": len(set(expected) - set(first)),
        "unexpected": sum(c for i, c in seen.items() if i not in expected),
    }


async def run_pipeline(
    args: argparse.Namespace,
    work: Path,
    bootstrap: str,
    pg_url: str,
    children: Children,
    deadline: float,
    result: dict[str, Any],
    kafka_data: Path,
    pg_data: Path,
) -> None:
    from npsloop_actions.handlers import derived_id
    from npsloop_platform.bus.kafka import KafkaBus
    from npsloop_platform.db import Database
    from npsloop_platform.testing.infra import fresh_database
    from npsloop_schemas import ALL_TOPICS

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    result["topic_prefix"] = prefix
    raw_reserve = 0 if args.skip_raw else args.raw_reserve
    wait_deadline = deadline - raw_reserve

    log(f"creating topics under prefix {prefix!r}")
    await KafkaBus(bootstrap, topic_prefix=prefix).ensure_topics(ALL_TOPICS)

    async with fresh_database(pg_url) as db_url:
        sinks_dir = work / "sinks"
        sink_child = children.spawn(
            "sinks", [sys.executable, "-m", "bench.sinks", "--out", str(sinks_dir)], work / "sinks.log"
        )
        services: dict[str, tuple[Child, int]] = {}
        db = Database(db_url, pool_size=2)
        try:
            ready_file = sinks_dir / "sinks.ready.json"
            t0 = time.monotonic()
            while not ready_file.exists():
                if not sink_child.alive() or time.monotonic() - t0 > 30:
                    raise RuntimeError(f"SMTP/HTTP sinks did not start:\n{sink_child.tail()}")
                await asyncio.sleep(0.1)
            sinks = json.loads(ready_file.read_text())
            log(f"SMTP sink 127.0.0.1:{sinks['smtp_port']}, call-task sink {sinks['call_task_url']}")

            profiled = {p.strip() for p in (args.profile or "").split(",") if p.strip()}
            for name in SERVICES:
                port = free_port()
                argv = [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    f"npsloop_{name}.main:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ]
                if name in profiled:  # cProfile writes the stats when uvicorn exits after SIGTERM
                    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                    out = RESULTS_DIR / f"profile-{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.pstats"
                    argv = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "bench.profiled_uvicorn", *argv[3:]]
                    result.setdefault("profiles", {})[name] = str(out.relative_to(REPO))
                env = service_env(name, bootstrap=bootstrap, prefix=prefix, db_url=db_url, sinks=sinks)
                if name in profiled:
                    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
                services[name] = (children.spawn(name, argv, work / f"{name}.log", env, cwd=work), port)
            log("started " + ", ".join(f"{n} (pid {c.pid}, :{p})" for n, (c, p) in services.items()))
            ready_s = await asyncio.gather(
                *(wait_ready(c, f"http://127.0.0.1:{p}/readyz", args.ready_timeout) for c, p in services.values())
            )
            result["services_ready_s"] = dict(zip(services, [round(s, 2) for s in ready_s], strict=True))
            log(
                "all four services ready: " + ", ".join(f"{n} {s:.1f}s" for n, s in zip(services, ready_s, strict=True))
            )

            events = make_events(args.events, args.seed)
            cpu = CpuMeter()
            for name, (c, _) in services.items():
                cpu.add(name, c.pid)
            cpu.add("kafka", kafka_pid(kafka_data))
            cpu.add("postgres", postgres_pid(pg_data), with_children=True)
            cpu.add("sinks", sink_child.pid)
            cpu.add("bench (load generator)", os.getpid())

            emails_tail, calls_tail = JsonlTail(sinks_dir / "emails.jsonl"), JsonlTail(sinks_dir / "calls.jsonl")
            log(f"posting {len(events)} feedbacks to ingest with {args.concurrency} in flight")
            cpu.start()
            load_task = asyncio.create_task(
                post_all(
                    f"http://127.0.0.1:{services['ingest'][1]}",
                    events,
                    args.concurrency,
                    wait_deadline,
                    args.http_client,
                    args.rate,
                )
            )

            # --- wait for the effects ------------------------------------------------------------
            by_band = {b: [e for e in events if e.band == b] for b in ("promoter", "passive", "detractor")}
            load: LoadResult | None = None
            last_change, last_state = time.monotonic(), None
            last_print = 0.0
            stalled = timed_out = False
            while True:
                await asyncio.sleep(0.5)
                if load is None and load_task.done():
                    load = load_task.result()
                    acc = len(load.acked_at)
                    span = (load.last_ack or 0) - (load.first_post_start or 0)
                    log(
                        f"ingest done: {acc} accepted in {span:.1f}s ({acc / span if span > 0 else 0:.0f}/s); "
                        f"statuses {dict(load.statuses)}"
                    )
                emails_tail.poll()
                calls_tail.poll()
                cases = int(await scalar(db, "SELECT count(*) FROM actions.cases"))
                stored = int(await scalar(db, "SELECT count(*) FROM actions.feedback"))
                state = (
                    cases,
                    stored,
                    len(emails_tail.records),
                    len(calls_tail.records),
                    len(load.acked_at) if load else -1,
                )
                now = time.monotonic()
                if state != last_state:
                    last_state, last_change = state, now
                if now - last_print >= args.progress_every:
                    last_print = now
                    log(
                        f"progress: feedback stored {stored}, cases {cases}, emails {len(emails_tail.records)}, "
                        f"call tasks {len(calls_tail.records)}" + ("" if load else " (still posting)")
                    )
                if load is not None:
                    acked_ids = load.acked_at
                    want_cases = sum(1 for e in by_band["detractor"] if e.event_id in acked_ids)
                    want_emails = sum(1 for e in by_band["promoter"] if e.event_id in acked_ids)
                    if (
                        cases >= want_cases
                        and len(emails_tail.records) >= want_emails
                        and len(calls_tail.records) >= want_cases
                        and stored >= len(acked_ids)
                    ):
                        break
                    if now - last_change > args.stall:
                        stalled = True
                        log(f"no progress for {args.stall:.0f}s; stopping the wait")
                        break
                if now > wait_deadline:
                    timed_out = True
                    log("time budget exhausted while waiting for the loop to close")
                    if not load_task.done():
                        load_task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await load_task
                    break
            # let late duplicates (if any) show up before counting them
            await asyncio.sleep(min(args.settle, max(0.0, wait_deadline - time.monotonic())))
            cpu.stop()
            emails_tail.poll()
            calls_tail.poll()
            if load is None:
                load = LoadResult()

            # --- collect -------------------------------------------------------------------------
            acked = load.acked_at
            promoters = [e for e in by_band["promoter"] if e.event_id in acked]
            detractors = [e for e in by_band["detractor"] if e.event_id in acked]
            email_ids = {
                str(derived_id("delivery:thank_you_email", uuid.UUID(e.event_id))): e.event_id for e in promoters
            }
            call_ids = {str(derived_id("delivery:call_task", uuid.UUID(e.event_id))): e.event_id for e in detractors}
            emails = count_effects(emails_tail.records, email_ids)
            calls = count_effects(calls_tail.records, call_ids)
            case_rows = await rows(
                db, "SELECT feedback_event_id::text, extract(epoch from opened_at)::float8 FROM actions.cases"
            )
            case_at = {fid: float(t) for fid, t in case_rows}
            detractor_ids = {e.event_id for e in detractors}
            fb_rows = await rows(
                db, "SELECT feedback_event_id::text, extract(epoch from stored_at)::float8 FROM actions.feedback"
            )
            stored_at = {fid: float(t) for fid, t in fb_rows}

            async def duplicate_timeline_entries(entry: str) -> int:
                """Timeline entries beyond the first per case: an effect applied twice."""
                sql = (
                    "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM actions.case_timeline "
                    f"WHERE entry = '{entry}' GROUP BY case_id) s WHERE n > 1"
                )
                return int(await scalar(db, sql))

            dup_case_opened = await duplicate_timeline_entries("opened")
            dup_contacted = await duplicate_timeline_entries("delivery_sent")
            case_status = {
                s: int(n) for s, n in await rows(db, "SELECT status, count(*) FROM actions.cases GROUP BY status")
            }
            outbox = await rows(
                db,
                """
                SELECT count(*), count(*) FILTER (WHERE published_at IS NULL), count(*) - count(DISTINCT event_id)
                FROM actions.outbox""",
            )
            deliveries = {
                f"{k}/{s}": int(n)
                for k, s, n in await rows(
                    db, "SELECT kind, status, count(*) FROM notifier.deliveries GROUP BY kind, status"
                )
            }
            retried = int(await scalar(db, "SELECT count(*) FROM notifier.deliveries WHERE attempts > 1"))

            lat_case = [case_at[e] - acked[e] for e in detractor_ids if e in case_at]
            lat_email = [t - acked[email_ids[d]] for d, t in emails["first"].items()]
            lat_call = [t - acked[call_ids[d]] for d, t in calls["first"].items()]
            lat_stored = [stored_at[e] - acked[e] for e in acked if e in stored_at]

            first = load.first_post_start
            completions = [case_at[e] for e in detractor_ids if e in case_at] + list(emails["first"].values())
            last_completion = max(completions) if completions else None
            last_with_calls = max([*completions, *calls["first"].values()]) if completions else None
            n_acc = len(acked)

            def rate(end: float | None) -> float | None:
                return n_acc / (end - first) if end and first and end > first else None

            counts = {
                "cases": {
                    "expected": len(detractor_ids),
                    "stored": len(detractor_ids & case_at.keys()),
                    "missing": len(detractor_ids - case_at.keys()),
                    "duplicates_rows": len(case_rows) - len(case_at),
                    "duplicate_opened_timeline": dup_case_opened,
                    "unexpected": len(case_at.keys() - detractor_ids),
                    "by_status": case_status,
                },
                "emails": {"expected": len(email_ids), **{k: v for k, v in emails.items() if k != "first"}},
                "call_tasks": {"expected": len(call_ids), **{k: v for k, v in calls.items() if k != "first"}},
                "feedback_stored": {
                    "expected": n_acc,
                    "stored": len(acked.keys() & stored_at.keys()),
                    "missing": len(acked.keys() - stored_at.keys()),
                },
                "duplicate_contacted_timeline": dup_contacted,
                "outbox": {
                    "rows": int(outbox[0][0]),
                    "unpublished": int(outbox[0][1]),
                    "duplicate_event_ids": int(outbox[0][2]),
                },
                "notifier_deliveries": deliveries,
                "notifier_deliveries_retried": retried,
            }
            result["pipeline"] = {
                "events": args.events,
                "accepted": n_acc,
                "http_statuses": dict(load.statuses),
                "http_error_samples": load.error_samples,
                "ingest_accepted_per_s": (
                    n_acc / (load.last_ack - first) if load.last_ack and first and load.last_ack > first else None
                ),
                "ingest_span_s": (load.last_ack - first) if load.last_ack and first else None,
                "events_per_s": rate(last_completion),
                "events_per_s_incl_call_tasks": rate(last_with_calls),
                "loop_span_s": (last_completion - first) if last_completion and first else None,
                "latency_ms": {
                    "http_post_to_202": summary_ms(load.http_latency),
                    "ack_to_feedback_stored": summary_ms(lat_stored),
                    "ack_to_case_stored": summary_ms(lat_case),
                    "ack_to_email_received": summary_ms(lat_email),
                    "ack_to_call_task_received": summary_ms(lat_call),
                },
                "counts": counts,
                "complete": not stalled and not timed_out,
                "stalled": stalled,
                "timed_out": timed_out,
                "cpu_s": {k: round(v, 1) for k, v in cpu.used.items()},
                "cpu_wall_s": round(cpu.wall, 1),
            }
        finally:
            await db.stop()
            if services:
                log("stopping the services")
                children.stop([c for c, _ in services.values()])
            children.stop([sink_child])

    # after the services stopped: anything dead-lettered?
    from bench.raw_hops import topic_message_counts

    with contextlib.suppress(Exception):
        dlq = await topic_message_counts(bootstrap, prefix)
        result["pipeline"]["topic_messages"] = dlq
        result["pipeline"]["dead_lettered"] = sum(n for t, n in dlq.items() if ".dlq." in t)


async def run_raw_phase(
    args: argparse.Namespace, work: Path, bootstrap: str, children: Children, deadline: float, result: dict[str, Any]
) -> None:
    from bench.raw_hops import run_raw

    events = make_events(args.events, args.seed)
    messages = kafka_payloads(events)
    result["raw_payload_bytes_mean"] = sum(len(v) for _, v in messages) / max(1, len(messages))
    prefix = result.get("topic_prefix", f"bench{uuid.uuid4().hex[:8]}.")
    raw_dir = work / "raw"
    raw_dir.mkdir(exist_ok=True)
    log(
        f"raw ceiling: {len(messages)} payloads (mean {result['raw_payload_bytes_mean']:.0f} B) "
        "through 3 raw aiokafka hops"
    )

    def spawn(name: str, argv: Sequence[str], log_path: Path) -> Child:
        return children.spawn(name, argv, log_path)

    run = await run_raw(
        bootstrap,
        prefix,
        messages,
        concurrency=args.concurrency,
        workdir=raw_dir,
        deadline=deadline,
        spawn=spawn,
        stall_s=min(args.stall, 30.0),
        log=log,
        rate=args.rate,
    )
    lat = [run.arrived_at[s] - run.acked_at[s] for s in run.arrived_at if s in run.acked_at]
    last = max(run.arrived_at.values()) if run.arrived_at else None
    first = run.first_send_start
    result["raw"] = {
        "messages": len(messages),
        "produced": run.sent,
        "send_errors": run.send_errors,
        "arrived": len(run.arrived_at),
        "missing": len(messages) - len(run.arrived_at),
        "duplicates": run.duplicates,
        "events_per_s": len(run.arrived_at) / (last - first) if last and first and last > first else None,
        "produce_acked_per_s": (
            run.sent / (run.last_ack - first) if run.last_ack and first and run.last_ack > first else None
        ),
        "span_s": (last - first) if last and first else None,
        "latency_ms": {"ack_to_arrival_on_D": summary_ms(lat)},
    }


# ------------------------------------------------------------------------------------- report --


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def report(result: dict[str, Any]) -> str:
    out: list[str] = []
    p, r = result.get("pipeline"), result.get("raw")
    out.append("")
    out.append(
        f"npsloop end-to-end benchmark  ({result['started_at']}, {result['machine']['cpus']} CPUs, "
        f"N={result['config']['events']}, concurrency={result['config']['concurrency']}, "
        f"rate={result['config']['rate'] or 'unlimited'}, http client={result['config']['http_client']})"
    )
    out.append("=" * 100)
    if p:
        out.append(
            "PIPELINE  HTTP -> ingest -> Kafka -> classifier -> actions (+Postgres, outbox) -> notifier -> SMTP/HTTP"
        )
        out.append(
            f"  accepted (202)                  {p['accepted']} of {p['events']}   statuses {p['http_statuses']}"
        )
        out.append(
            f"  ingest accepted events/s        {fmt(p['ingest_accepted_per_s'])}   (over {fmt(p['ingest_span_s'])} s)"
        )
        out.append(
            f"  whole-loop events/s             {fmt(p['events_per_s'])}   (first POST -> last case/email, "
            f"{fmt(p['loop_span_s'])} s)"
        )
        out.append(f"  whole-loop events/s incl. calls {fmt(p['events_per_s_incl_call_tasks'])}")
        out.append("")
        out.append(f"  {'latency (ms)':<34}{'n':>7}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}")
        names = {
            "http_post_to_202": "POST -> 202 (ingest ack)",
            "ack_to_feedback_stored": "ack -> feedback stored (2 hops)",
            "ack_to_case_stored": "ack -> case stored (2 hops)",
            "ack_to_email_received": "ack -> email received (3 hops)",
            "ack_to_call_task_received": "ack -> call task received (3 hops)",
        }
        for key, label in names.items():
            s = p["latency_ms"][key]
            out.append(
                f"  {label:<34}{s.get('n', 0):>7}{fmt(s.get('p50')):>10}{fmt(s.get('p95')):>10}"
                f"{fmt(s.get('p99')):>10}{fmt(s.get('max')):>10}"
            )
        c = p["counts"]
        out.append("")
        out.append(f"  {'effects':<20}{'expected':>10}{'got':>10}{'missing':>10}{'duplicate':>11}{'unexpected':>12}")
        out.append(
            f"  {'cases':<20}{c['cases']['expected']:>10}{c['cases']['stored']:>10}{c['cases']['missing']:>10}"
            f"{c['cases']['duplicates_rows'] + c['cases']['duplicate_opened_timeline']:>11}"
            f"{c['cases']['unexpected']:>12}"
        )
        for key, label in (("emails", "emails"), ("call_tasks", "call tasks")):
            e = c[key]
            out.append(
                f"  {label:<20}{e['expected']:>10}{e['expected'] - e['missing']:>10}{e['missing']:>10}"
                f"{e['duplicates']:>11}{e['unexpected']:>12}"
            )
        f = c["feedback_stored"]
        out.append(f"  {'feedback rows':<20}{f['expected']:>10}{f['stored']:>10}{f['missing']:>10}{'':>11}{'':>12}")
        out.append(
            f"  cases by status {c['cases']['by_status']}; duplicate 'delivery_sent' timeline entries "
            f"{c['duplicate_contacted_timeline']}; outbox {c['outbox']}"
        )
        out.append(
            f"  notifier deliveries {c['notifier_deliveries']}; retried {c['notifier_deliveries_retried']}; "
            f"dead-lettered {p.get('dead_lettered', '-')}"
        )
        if p.get("http_error_samples"):
            out.append(f"  HTTP errors, samples: {p['http_error_samples']}")
        if not p["complete"]:
            out.append(f"  INCOMPLETE: stalled={p['stalled']} timed_out={p['timed_out']}")
        cpu = p.get("cpu_s") or {}
        if cpu:
            out.append(
                f"  CPU seconds during the {p['cpu_wall_s']} s run: "
                + ", ".join(f"{k} {v}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
            )
    if r:
        out.append("")
        out.append(
            "RAW CEILING  produce -> A -> hop1 -> B -> hop2 -> C -> hop3 -> D  (aiokafka, no logic, "
            "manual commits, idempotent acks=all)"
        )
        out.append(
            f"  arrived on D                    {r['arrived']} of {r['messages']}   missing {r['missing']}, "
            f"duplicates {r['duplicates']}, send errors {r['send_errors']}"
        )
        out.append(f"  produce acked events/s          {fmt(r['produce_acked_per_s'])}")
        out.append(f"  end-to-end events/s             {fmt(r['events_per_s'])}   (over {fmt(r['span_s'])} s)")
        s = r["latency_ms"]["ack_to_arrival_on_D"]
        out.append(f"  {'latency (ms)':<34}{'n':>7}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}")
        out.append(
            f"  {'ack -> arrival on D (3 hops)':<34}{s.get('n', 0):>7}{fmt(s.get('p50')):>10}"
            f"{fmt(s.get('p95')):>10}{fmt(s.get('p99')):>10}{fmt(s.get('max')):>10}"
        )
    ratios = result.get("ratios")
    if ratios:
        out.append("")
        out.append("PIPELINE / RAW")
        out.append(f"  throughput  pipeline_events_per_s / raw_events_per_s = {fmt(ratios['throughput'], 3)}")
        for key, label in (("email", "email (3 hops)"), ("case", "case (2 hops)")):
            lr = ratios.get(f"latency_{key}") or {}
            out.append(
                f"  latency {label:<16} p50 x{fmt(lr.get('p50'))}, p95 x{fmt(lr.get('p95'))}, p99 x{fmt(lr.get('p99'))}"
            )
    if result.get("profiles"):
        out.append("")
        out.append(
            "cProfile stats: "
            + ", ".join(f"{k} {v}" for k, v in result["profiles"].items())
            + "  (python -m pstats FILE)"
        )
    out.append("")
    out.append(f"total run time {fmt(result.get('run_time_s'))} s; result file {result.get('result_file', '-')}")
    return "\n".join(out)


def compute_ratios(result: dict[str, Any]) -> None:
    p, r = result.get("pipeline"), result.get("raw")
    if not p or not r or not p.get("events_per_s") or not r.get("events_per_s"):
        return
    raw_lat = r["latency_ms"]["ack_to_arrival_on_D"]
    ratios: dict[str, Any] = {"throughput": p["events_per_s"] / r["events_per_s"]}
    for key, name in (("email", "ack_to_email_received"), ("case", "ack_to_case_stored")):
        pl = p["latency_ms"][name]
        if pl.get("n") and raw_lat.get("n"):
            ratios[f"latency_{key}"] = {
                q: (pl[q] / raw_lat[q] if raw_lat[q] > 0 else None) for q in ("p50", "p95", "p99")
            }
    result["ratios"] = ratios


# --------------------------------------------------------------------------------------- main --


@contextlib.contextmanager
def work_dir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="npsloop-bench-"))
    try:
        yield path
    finally:
        if keep:
            log(f"kept the work dir (logs, data): {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20000, help="feedbacks to post (default 20000)")
    parser.add_argument("--concurrency", type=int, default=64, help="HTTP requests in flight (default 64)")
    parser.add_argument("--timeout", type=float, default=900, help="overall time budget in s (default 900)")
    parser.add_argument("--skip-raw", action="store_true", help="skip the raw-Kafka ceiling")
    parser.add_argument(
        "--http-client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator: a lean keep-alive HTTP/1.1 client (default) or httpx",
    )
    parser.add_argument("--stall", type=float, default=60, help="give up after this long without progress")
    parser.add_argument("--ready-timeout", type=float, default=120, help="per service /readyz wait")
    parser.add_argument("--raw-reserve", type=float, default=90, help="seconds of the budget kept for raw")
    parser.add_argument("--settle", type=float, default=2, help="wait this long for late duplicates")
    parser.add_argument("--progress-every", type=float, default=5)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="cap the POST rate (events/s, open loop) to measure latency below saturation",
    )
    parser.add_argument(
        "--profile", default="", help="run these services (comma-separated) under cProfile; stats to .cache/bench/"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (service logs, data)")
    args = parser.parse_args(argv)
    if args.events < 3 or args.concurrency < 1:
        parser.error("--events must be >= 3 and --concurrency >= 1")

    started = time.monotonic()
    # cleanup (stopping services, Kafka, Postgres) gets the last 60 s of the budget
    deadline = started + max(60.0, args.timeout - 60)

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)

    from npsloop_platform.testing.infra import kafka_broker, postgres_server

    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": {k: v for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
    }
    children = Children()
    rc = 1
    try:
        with work_dir(args.keep) as work:
            kafka_data, pg_data = work / "kafka", work / "pg" / "data"
            port = free_port_pair()
            log(f"starting Kafka on 127.0.0.1:{port} (data {kafka_data}) and embedded Postgres ({pg_data})")
            t0 = time.monotonic()
            with kafka_broker(kafka_data, port) as bootstrap, postgres_server(pg_data) as pg_url:
                result["infra_start_s"] = round(time.monotonic() - t0, 1)
                log(f"Kafka {bootstrap} and Postgres up in {result['infra_start_s']} s")
                try:

                    async def body() -> None:
                        async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
                            await run_pipeline(
                                args, work, bootstrap, pg_url, children, deadline, result, kafka_data, pg_data
                            )
                            if args.skip_raw:
                                return
                            if deadline - time.monotonic() < 20:
                                log("not enough time budget left for the raw ceiling; skipped")
                                result["raw_skipped"] = "time budget"
                                return
                            await run_raw_phase(args, work, bootstrap, children, deadline, result)

                    asyncio.run(body())
                except TimeoutError:
                    log(f"overall time budget of {args.timeout:.0f}s exhausted; reporting what was measured")
                    result["timed_out"] = True
                finally:
                    children.stop()
                    log("stopping Kafka and Postgres")
            if result.get("timed_out") or (result.get("pipeline") or {}).get("timed_out"):
                for c in children.all:
                    if c.name in SERVICES:
                        log(f"last lines of {c.name} log:\n{c.tail(15)}")
            compute_ratios(result)
            p = result.get("pipeline") or {}
            cnt = p.get("counts") or {}
            ok = bool(
                p.get("complete")
                and p.get("accepted") == args.events
                and all(cnt[k]["missing"] == 0 for k in ("cases", "emails", "call_tasks", "feedback_stored"))
                and cnt["cases"]["duplicates_rows"] + cnt["cases"]["duplicate_opened_timeline"] == 0
                and cnt["emails"]["duplicates"] == 0
                and cnt["call_tasks"]["duplicates"] == 0
                and (args.skip_raw or (result.get("raw") or {}).get("missing") == 0)
            )
            result["ok"] = ok
            rc = 0 if ok else 1
            if not ok and p:
                for ch in children.all:
                    if ch.name in SERVICES:
                        errors = [ln for ln in ch.tail(400).splitlines() if '"level": "ERROR"' in ln]
                        if errors:
                            log(
                                f"{ch.name}: {len(errors)} ERROR lines in the last 400, e.g.:\n"
                                + "\n".join(errors[-3:])
                            )
    except KeyboardInterrupt:
        log("interrupted; cleaned up")
        children.stop()
        return 130
    finally:
        children.stop()
    result["run_time_s"] = round(time.monotonic() - started, 1)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"e2e-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    result["result_file"] = str(path.relative_to(REPO))
    path.write_text(json.dumps(result, indent=2, default=str))
    print(report(result), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
