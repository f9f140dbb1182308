"""`make chaos`: the whole loop under faults, and a count of what was lost or doubled.

    uv run --frozen python -m bench.chaos --seed 7 --events 20000      (what `make chaos` runs)

Real Kafka (`deploy/local/kafka.sh`), embedded Postgres, a real SMTP server, real HTTP receivers
(call tasks, a CRM webhook verified with `standardwebhooks`): `bench/sinks.py`; the five services
as separate uvicorn processes (as `bench.e2e` starts them). N unique feedbacks at a steady rate
(three bands, comments, repeats of the same detractors, late comments via PATCH, a second tenant)
while a seeded fault schedule (`bench/chaos_faults.py`) kills, bounces and starves every part.
Then `bench/chaos_check.py` counts and prints the table; the JSON goes to `.cache/chaos/`.

Exit 0 only when every count is exact and every fault recovered; otherwise 1, naming each count
that is off and by how much. A run that hits `--timeout` fails (never a partial success).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from npsloop.stack.services import installed_services

from .chaos_check import check, expected_of, recovery, report
from .chaos_faults import (
    Fault,
    FaultFailed,
    Service,
    control,
    inject_poison,
    kafka_cmd,
    kill_and_restart,
    postgres_ensure_stopped,
    postgres_start,
    postgres_stop,
    schedule,
)
from .infra import REPO, Children, log, service_argv, service_env, wait_ready, work_dir
from .load import TENANT, Event, HttpConnection, make_events

RESULTS = REPO / ".cache" / "chaos"
# every service of the local stack (npsloop.stack), each killed and restarted
SERVICES = tuple(s.name for s in installed_services())
TENANT_B = "chaos-b"
POISON_TOPIC = "feedback.received.v1"


def make_load(n: int, seed: int) -> tuple[list[Event], dict[str, str]]:
    """`n` events: ~88% fresh customers (three bands), ~7% a second detractor answer from a customer
    already seen, every 20th of the fresh ones in tenant B. Returns the events and tenant per id."""
    rng = random.Random(f"repeats-{seed}")  # not `seed`: make_events draws its event ids from that
    n_repeat = n // 14
    base = make_events(n - n_repeat, seed)
    tenants: dict[str, str] = {}
    out: list[Event] = []
    for i, e in enumerate(base):
        if i % 20 == 7:
            body = json.loads(e.body)
            body["tenant_id"] = TENANT_B
            e = Event(e.event_id, e.band, json.dumps(body).encode(), e.key)
        tenants[e.event_id] = json.loads(e.body)["tenant_id"]
        out.append(e)
    detractors = [e for e in out if e.band == "detractor"]
    for _ in range(n_repeat):
        src = rng.choice(detractors)
        body = json.loads(src.body)
        body["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        body["score"] = rng.randint(0, 4)
        body["comment"] = "Still waiting, second time I write"
        pos = rng.randint(out.index(src) + 1, len(out))
        ev = Event(body["event_id"], "repeat", json.dumps(body).encode(), src.key)
        out.insert(pos, ev)
        tenants[ev.event_id] = body["tenant_id"]
    return out, tenants


class Load:
    """Open-loop POSTs at `rate`; a 503 or a refused connection is retried with the same event id."""

    def __init__(self, url: str, keys: dict[str, str], rate: float, deadline: float) -> None:
        self.url, self.keys, self.rate, self.deadline = url, keys, rate, deadline
        self.acked: dict[str, float] = {}
        self.statuses: dict[str, int] = {}
        self.retries_503 = 0
        self.retries_conn = 0
        self.errors: list[str] = []
        self.t0 = 0.0
        self.patched: dict[str, int] = {}
        self.patched_ids: set[str] = set()  # answers whose late comment was accepted

    def count(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1

    async def post_one(self, conns: dict[str, HttpConnection], ev: Event, tenant: str) -> None:
        while time.monotonic() < self.deadline:
            try:
                async with asyncio.timeout(30):
                    status, payload = await conns[tenant].post("/v1/feedback", ev.body)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                self.retries_conn += 1
                await asyncio.sleep(0.5)
                continue
            self.count(str(status))
            if status in (200, 202):
                self.acked[ev.event_id] = time.time()
                return
            if status == 503:
                self.retries_503 += 1
                await asyncio.sleep(0.5)
                continue
            if len(self.errors) < 10:
                self.errors.append(f"{ev.event_id}: HTTP {status} {payload[:200]!r}")
            return

    async def run(self, events: list[Event], tenants: dict[str, str], concurrency: int = 32) -> None:
        host, port = self.url.split("://", 1)[1].rsplit(":", 1)
        it = iter(enumerate(events))
        self.t0 = time.monotonic()

        async def worker() -> None:
            conns = {t: HttpConnection(host, int(port), k) for t, k in self.keys.items()}
            try:
                for i, ev in it:
                    delay = self.t0 + i / self.rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await self.post_one(conns, ev, tenants[ev.event_id])
            finally:
                for c in conns.values():
                    await c.close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def late_comments(self, events: list[Event], tenants: dict[str, str]) -> None:
        """PATCH a late comment onto every 10th passive answer that was accepted (retrying 503s)."""
        import httpx

        targets = [e for e in events if e.band == "passive" and e.event_id in self.acked][::10]
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            for e in targets:
                headers = {"Authorization": f"Bearer {self.keys[tenants[e.event_id]]}"}
                for _ in range(60):
                    try:
                        r = await client.patch(
                            f"/v1/feedback/{e.event_id}", json={"comment": "Forgot to say: slow till"}, headers=headers
                        )
                    except httpx.HTTPError:
                        await asyncio.sleep(0.5)
                        continue
                    if r.status_code == 503:
                        self.retries_503 += 1
                        await asyncio.sleep(0.5)
                        continue
                    self.patched[str(r.status_code)] = self.patched.get(str(r.status_code), 0) + 1
                    if r.status_code in (200, 202):
                        self.patched_ids.add(e.event_id)
                    break


async def start_stack(
    args: argparse.Namespace, work: Path, bootstrap: str, db_url: str, children: Children
) -> tuple[dict[str, Service], dict[str, Any]]:
    from npsloop_platform.bus.kafka import KafkaBus
    from npsloop_platform.testing.servers import free_port
    from npsloop_schemas import ALL_TOPICS

    prefix = f"chaos{uuid.uuid4().hex[:8]}."
    await KafkaBus(bootstrap, topic_prefix=prefix).ensure_topics(ALL_TOPICS)
    sinks_dir = work / "sinks"
    children.spawn("sinks", [sys.executable, "-m", "bench.sinks", "--out", str(sinks_dir)], work / "sinks.log")
    ready_file = sinks_dir / "sinks.ready.json"
    for _ in range(300):
        if ready_file.exists():
            break
        await asyncio.sleep(0.1)
    sinks = json.loads(ready_file.read_text())
    sinks.update(prefix=prefix, dir=str(sinks_dir))
    services: dict[str, Service] = {}
    for name in SERVICES:
        port = free_port()
        argv = service_argv(name, port)  # the local stack's own command line (npsloop.stack)
        env = service_env(name, bootstrap=bootstrap, prefix=prefix, db_url=db_url, sinks=sinks)
        env.update(NPSLOOP_LOG_LEVEL="INFO", NPSLOOP_WEBHOOK_TIMEOUT_S=str(args.webhook_client_timeout))
        services[name] = Service(name, argv, env, port, work)
        services[name].start(children)
    await asyncio.gather(
        *(wait_ready(s.child, f"{s.url}/readyz", args.ready_timeout) for s in services.values() if s.child)
    )
    return services, sinks


async def run_fault(
    f: Fault, args: argparse.Namespace, ctx: dict[str, Any], services: dict[str, Service], children: Children
) -> None:
    t0 = time.time()
    f.result["started"] = t0
    if f.kind.startswith("kill:"):
        svc = services[f.kind.split(":", 1)[1]]
        f.result["restart_ready_s"] = round(await kill_and_restart(svc, children, args.ready_timeout), 2)
    elif f.kind == "kafka":
        await asyncio.to_thread(kafka_cmd, "stop", ctx["kafka_data"], ctx["kafka_port"])
        await asyncio.sleep(f.duration_s)
        await asyncio.to_thread(kafka_cmd, "start", ctx["kafka_data"], ctx["kafka_port"])
    elif f.kind == "postgres":
        argv = await asyncio.to_thread(postgres_stop, ctx["pg_data"])
        await asyncio.sleep(f.duration_s)
        await asyncio.to_thread(postgres_start, ctx["pg_data"], argv)
    elif f.kind == "smtp":
        await control(ctx["control_url"], smtp="refuse")
        await asyncio.sleep(f.duration_s)
        await control(ctx["control_url"], smtp="ok")
    elif f.kind == "webhook":
        await control(ctx["control_url"], webhook="500")
        await asyncio.sleep(f.result["500_s"])
        await control(ctx["control_url"], webhook="timeout", timeout_s=args.webhook_client_timeout + 2)
        await asyncio.sleep(f.duration_s - f.result["500_s"])
        await control(ctx["control_url"], webhook="ok")
    elif f.kind == "poison":
        topic = ctx["prefix"] + POISON_TOPIC
        batch = len(ctx["poison"])
        ctx["poison"].append(await inject_poison(ctx["bootstrap"], topic, batch, args.poison_per_batch))
    f.result["restored"] = time.time()
    for name, svc in services.items():  # every other process must have survived the fault
        if svc.child is not None and not svc.child.alive():
            raise FaultFailed(f"{name} died during the {f.kind} fault:\n{svc.child.tail(20)}")


async def fault_runner(
    faults: list[Fault], args: argparse.Namespace, ctx: dict[str, Any], services: dict[str, Service], children: Children
) -> None:
    t_begin = time.monotonic()
    for f in faults:
        delay = t_begin + f.at_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        log(
            f"fault at +{time.monotonic() - t_begin:.0f}s: {f.kind}"
            + (f" for {f.duration_s:g}s" if f.duration_s else "")
        )
        await run_fault(f, args, ctx, services, children)


async def run(args: argparse.Namespace, work: Path, result: dict[str, Any], deadline: float) -> None:
    from npsloop_platform.db import Database
    from npsloop_platform.testing.helpers import make_key
    from npsloop_platform.testing.infra import fresh_database, kafka_broker, postgres_server
    from npsloop_platform.testing.servers import free_port_pair

    kafka_data, pg_data = work / "kafka", work / "pg" / "data"
    kafka_port = free_port_pair()
    children = Children()
    with kafka_broker(kafka_data, kafka_port) as bootstrap, postgres_server(pg_data) as pg_url:
        try:
            async with fresh_database(pg_url) as db_url:
                keys = {
                    TENANT: await make_key(db_url, "source", tenant=TENANT),
                    TENANT_B: await make_key(db_url, "source", tenant=TENANT_B),
                }
                admin = {t: await make_key(db_url, "admin", tenant=t) for t in (TENANT, TENANT_B)}
                services, sinks = await start_stack(args, work, bootstrap, db_url, children)
                import httpx

                async with httpx.AsyncClient(timeout=30) as client:
                    r = await client.post(
                        f"{services['notifier'].url}/v1/webhook-subscriptions",
                        json={"url": sinks["webhook_url"], "event_types": ["*"], "description": "chaos CRM"},
                        headers={"Authorization": f"Bearer {admin[TENANT]}"},
                    )
                    if r.status_code != 201:
                        raise FaultFailed(f"webhook subscription refused: {r.status_code} {r.text[:300]}")
                await control(sinks["control_url"], webhook_secret=r.json()["secret"])
                events, tenants = make_load(args.events, args.seed)
                window = args.events / args.rate
                faults = schedule(
                    args.seed,
                    list(SERVICES),
                    window,
                    kills_per_service=args.kills,
                    outage_s=args.outage,
                    smtp_s=args.smtp_refuse,
                    webhook_500_s=args.webhook_500,
                    webhook_timeout_s=args.webhook_timeout,
                    poison_batches=args.poison_batches,
                )
                result["faults_planned"] = [
                    {"at_s": f.at_s, "kind": f.kind, "duration_s": f.duration_s} for f in faults
                ]
                ctx = {
                    "kafka_data": kafka_data,
                    "kafka_port": kafka_port,
                    "pg_data": pg_data,
                    "control_url": sinks["control_url"],
                    "prefix": sinks["prefix"],
                    "bootstrap": bootstrap,
                    "poison": [],
                }
                load = Load(services["ingest"].url, keys, args.rate, deadline)
                log(f"{len(events)} events at {args.rate:g}/s; {len(faults)} faults over {window:.0f} s")
                runner = asyncio.create_task(fault_runner(faults, args, ctx, services, children))
                await load.run(events, tenants)
                await runner  # a fault that failed raises here
                await load.late_comments(events, tenants)
                db = Database(db_url, pool_size=2)
                try:
                    exp = expected_of(events, tenants, load)
                    counts = await check(
                        db, exp, sinks, ctx, services, keys, admin, deadline, args.stall, bootstrap, result
                    )
                finally:
                    await db.stop()
                recovery(faults, counts.pop("_tails"), sorted(load.acked.values()))
                result["faults"] = [
                    {"at_s": f.at_s, "kind": f.kind, "duration_s": f.duration_s, **f.result} for f in faults
                ]
                result["load"] = {
                    "events": len(events),
                    "accepted": len(load.acked),
                    "statuses": load.statuses,
                    "retried_503": load.retries_503,
                    "retried_connection": load.retries_conn,
                    "late_comments": load.patched,
                    "errors": load.errors,
                }
                lost = {s: n for s, n in load.statuses.items() if s not in ("200", "202", "503")}
                if lost or len(load.acked) != len(events):
                    counts["failures"].append(
                        f"posts accepted: {len(load.acked)}, expected {len(events)} "
                        f"(off by {len(load.acked) - len(events):+d}; answers other than 202/503: {lost})"
                    )
                result["counts"] = counts
                result["restarts"] = {n: s.starts - 1 for n, s in services.items()}
                children.stop()
        finally:
            children.stop()
            await asyncio.to_thread(postgres_ensure_stopped, pg_data)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    p.add_argument("--events", type=int, default=int(os.environ.get("CHAOS_EVENTS") or 20000))
    p.add_argument("--seed", type=int, default=int(os.environ.get("SEED") or 1))
    p.add_argument("--rate", type=float, default=25.0, help="POSTs per second, steady (default 25)")
    p.add_argument("--kills", type=int, default=2, help="SIGKILLs per service (default 2)")
    p.add_argument("--outage", type=float, default=20.0, help="seconds Kafka and Postgres stay down")
    p.add_argument("--smtp-refuse", type=float, default=30.0)
    p.add_argument("--webhook-500", type=float, default=30.0)
    p.add_argument("--webhook-timeout", type=float, default=10.0)
    p.add_argument("--webhook-client-timeout", type=float, default=5.0, help="the notifier's webhook timeout")
    p.add_argument("--poison-batches", type=int, default=2)
    p.add_argument("--poison-per-batch", type=int, default=5)
    p.add_argument("--stall", type=float, default=120.0, help="fail after this long without progress")
    p.add_argument("--ready-timeout", type=float, default=120.0)
    p.add_argument("--timeout", type=float, default=0, help="time bound in s (default: 3 x posting time + 600)")
    p.add_argument("--result-file", type=Path, default=None)
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    args = p.parse_args(argv)
    timeout = args.timeout or 3 * args.events / args.rate + 600
    started = time.monotonic()
    deadline = started + timeout
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "time_bound_s": timeout,
    }
    failures: list[str] = []
    with work_dir(args.keep) as work:
        try:

            async def body() -> None:
                async with asyncio.timeout(timeout):
                    await run(args, work, result, deadline)

            asyncio.run(body())
        except TimeoutError:
            failures.append(f"the run exceeded its time bound of {timeout:.0f} s")
        except FaultFailed as exc:
            failures.append(f"fault: {exc}")
        except Exception as exc:  # any crash is a failed run, reported as such
            import traceback

            traceback.print_exc()
            failures.append(f"harness error: {type(exc).__name__}: {exc}")
        counts = result.get("counts") or {}
        failures += counts.get("failures", [])
        if not counts:
            failures.append("no counts: the run did not finish (never a success on a partial run)")
    result["failures"] = failures
    result["ok"] = not failures
    result["run_time_s"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = args.result_file or RESULTS / f"chaos-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str))
    print(report(result), flush=True)
    print(f"results: {path}", flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
