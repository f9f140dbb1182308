"""`make bench-ingest`: ingest alone, on real Kafka and Postgres, next to a bare FastAPI endpoint.

    uv run --frozen python -m bench.ingest                 # what make bench-ingest runs
    uv run --frozen python -m bench.ingest --events 2000 --batches 5 --rate-seconds 3   # quick

In one run, all on 127.0.0.1: a bare FastAPI endpoint (`bench.bare_app`: parse the JSON, answer
202; no validation, no key, no Kafka) and ingest (`uvicorn --factory npsloop_ingest.main:create_app`,
real Kafka, real PostgreSQL, a real source key), each its own process. The same load generator
posts to both: N single posts as fast as `--concurrency` allows, in `--rounds` alternating rounds
(bare, ingest, bare, ingest, ...) so that the machine's drift falls on both alike; then batches
of 1,000 to ingest; then single posts at `--rate` (1,000/s) for `--rate-seconds`. Targets: single posts at 60% or more
of the bare endpoint, batches at 20,000 events/s or more, p99 under 50 ms at 1,000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from npsloop_platform.testing.servers import free_port, free_port_pair

from .infra import (
    RESULTS_DIR,
    Children,
    CpuMeter,
    jvm_compiler_cpu,
    kafka_pid,
    log,
    postgres_pid,
    wait_ready,
    work_dir,
)
from .load import HttpConnection, make_events, post_all
from .report import fmt, summary_ms


async def post_batches(url: str, bodies: list[bytes], concurrency: int, api_key: str) -> tuple[float, list[float], int]:
    """POST each batch body once, `concurrency` in flight; (seconds, latencies, items accepted)."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    queue = list(enumerate(bodies))
    latencies: list[float] = []
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        conn = HttpConnection(host, int(port), api_key)
        try:
            while queue:
                _, body = queue.pop(0)
                t0 = time.perf_counter()
                status, payload = await conn.post("/v1/feedback:batch", body)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"batch answered {status}: {payload[:300]!r}")
                accepted += json.loads(payload)["accepted"]
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, latencies, accepted


async def warm_broker(
    url: str, broker: int | None, key: str, args: argparse.Namespace, deadline: float
) -> dict[str, Any]:
    """Post through ingest, in the shapes measured after (posts as fast as they go, paced posts, a
    batch), until the broker's JIT compiler has settled (under `--warm-jit` of a core in two rounds in
    a row), or for `--warm-seconds` at most. A broker in service has long compiled its hot paths; a fresh one's
    C2 compiler took up to ~40% of a core for its first ~20 s of traffic, charged to whichever
    phase ran then. Ingest and the database warm up with it (caches, plans, the table's first pages)."""
    if broker is None:  # a broker this run did not start (`make test`'s): its JIT is not watched
        return {"rounds": 0, "seconds": 0.0, "jit_cores_last_round": None, "settled": None}
    t0, rounds, share, quiet = time.monotonic(), 0, None, 0
    while time.monotonic() - t0 < args.warm_seconds:
        jit0, w0 = jvm_compiler_cpu(broker), time.monotonic()
        seed = 10_000 + rounds
        await post_all(url, make_events(1000, seed), args.concurrency, deadline, "raw", None, key)
        await post_all(url, make_events(500, seed + 5000), args.concurrency, deadline, "raw", args.rate, key)
        items = make_events(1000, seed + 9000)
        await post_batches(url, [b'{"items": [' + b",".join(e.body for e in items) + b"]}"], 1, key)
        rounds += 1
        share = (jvm_compiler_cpu(broker) - jit0) / (time.monotonic() - w0)
        quiet = quiet + 1 if share < args.warm_jit else 0
        if quiet == 2:  # two quiet rounds in a row: one can be a lull between two compilations
            break
    seconds = round(time.monotonic() - t0, 1)
    settled = quiet == 2
    log(f"warm-up: {rounds} rounds, {seconds} s; broker JIT {share or 0:.0%} of a core in the last ({settled=})")
    return {"rounds": rounds, "seconds": seconds, "jit_cores_last_round": share, "settled": settled}


