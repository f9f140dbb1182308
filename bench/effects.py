"""Effects checking: wait until every expected case, email and call task exists, then count
what is missing, duplicated or unexpected, and measure latencies from each 202."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .infra import CpuMeter, log
from .load import Event, LoadResult, post_all
from .report import summary_ms


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


@dataclass
class Sinks:
    """What the services reach: the SMTP and HTTP sinks' receive logs, and the service database."""

    emails: JsonlTail
    calls: JsonlTail
    db: Any
    api_key: str = ""  # a source key of the bench tenant, for ingest


async def scalar(db: Any, sql: str) -> Any:
    from sqlalchemy import text

    async with db.session() as session:
        return (await session.execute(text(sql))).scalar_one()


async def rows(db: Any, sql: str) -> list[Any]:
    from sqlalchemy import text

    async with db.session() as session:
        return list((await session.execute(text(sql))).all())


async def run_phase(
    events: Sequence[Event],
    *,
    ingest_url: str,
    sinks: Sinks,
    cpu: CpuMeter,
    args: Any,
    rate: float | None,
    deadline: float,
) -> dict[str, Any]:
    """POST `events`, wait for their effects, count them, measure latencies and CPU per event.

    Runs on services that may already have handled earlier events: counts start from a baseline.
    """
    db = sinks.db
    cases0 = int(await scalar(db, "SELECT count(*) FROM actions.cases"))
    stored0 = int(await scalar(db, "SELECT count(*) FROM actions.feedback"))
    sinks.emails.poll()
    sinks.calls.poll()
    emails0, calls0 = len(sinks.emails.records), len(sinks.calls.records)
    by_band = {b: [e for e in events if e.band == b] for b in ("promoter", "passive", "detractor")}

    log(f"posting {len(events)} feedbacks with {args.concurrency} in flight, rate {rate or 'unlimited'}")
    cpu.start()
    load_task = asyncio.create_task(
        post_all(ingest_url, events, args.concurrency, deadline, args.http_client, rate, sinks.api_key)
    )
    load: LoadResult | None = None
    last_change, last_state, last_print = time.monotonic(), None, 0.0
    stalled = timed_out = False
    while True:
        await asyncio.sleep(0.5)
        if load is None and load_task.done():
            load = load_task.result()
            acc, span = len(load.acked_at), (load.last_ack or 0) - (load.first_post_start or 0)
            log(f"ingest done: {acc} accepted in {span:.1f}s ({acc / span if span > 0 else 0:.0f}/s)")
        sinks.emails.poll()
        sinks.calls.poll()
        cases = int(await scalar(db, "SELECT count(*) FROM actions.cases")) - cases0
        stored = int(await scalar(db, "SELECT count(*) FROM actions.feedback")) - stored0
        emails, calls = len(sinks.emails.records) - emails0, len(sinks.calls.records) - calls0
        state = (cases, stored, emails, calls, len(load.acked_at) if load else -1)
        now = time.monotonic()
        if state != last_state:
            last_state, last_change = state, now
        if now - last_print >= args.progress_every:
            last_print = now
            log(f"progress: stored {stored}, cases {cases}, emails {emails}, call tasks {calls}")
        if load is not None:
            want_cases = sum(1 for e in by_band["detractor"] if e.event_id in load.acked_at)
            want_emails = sum(1 for e in by_band["promoter"] if e.event_id in load.acked_at)
            if cases >= want_cases and emails >= want_emails and calls >= want_cases and stored >= len(load.acked_at):
                break
            if now - last_change > args.stall:
                stalled = True
                log(f"no progress for {args.stall:.0f}s; stopping the wait")
                break
        if now > deadline:
            timed_out = True
            log("time budget exhausted while waiting for the loop to close")
            load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await load_task
            break
    cpu.stop()  # before the settle wait: CPU per event counts the work, not the idle tail
    await asyncio.sleep(min(args.settle, max(0.0, deadline - time.monotonic())))  # late duplicates
    sinks.emails.poll()
    sinks.calls.poll()
    load = load or LoadResult()
    return await collect(events, by_band, load, sinks, emails0, calls0, cpu, stalled, timed_out)


