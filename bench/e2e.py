"""End-to-end benchmark: the whole loop on real Kafka and Postgres, each service its own process.

    uv run --frozen python -m bench.e2e --events 20000        (what `make bench` runs)

1. Starts a Kafka broker (own data dir, free port) and an embedded PostgreSQL in a temp dir, plus
   a real SMTP server and a real HTTP call-task sink (bench.sinks, own process). All on 127.0.0.1.
2. Starts ingest, classifier, actions and notifier as four uvicorn processes (unique topic prefix,
   JSON logs at WARNING into the temp dir) and waits for every /readyz.
3. Burst: POSTs N feedbacks to ingest (`--concurrency` in flight, as fast as ingest takes them): a
   third promoters with an email, a third passives, a third detractors with a comment and a phone.
4. Sustained: on the same services, once the burst has drained, POSTs `--sustained-rate` events
   per second for `--sustained-seconds` (fresh events), for latencies below saturation.
5. After each phase, waits until every detractor has a case in Postgres, every promoter's thank-you
   email reached the SMTP server and every detractor's call task reached the HTTP sink, then
   counts missing and duplicate effects, latencies from each 202 and CPU ms per event per process.
6. Measures the ceiling: the burst's payloads through three raw aiokafka consume-and-produce hops
   (bench.raw_hops), and prints pipeline/raw ratios and the targets, met or missed.

Modules: `load` (events, HTTP load), `infra` (processes, CPU), `effects` (waiting, counting),
`report` (table, ratios, targets). Results: a table on stdout and `.cache/bench/e2e-<timestamp>.json`.
Exit status 0 only when every expected effect of both phases happened exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from npsloop_platform.testing.servers import free_port, free_port_pair

from .effects import JsonlTail, Sinks, exactly_once, rows, run_phase, scalar
from .infra import (
    REPO,
    RESULTS_DIR,
    SERVICES,
    Child,
    Children,
    CpuMeter,
    kafka_pid,
    log,
    postgres_pid,
    service_argv,
    service_env,
    wait_ready,
    work_dir,
)
from .load import TENANT, kafka_payloads, make_events
from .report import compute_ratios, compute_targets, report, summary_ms


async def start_services(
    args: argparse.Namespace,
    work: Path,
    bootstrap: str,
    prefix: str,
    db_url: str,
    children: Children,
    result: dict[str, Any],
) -> tuple[dict[str, tuple[Child, int]], Child, Path]:
    """The sinks and the four services, each its own process; returns once all are ready."""
    sinks_dir = work / "sinks"
    sink_child = children.spawn(
        "sinks", [sys.executable, "-m", "bench.sinks", "--out", str(sinks_dir)], work / "sinks.log"
    )
    ready_file = sinks_dir / "sinks.ready.json"
    t0 = time.monotonic()
    while not ready_file.exists():
        if not sink_child.alive() or time.monotonic() - t0 > 30:
            raise RuntimeError(f"SMTP/HTTP sinks did not start:\n{sink_child.tail()}")
        await asyncio.sleep(0.1)
    sinks = json.loads(ready_file.read_text())
    log(f"SMTP sink 127.0.0.1:{sinks['smtp_port']}, call-task sink {sinks['call_task_url']}")
    services: dict[str, tuple[Child, int]] = {}
    profiled = {p.strip() for p in (args.profile or "").split(",") if p.strip()}
    for name in SERVICES:
        port = free_port()
        argv = service_argv(name, port)
        env = service_env(name, bootstrap=bootstrap, prefix=prefix, db_url=db_url, sinks=sinks)
        if name in profiled:  # cProfile writes the stats when uvicorn exits after SIGTERM
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            out = RESULTS_DIR / f"profile-{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.pstats"
            argv = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "bench.profiled_uvicorn", *argv[3:]]
            result.setdefault("profiles", {})[name] = str(out.relative_to(REPO))
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        services[name] = (children.spawn(name, argv, work / f"{name}.log", env, cwd=work), port)
    log("started " + ", ".join(f"{n} (pid {c.pid}, :{p})" for n, (c, p) in services.items()))
    ready_s = await asyncio.gather(
        *(wait_ready(c, f"http://127.0.0.1:{p}/readyz", args.ready_timeout) for c, p in services.values())
    )
    result["services_ready_s"] = dict(zip(services, [round(s, 2) for s in ready_s], strict=True))
    return services, sink_child, sinks_dir


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
    from npsloop_platform.bus.kafka import KafkaBus
    from npsloop_platform.db import Database
    from npsloop_platform.testing.infra import fresh_database
    from npsloop_schemas import ALL_TOPICS

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    result["topic_prefix"] = prefix
    wait_deadline = deadline - (0 if args.skip_raw else args.raw_reserve)
    log(f"creating topics under prefix {prefix!r}")
    await KafkaBus(bootstrap, topic_prefix=prefix).ensure_topics(ALL_TOPICS)

    async with fresh_database(pg_url) as db_url:
        services: dict[str, tuple[Child, int]] = {}
        sink_child: Child | None = None
        db = Database(db_url, pool_size=2)
        try:
            services, sink_child, sinks_dir = await start_services(
                args, work, bootstrap, prefix, db_url, children, result
            )
            cpu = CpuMeter()
            for name, (c, _) in services.items():
                cpu.add(name, c.pid)
            cpu.add("kafka", kafka_pid(kafka_data))
            cpu.add("postgres", postgres_pid(pg_data), with_children=True)
            cpu.add("sinks", sink_child.pid)
            cpu.add("bench (load generator)", os.getpid())
            from npsloop_platform.testing.helpers import make_key

            api_key = await make_key(db_url, "source", tenant=TENANT)
            sinks = Sinks(JsonlTail(sinks_dir / "emails.jsonl"), JsonlTail(sinks_dir / "calls.jsonl"), db, api_key)
            ingest_url = f"http://127.0.0.1:{services['ingest'][1]}"

            log(f"burst: {args.events} events")
            events = make_events(args.events, args.seed)
            result["pipeline"] = await run_phase(
                events, ingest_url=ingest_url, sinks=sinks, cpu=cpu, args=args, rate=args.rate, deadline=wait_deadline
            )
            n_sustained = int(args.sustained_rate * args.sustained_seconds)
            if n_sustained and result["pipeline"]["complete"]:
                log(f"sustained: {args.sustained_rate:g} events/s for {args.sustained_seconds:g} s")
                more = make_events(n_sustained, args.seed + 1, offset=args.events)
                phase = await run_phase(
                    more,
                    ingest_url=ingest_url,
                    sinks=sinks,
                    cpu=cpu,
                    args=args,
                    rate=args.sustained_rate,
                    deadline=wait_deadline,
                )
                result["sustained"] = {"rate": args.sustained_rate, "seconds": args.sustained_seconds, **phase}
            result["totals"] = await totals(db)
        finally:
            await db.stop()
            if services:
                log("stopping the services")
                children.stop([c for c, _ in services.values()])
            if sink_child is not None:
                children.stop([sink_child])

    from bench.raw_hops import topic_message_counts

    with contextlib.suppress(Exception):
        topics = await topic_message_counts(bootstrap, prefix)
        result["totals"]["topic_messages"] = topics
        result["totals"]["dead_lettered"] = sum(n for t, n in topics.items() if ".dlq." in t)
        result["pipeline"]["dead_lettered"] = result["totals"]["dead_lettered"]


async def totals(db: Any) -> dict[str, Any]:
    """Checks over everything both phases did: duplicates in the timeline and the outbox."""

    async def duplicate_timeline_entries(entry: str) -> int:
        sql = (
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM actions.case_timeline "
            f"WHERE entry = '{entry}' GROUP BY case_id) s WHERE n > 1"
        )
        return int(await scalar(db, sql))

    outbox = await rows(
        db,
        "SELECT count(*), count(*) FILTER (WHERE published_at IS NULL), count(*) - count(DISTINCT event_id) "
        "FROM actions.outbox",
    )
    deliveries = await rows(db, "SELECT kind, status, count(*) FROM notifier.deliveries GROUP BY kind, status")
    return {
        "duplicate_opened_timeline": await duplicate_timeline_entries("opened"),
        "duplicate_contacted_timeline": await duplicate_timeline_entries("delivery_sent"),
        "cases_by_status": {
            s: int(n) for s, n in await rows(db, "SELECT status, count(*) FROM actions.cases GROUP BY 1")
        },
        "outbox": {
            "rows": int(outbox[0][0]),
            "unpublished": int(outbox[0][1]),
            "duplicate_event_ids": int(outbox[0][2]),
        },
        "notifier_deliveries": {f"{k}/{s}": int(n) for k, s, n in deliveries},
        "notifier_deliveries_retried": int(
            await scalar(db, "SELECT count(*) FROM notifier.deliveries WHERE attempts > 1")
        ),
    }


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
    parser.add_argument(
        "--sustained-rate", type=float, default=500, help="events/s of the sustained phase (default 500)"
    )
    parser.add_argument(
        "--sustained-seconds", type=float, default=60, help="length of the sustained phase; 0 skips it (default 60)"
    )
    parser.add_argument("--result-file", type=Path, default=None, help="write the JSON here (default .cache/bench/)")
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
            compute_targets(result)
            p = result.get("pipeline") or {}
            t = result.get("totals") or {}
            ok = bool(
                exactly_once(p)
                and ("sustained" in result or not args.sustained_seconds or not args.sustained_rate)
                and exactly_once(result.get("sustained") or p)
                and t.get("duplicate_opened_timeline") == 0
                and t.get("duplicate_contacted_timeline") == 0
                and (t.get("outbox") or {}).get("duplicate_event_ids") == 0
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
    path = args.result_file or RESULTS_DIR / f"e2e-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    result["result_file"] = str(path)
    path.write_text(json.dumps(result, indent=2, default=str))
    print(report(result), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