def phase(*loads: Any) -> dict[str, Any]:
    """One phase of posts, or one endpoint's rounds as one: events/s over the time its own posts took."""
    span = sum((load.last_ack or 0) - (load.first_post_start or 0) for load in loads)
    accepted = sum(len(load.acked_at) for load in loads)
    return {
        "accepted": accepted,
        "statuses": dict(sum((load.statuses for load in loads), Counter())),
        "events_per_s": accepted / span if span > 0 else None,
        "latency_ms": summary_ms([x for load in loads for x in load.http_latency]),
    }


def merged_meter(meters: list[CpuMeter]) -> CpuMeter:
    total = CpuMeter()
    for m in meters:
        total.parts.update(m.parts)
        total.wall += m.wall
        for name, used in m.used.items():
            total.used[name] = total.used.get(name, 0.0) + used
    return total


def cpu_per_event(meter: CpuMeter, events: int) -> dict[str, float]:
    """CPU microseconds per accepted event of each process over a phase, and the machine's share
    they took (`busy`, in cores): where a phase's time went, and how close to 2 full cores it ran."""
    out = {name: round(used / events * 1e6, 1) for name, used in meter.used.items() if events}
    whole = [used for name, used in meter.used.items() if name not in meter.parts]
    out["busy_cores"] = round(sum(whole) / meter.wall, 2) if meter.wall else 0.0
    return out