async def collect(
    events: Sequence[Event],
    by_band: dict[str, list[Event]],
    load: LoadResult,
    sinks: Sinks,
    emails0: int,
    calls0: int,
    cpu: CpuMeter,
    stalled: bool,
    timed_out: bool,
) -> dict[str, Any]:
    from npsloop_schemas import derive_id

    db, acked = sinks.db, load.acked_at
    promoters = [e for e in by_band["promoter"] if e.event_id in acked]
    detractor_ids = {e.event_id for e in by_band["detractor"] if e.event_id in acked}
    email_ids = {str(derive_id("delivery:thank_you_email", uuid.UUID(e.event_id))): e.event_id for e in promoters}
    call_ids = {str(derive_id("delivery:call_task", uuid.UUID(e.event_id))): e.event_id for e in by_band["detractor"]}
    call_ids = {d: e for d, e in call_ids.items() if e in detractor_ids}
    emails = count_effects(sinks.emails.records[emails0:], email_ids)
    calls = count_effects(sinks.calls.records[calls0:], call_ids)
    mine = {e.event_id for e in events}
    case_rows = [
        (fid, float(t))
        for fid, t in await rows(
            db, "SELECT feedback_event_id::text, extract(epoch from opened_at)::float8 FROM actions.cases"
        )
        if fid in mine
    ]
    case_at = dict(case_rows)
    fb = await rows(db, "SELECT feedback_event_id::text, extract(epoch from stored_at)::float8 FROM actions.feedback")
    stored_at = {fid: float(t) for fid, t in fb if fid in mine}

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
            "unexpected": len(case_at.keys() - detractor_ids),
        },
        "emails": {"expected": len(email_ids), **{k: v for k, v in emails.items() if k != "first"}},
        "call_tasks": {"expected": len(call_ids), **{k: v for k, v in calls.items() if k != "first"}},
        "feedback_stored": {
            "expected": n_acc,
            "stored": len(acked.keys() & stored_at.keys()),
            "missing": len(acked.keys() - stored_at.keys()),
        },
    }
    cpu_s = {k: round(v, 2) for k, v in cpu.used.items()}
    services_cpu = {k: v for k, v in cpu.used.items() if k not in NOT_THE_SYSTEM}
    per_event = {k: round(v * 1000 / n_acc, 3) for k, v in services_cpu.items()} if n_acc else {}
    if n_acc:
        per_event["total"] = round(sum(services_cpu.values()) * 1000 / n_acc, 3)
    return {
        "events": len(events),
        "accepted": n_acc,
        "http_statuses": dict(load.statuses),
        "http_error_samples": load.error_samples,
        "ingest_accepted_per_s": (
            n_acc / (load.last_ack - first) if load.last_ack and first and load.last_ack > first else None
        ),
        "ingest_span_s": (load.last_ack - first) if load.last_ack and first else None,
        "post_rate_achieved": n_acc / (load.last_post_start - first)
        if load.last_post_start and first and load.last_post_start > first
        else None,
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
        "cpu_s": cpu_s,
        "cpu_wall_s": round(cpu.wall, 1),
        "cpu_ms_per_event": per_event,
    }


#: Measured, but not part of the system under test: the sinks and the load generator.
NOT_THE_SYSTEM = ("sinks", "bench (load generator)")


def exactly_once(phase: dict[str, Any]) -> bool:
    c = phase.get("counts") or {}
    return bool(
        phase.get("complete")
        and phase.get("accepted") == phase.get("events")
        and all(c[k]["missing"] == 0 for k in ("cases", "emails", "call_tasks", "feedback_stored"))
        and c["cases"]["duplicates_rows"] == 0
        and c["emails"]["duplicates"] == 0
        and c["call_tasks"]["duplicates"] == 0
        and c["cases"]["unexpected"] == 0
    )