async def run(args: argparse.Namespace, work: Path, bootstrap: str, pg_url: str, children: Children) -> dict[str, Any]:
    from npsloop_platform.testing.helpers import make_key
    from npsloop_platform.testing.infra import fresh_database

    result: dict[str, Any] = {}
    async with fresh_database(pg_url) as db_url:
        key = await make_key(db_url, "source", tenant="bench")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NPSLOOP_") and k != "DATABASE_URL"}
        env |= {
            "NPSLOOP_MODE": "dev",  # the bench database has no password; prod mode refuses that
            "NPSLOOP_BUS": "kafka",
            "NPSLOOP_KAFKA_BOOTSTRAP": bootstrap,
            "NPSLOOP_TOPIC_PREFIX": f"bi{uuid.uuid4().hex[:8]}.",
            "DATABASE_URL": db_url,
            "NPSLOOP_LOG_LEVEL": "WARNING",
            "NPSLOOP_RATE_LIMIT_PER_S": "1000000",
            "NPSLOOP_RATE_LIMIT_BURST": "1000000",
        }
        env |= dict(kv.split("=", 1) for kv in args.ingest_env)  # e.g. NPSLOOP_KAFKA_LINGER_MS=5
        ports = {"bare": free_port(), "ingest": free_port()}
        apps = {"bare": "bench.bare_app:create_app", "ingest": "npsloop_ingest.main:create_app"}
        procs = {}
        for name, app in apps.items():
            argv = [sys.executable, "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1"]
            argv += ["--port", str(ports[name]), "--log-level", "warning", "--no-access-log"]
            procs[name] = children.spawn(name, argv, work / f"{name}.log", env)
        meter = CpuMeter()
        for name, child in procs.items():
            meter.add(name, child.pid)
        broker = kafka_pid(work / "kafka")
        meter.add("kafka", broker)
        if broker is not None:
            meter.add_part("kafka jit", lambda: jvm_compiler_cpu(broker))
        meter.add("postgres", postgres_pid(work / "pg" / "data"), with_children=True)
        meter.add("load generator", os.getpid())
        try:
            for name, child in procs.items():
                await wait_ready(child, f"http://127.0.0.1:{ports[name]}/readyz", 120)
            deadline = time.monotonic() + args.timeout
            warm = make_events(200, args.seed + 9)
            for name in procs:  # warm both up: imports, connections
                await post_all(f"http://127.0.0.1:{ports[name]}", warm, 16, deadline, "raw", None, key)
            result["warm_up"] = await warm_broker(f"http://127.0.0.1:{ports['ingest']}", broker, key, args, deadline)
            # Single posts in alternating rounds (bare, ingest, bare, ingest, ...): on a shared machine
            # the speed of the moment drifts by half within a minute, and one phase each would
            # charge that drift to whichever endpoint ran in the slow minute.
            rounds = max(1, args.rounds)
            per_round = [args.events // rounds + (1 if r < args.events % rounds else 0) for r in range(rounds)]
            loads: dict[str, list[Any]] = {"bare": [], "ingest": []}
            meters: dict[str, list[CpuMeter]] = {"bare": [], "ingest": []}
            for r, n in enumerate(per_round):
                for name in ("bare", "ingest"):
                    seed = args.seed + (0 if name == "bare" else 1) + 100 * r  # fresh ids for ingest
                    log(f"{name}: round {r + 1}/{rounds}, {n} single posts, {args.concurrency} in flight")
                    batch = make_events(n, seed)
                    meter.start()
                    url = f"http://127.0.0.1:{ports[name]}"
                    loads[name].append(await post_all(url, batch, args.concurrency, deadline, "raw", None, key))
                    meter.stop()
                    meters[name].append(copy.copy(meter))
            for name in ("bare", "ingest"):
                merged = phase(*loads[name]) | {"rounds": rounds}
                merged["cpu_us_per_event"] = cpu_per_event(merged_meter(meters[name]), merged["accepted"])
                result[f"single_{name}"] = merged
            result["single_rounds"] = [
                {"bare": phase(b)["events_per_s"], "ingest": phase(i)["events_per_s"]}
                for b, i in zip(loads["bare"], loads["ingest"], strict=True)
            ]
            items = make_events(args.batches * 1000, args.seed + 2)
            bodies = [
                b'{"items": [' + b",".join(e.body for e in items[i : i + 1000]) + b"]}"
                for i in range(0, len(items), 1000)
            ]
            log(f"ingest: {len(bodies)} batches of 1,000")
            meter.start()
            seconds, latencies, accepted = await post_batches(
                f"http://127.0.0.1:{ports['ingest']}", bodies, args.batch_concurrency, key
            )
            meter.stop()
            result["batches"] = {
                "batches": len(bodies),
                "accepted": accepted,
                "events_per_s": accepted / seconds if seconds > 0 else None,
                "latency_ms": summary_ms(latencies),
                "cpu_us_per_event": cpu_per_event(meter, accepted),
            }
            paced = make_events(int(args.rate * args.rate_seconds), args.seed + 3)
            log(f"ingest: {args.rate:g} single posts/s for {args.rate_seconds:g} s")
            meter.start()
            load = await post_all(
                f"http://127.0.0.1:{ports['ingest']}", paced, args.concurrency, deadline, "raw", args.rate, key
            )
            meter.stop()
            result["paced"] = {
                "rate": args.rate,
                **phase(load),
                "cpu_us_per_event": cpu_per_event(meter, len(load.acked_at)),
            }
        finally:
            children.stop(list(procs.values()))
    bare, single = result["single_bare"]["events_per_s"] or 0, result["single_ingest"]["events_per_s"] or 0
    p99 = result["paced"]["latency_ms"].get("p99")
    result["targets"] = {
        "single posts >= 0.6 x bare endpoint": {
            "measured": round(single / bare, 3) if bare else None,
            "met": bool(bare and single / bare >= 0.6),
        },
        "batches >= 20,000 events/s": {
            "measured": result["batches"]["events_per_s"],
            "met": (result["batches"]["events_per_s"] or 0) >= 20_000,
        },
        "p99 < 50 ms at 1,000 requests/s": {"measured": p99, "met": p99 is not None and p99 < 50},
    }
    result["ok"] = (
        all(
            p["accepted"] == n
            for p, n in (
                (result["single_bare"], args.events),
                (result["single_ingest"], args.events),
                (result["paced"], int(args.rate * args.rate_seconds)),
            )
        )
        and result["batches"]["accepted"] == args.batches * 1000
    )
    return result


def report(r: dict[str, Any]) -> str:
    out = ["", f"npsloop ingest benchmark ({os.cpu_count()} CPUs)", "=" * 90]
    out.append(f"  {'phase':<34}{'events/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'accepted':>10}")
    for key, label in (
        ("single_bare", "bare FastAPI endpoint, single"),
        ("single_ingest", "ingest, single posts"),
        ("batches", "ingest, batches of 1,000"),
        ("paced", f"ingest, {r['paced']['rate']:g} posts/s paced"),
    ):
        p = r[key]
        lat = p["latency_ms"]
        row = f"{fmt(p['events_per_s']):>12}{fmt(lat.get('p50')):>10}{fmt(lat.get('p99')):>10}"
        out.append(f"  {label:<34}{row}{p['accepted']:>10}")
    rounds = r.get("single_rounds") or []
    if len(rounds) > 1:
        ratios = [f"{x['ingest'] / x['bare']:.2f}" if x["bare"] and x["ingest"] else "-" for x in rounds]
        out.append(f"  single posts in {len(rounds)} alternating rounds, ingest/bare per round: {', '.join(ratios)}")
    warm = r.get("warm_up")
    if warm and warm["rounds"]:
        out.append(
            f"  warm-up first: {warm['rounds']} rounds in {warm['seconds']} s, the broker's JIT compiler at "
            f"{(warm['jit_cores_last_round'] or 0):.0%} of a core in the last (settled: {warm['settled']})"
        )
    out.append("")
    columns = {"bare": "bare", "ingest": "ingest", "kafka": "kafka", "kafka jit": "of it jit", "postgres": "postgres"}
    columns["load generator"] = "loadgen"  # the JSON key, and the column's shorter header
    out.append(f"  {'CPU us per event':<34}" + "".join(f"{c:>10}" for c in columns.values()) + f"{'cores':>8}")
    for key, label in (
        ("single_bare", "bare, single"),
        ("single_ingest", "ingest, single"),
        ("batches", "ingest, batches"),
        ("paced", "ingest, paced"),
    ):
        cpu = r[key].get("cpu_us_per_event", {})
        out.append(
            f"  {label:<34}"
            + "".join(f"{fmt(cpu.get(n)):>10}" for n in columns)
            + f"{fmt(cpu.get('busy_cores'), 2):>8}"
        )
    out.append("")
    for name, t in r["targets"].items():
        out.append(f"  {'MET   ' if t['met'] else 'MISSED'}  {name:<40} {fmt(t['measured'], 3)}")
    out.append(f"\nok (every post accepted): {r['ok']}; result file {r.get('result_file')}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="single posts per endpoint")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--rounds", type=int, default=4, help="single posts in this many alternating rounds per endpoint"
    )
    parser.add_argument(
        "--batches", type=int, default=120, help="batches of 1,000 to ingest (120: a phase of ~5 s, steadier than 2)"
    )
    parser.add_argument("--batch-concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--warm-seconds", type=float, default=90, help="at most this long warming the broker up")
    parser.add_argument(
        "--warm-jit", type=float, default=0.03, help="warm until the broker's JIT used under this share of a core"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--result-file", type=Path, default=None)
    parser.add_argument(
        "--ingest-env", action="append", default=[], metavar="NAME=VALUE", help="a setting for ingest (repeatable)"
    )
    args = parser.parse_args(argv)
    from npsloop_platform.testing.infra import kafka_broker, postgres_server

    children = Children()
    try:
        with (
            work_dir(False) as work,
            kafka_broker(work / "kafka", free_port_pair()) as bootstrap,
            postgres_server(work / "pg" / "data") as pg_url,
        ):
            result = asyncio.run(run(args, work, bootstrap, pg_url, children))
    finally:
        children.stop()
    path = args.result_file or RESULTS_DIR / f"ingest-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    result["result_file"] = str(path)
    path.write_text(json.dumps(result, indent=2, default=str))
    print(report(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
