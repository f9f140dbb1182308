"""What `make chaos` asserts once the load is in: waits (bounded) until the loop has drained, then
counts feedback rows, cases, emails, call tasks, webhooks, DLQ entries, consumer lag and the
outbox, and runs the security checks (cross-tenant reads, PII and keys in logs, webhook
signatures). Every count that is off becomes a failure line naming it and by how much."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from .effects import JsonlTail, rows, scalar
from .infra import log
from .load import Event

CUSTOMER_RE = re.compile(rb"c-\d{6}")
PII_RES = {
    "email": re.compile(r"customer\d+@example\.com"),
    "phone": re.compile(r"\+49 151 \d{7}"),
}


def expected_of(events: list[Event], tenants: dict[str, str], load: Any) -> dict[str, Any]:
    from npsloop_schemas import derive_id

    acked = [e for e in events if e.event_id in load.acked]
    fresh = [e for e in acked if e.band != "repeat"]
    customers = {e.event_id: (tenants[e.event_id], json.loads(e.body)["customer_id"]) for e in acked}
    detractor_customers = {customers[e.event_id] for e in acked if e.band in ("detractor", "repeat")}
    # One call task per detractor case, under the id of the answer that opened the case. That is
    # the customer's first detractor answer as actions saw it, not always as the load sent it: a
    # first answer refused with 503 and retried can land after the customer's second one.
    calls: dict[tuple[str, str], set[str]] = {}
    for e in acked:
        if e.band in ("detractor", "repeat"):
            call = str(derive_id("delivery:call_task", uuid.UUID(e.event_id)))
            calls.setdefault(customers[e.event_id], set()).add(call)
    # a negative late comment on a passive answer opens a case too (the policy's late-comment rule)
    detractor_customers |= {customers[i] for i in load.patched_ids if i in customers}
    return {
        "feedback_rows": len(acked),
        "cases": len(detractor_customers),
        "emails": {
            str(derive_id("delivery:thank_you_email", uuid.UUID(e.event_id))) for e in fresh if e.band == "promoter"
        },
        "calls": calls,
        "customers": {t: {c for tt, c in customers.values() if tt == t} for t in set(tenants.values())},
        "repeats": {e.event_id for e in acked if e.band == "repeat"},
    }


def call_counts(expected: dict[Any, set[str]], received: set[str]) -> dict[str, int]:
    """Call tasks against the detractor customers: `expected` holds, per customer, the call ids of
    all their detractor answers (any one of them may have opened the case)."""
    return {
        "calls_missing": sum(1 for ids in expected.values() if not ids & received),
        "calls_doubled": sum(1 for ids in expected.values() if len(ids & received) > 1),  # 2 calls, 1 case
        "calls_unexpected": len(received - set().union(*expected.values())),
        "calls_unique": len(received),
    }


async def consumer_lag(bootstrap: str, prefix: str) -> dict[str, int]:
    """Per consumer group on our topics: end offset minus committed offset, summed."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await admin.start()
    await consumer.start()
    try:
        lag: dict[str, int] = {}
        for group, *_ in await admin.list_consumer_groups():
            offsets = await admin.list_consumer_group_offsets(group)
            ours = {tp: o for tp, o in offsets.items() if tp.topic.startswith(prefix)}
            if not ours:
                continue
            ends = await consumer.end_offsets(list(ours))
            lag[group] = sum(max(0, ends[tp] - o.offset) for tp, o in ours.items())
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def dlq_entries(bootstrap: str, prefix: str, topic: str) -> dict[str, dict[str, str]]:
    """DLQ topic -> {poison marker (the key): reason header} for every DLQ of `topic`."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        dlqs = [t for t in await consumer.topics() if t.startswith(f"{prefix}{topic}.dlq.")]
        out: dict[str, dict[str, str]] = {}
        for dlq in dlqs:
            if not consumer.partitions_for_topic(dlq):
                await consumer._client.force_metadata_update()
            tps = [TopicPartition(dlq, p) for p in consumer.partitions_for_topic(dlq) or ()]
            if not tps:
                out[dlq] = {}
                continue
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            found: dict[str, str] = {}
            while True:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                    break
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for r in records:
                        headers = {k: v.decode(errors="replace") for k, v in r.headers}
                        found[(r.key or b"").decode(errors="replace")] = headers.get("npsloop-dlq-reason", "")
            out[dlq] = found
        return out
    finally:
        await consumer.stop()


async def snapshot(db: Any, exp: dict[str, Any], tails: dict[str, JsonlTail], ctx: dict[str, Any]) -> dict[str, Any]:
    for t in tails.values():
        t.poll()
    ids = {k: Counter(r["id"] for r in t.records) for k, t in tails.items()}
    webhook_sent = await rows(
        db, "SELECT status, count(*) FROM notifier.deliveries WHERE kind = 'webhook' GROUP BY status"
    )
    outbox = await rows(
        db,
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'",
    )
    unpublished = 0
    for (schema,) in outbox:
        unpublished += int(await scalar(db, f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL'))

    # Delivery is at least once with a stable delivery id (webhook-id, the email's delivery header,
    # the call task's Idempotency-Key, each derived from the input event): a message sent just before
    # a SIGKILL, not yet recorded, is sent again with the SAME id after the restart, and the receiver
    # dedupes on it. So deliveries are counted at the receivers by unique id, and a repeat of one id
    # is reported as a redelivery, not a duplicate. A real duplicate is one input under two ids.
    def redelivered(kind: str) -> int:
        return sum(n - 1 for n in ids[kind].values() if n > 1)

    ids_per_event: dict[str, set[str]] = {}
    for r in tails["webhooks"].records:
        if r.get("event") and r.get("id"):
            ids_per_event.setdefault(str(r["event"]), set()).add(str(r["id"]))

    return {
        "redelivered_same_id": {k: redelivered(k) for k in ids},
        "feedback_rows": int(await scalar(db, "SELECT count(*) FROM actions.feedback")),
        "reporting_rows": int(await scalar(db, "SELECT count(*) FROM reporting.responses")),
        "cases": int(await scalar(db, "SELECT count(*) FROM actions.cases")),
        "customers_with_2_cases": int(
            await scalar(
                db,
                "SELECT count(*) FROM (SELECT 1 FROM actions.cases GROUP BY tenant_id, customer_key "
                "HAVING count(*) > 1) s",
            )
        ),
        "emails_missing": len(exp["emails"] - set(ids["emails"])),
        "emails_unique": len(ids["emails"]),
        **call_counts(exp["calls"], set(ids["calls"])),
        "webhooks_received": len(ids["webhooks"]),
        # the run has one subscription: one event received under two ids would be a double post
        "webhooks_duplicates": sum(len(v) - 1 for v in ids_per_event.values()),
        "webhooks_unverified": sum(1 for r in tails["webhooks"].records if not r.get("verified")),
        "webhook_deliveries": {s: int(n) for s, n in webhook_sent},
        "outbox_unpublished": unpublished,
    }


def done(s: dict[str, Any], exp: dict[str, Any], lag: dict[str, int], poison_found: bool) -> bool:
    wh = s["webhook_deliveries"]
    return bool(
        s["feedback_rows"] >= exp["feedback_rows"]
        and s["reporting_rows"] >= exp["feedback_rows"]
        and s["cases"] >= exp["cases"]
        and s["emails_missing"] == 0
        and s["calls_missing"] == 0
        and s["calls_unique"] >= len(exp["calls"])
        and not wh.get("pending")
        and not wh.get("retrying")
        and s["webhooks_received"] >= wh.get("sent", 0)
        and s["outbox_unpublished"] == 0
        and lag
        and not any(lag.values())
        and poison_found
    )


async def cross_tenant(services: dict[str, Any], admin: dict[str, str], exp: dict[str, Any]) -> list[str]:
    """Read with each tenant's admin key; no other tenant's customer may appear in any answer."""
    import httpx

    problems = []
    paths = [("actions", "/v1/cases?limit=200"), ("notifier", "/v1/webhook-subscriptions"), ("reporting", "/v1/nps")]
    async with httpx.AsyncClient(timeout=30) as client:
        for tenant, key in admin.items():
            others = {c.encode() for t, cs in exp["customers"].items() if t != tenant for c in cs}
            for svc, path in paths:
                r = await client.get(services[svc].url + path, headers={"Authorization": f"Bearer {key}"})
                if r.status_code >= 500:
                    problems.append(f"{svc} {path} as {tenant}: HTTP {r.status_code}")
                leaked = set(CUSTOMER_RE.findall(r.content)) & others
                if leaked:
                    problems.append(f"{svc} {path} as {tenant}: {len(leaked)} customers of another tenant")
                for other in admin:
                    if other != tenant and f'"{other}"'.encode() in r.content:
                        problems.append(f"{svc} {path} as {tenant}: mentions tenant {other}")
    return problems


def log_leaks(logs: list[Path], secrets: list[str]) -> dict[str, int]:
    found: Counter[str] = Counter()
    for path in logs:
        for line in path.read_text(errors="replace").splitlines():
            for name, rx in PII_RES.items():
                if rx.search(line):
                    found[f"{name} in {path.name}"] += 1
            if any(s in line for s in secrets):
                found[f"api key in {path.name}"] += 1
    return dict(found)


def recovery(faults: list[Any], tails: dict[str, JsonlTail], acked: list[float]) -> None:
    """Seconds from a fault's end to the first effect after it at the part it hit."""
    signal_of = {"smtp": "emails", "webhook": "webhooks", "kill:notifier": "emails", "kill:actions": "calls"}
    for f in faults:
        restored = f.result.get("restored")
        if restored is None:
            continue
        kind = signal_of.get(f.kind)
        times = [r["t"] for r in tails[kind].records] if kind else acked
        after = [t for t in times if t >= restored]
        f.result["recovery_s"] = round(min(after) - restored, 2) if after else None


async def check(
    db: Any,
    exp: dict[str, Any],
    sinks: dict[str, Any],
    ctx: dict[str, Any],
    services: dict[str, Any],
    keys: dict[str, str],
    admin: dict[str, str],
    deadline: float,
    stall: float,
    bootstrap: str,
    result: dict[str, Any],
) -> dict[str, Any]:
    from .chaos import POISON_TOPIC

    d = Path(sinks["dir"])
    tails = {k: JsonlTail(d / f"{k}.jsonl") for k in ("emails", "calls", "webhooks")}
    markers = {m for batch in ctx["poison"] for m in batch}
    last, last_change = None, time.monotonic()
    while True:
        s = await snapshot(db, exp, tails, ctx)
        lag = await consumer_lag(bootstrap, ctx["prefix"])
        dlqs = await dlq_entries(bootstrap, ctx["prefix"], POISON_TOPIC)
        poison_found = bool(dlqs) and all(markers <= set(found) for found in dlqs.values())
        if done(s, exp, lag, poison_found):
            break
        progress = (s, sum(lag.values()))
        if progress != last:
            last, last_change = progress, time.monotonic()
            log(f"draining: {s} lag {lag}")
        if time.monotonic() - last_change > stall or time.monotonic() > deadline - 30:
            log("no progress: counting what is there")
            break
        await asyncio.sleep(2)
    await asyncio.sleep(3)  # late duplicates
    s = await snapshot(db, exp, tails, ctx)
    lag = await consumer_lag(bootstrap, ctx["prefix"])
    acked_times = sorted(result.get("_acked_times", []))
    failures: list[str] = []

    def expect(name: str, got: int, want: int) -> None:
        if got != want:
            failures.append(f"{name}: {got}, expected {want} (off by {got - want:+d})")

    expect("feedback rows (actions)", s["feedback_rows"], exp["feedback_rows"])
    expect("feedback rows (reporting)", s["reporting_rows"], exp["feedback_rows"])
    expect("cases (one per customer with a detractor answer)", s["cases"], exp["cases"])
    expect("customers with more than one case", s["customers_with_2_cases"], 0)
    expect("thank-you emails missing", s["emails_missing"], 0)
    expect("detractor customers without a call task", s["calls_missing"], 0)
    expect("detractor customers with two call tasks", s["calls_doubled"], 0)
    expect("call tasks for no detractor answer", s["calls_unexpected"], 0)
    expect("webhooks posted for one event under two delivery ids", s["webhooks_duplicates"], 0)
    expect("webhooks that failed signature verification", s["webhooks_unverified"], 0)
    expect("webhooks sent but not received", max(0, s["webhook_deliveries"].get("sent", 0) - s["webhooks_received"]), 0)
    expect("webhook deliveries still pending", s["webhook_deliveries"].get("pending", 0), 0)
    expect("webhook deliveries still retrying", s["webhook_deliveries"].get("retrying", 0), 0)
    expect("webhook deliveries failed", s["webhook_deliveries"].get("failed", 0), 0)
    expect("outbox rows unpublished", s["outbox_unpublished"], 0)
    expect("consumer lag (all groups)", sum(lag.values()), 0)
    if s["webhooks_received"] == 0:
        failures.append("webhooks received: 0 (the CRM never got one)")
    dlqs = await dlq_entries(bootstrap, ctx["prefix"], POISON_TOPIC)
    if not dlqs:
        failures.append(f"no DLQ topic for {POISON_TOPIC}: the poison went nowhere")
    for dlq, found in dlqs.items():
        expect(f"poison messages missing from {dlq}", len(markers - set(found)), 0)
        expect(f"DLQ entries of {dlq} without a reason", sum(1 for m in markers if m in found and not found[m]), 0)
    openers = await rows(db, "SELECT feedback_event_id::text FROM actions.cases WHERE kind = 'callback'")
    opened_by_repeat = sum(1 for (fid,) in openers if fid in exp["repeats"])
    leaks = await cross_tenant(services, admin, exp)
    failures += [f"cross-tenant: {p}" for p in leaks]
    logs = [p for svc in services.values() for p in svc.logs()]
    pii = log_leaks(logs, [*keys.values(), *admin.values()])
    failures += [f"log leak: {n} lines with {what}" for what, n in pii.items()]
    return {
        **s,
        "expected": {k: (len(v) if isinstance(v, (set, dict)) else v) for k, v in exp.items() if k != "customers"},
        "cases_opened_by_a_second_answer": opened_by_repeat,  # its first answer was retried past it
        "consumer_lag": lag,
        "dlq": {t: len(f) for t, f in dlqs.items()},
        "poison_injected": len(markers),
        "cross_tenant_problems": leaks,
        "log_leaks": pii,
        "log_lines_searched": sum(len(p.read_text(errors="replace").splitlines()) for p in logs),
        "acked_times_n": len(acked_times),
        "failures": failures,
        "_tails": tails,
    }


def report(result: dict[str, Any]) -> str:
    c = result.get("counts") or {}
    e = c.get("expected") or {}
    lines = [f"chaos seed={result['config'].get('seed')} events={result['config'].get('events')}", ""]
    lines.append(f"{'count':<48} {'measured':>10} {'expected':>10}")
    table = [
        ("feedback rows (actions)", c.get("feedback_rows"), e.get("feedback_rows")),
        ("feedback rows (reporting)", c.get("reporting_rows"), e.get("feedback_rows")),
        ("cases", c.get("cases"), e.get("cases")),
        ("customers with 2+ cases", c.get("customers_with_2_cases"), 0),
        ("emails missing (unique ids)", c.get("emails_missing"), 0),
        (
            "call tasks: customers without / with two / unexpected",
            f"{c.get('calls_missing')}/{c.get('calls_doubled')}/{c.get('calls_unexpected')}",
            "0/0/0",
        ),
        (
            "webhooks received (unique ids) / one event, 2 ids / unverified",
            f"{c.get('webhooks_received')}/{c.get('webhooks_duplicates')}/{c.get('webhooks_unverified')}",
            "n/0/0",
        ),
        ("redelivered, same id (receivers dedupe)", str(c.get("redelivered_same_id")), ""),
        ("poison messages injected / DLQs", f"{c.get('poison_injected')}/{c.get('dlq')}", ""),
        ("cases opened by a customer's 2nd answer (1st retried)", c.get("cases_opened_by_a_second_answer"), ""),
        ("consumer lag", sum((c.get("consumer_lag") or {}).values()) if c else None, 0),
        ("outbox unpublished", c.get("outbox_unpublished"), 0),
        ("log lines searched / leaks", f"{c.get('log_lines_searched')}/{len(c.get('log_leaks') or {})}", "n/0"),
    ]
    lines += [f"{a:<48} {b!s:>10} {x!s:>10}" for a, b, x in table]
    ld = result.get("load") or {}
    lines.append(
        f"load: {ld.get('accepted')}/{ld.get('events')} accepted, 503s retried {ld.get('retried_503')}, "
        f"connection errors retried {ld.get('retried_connection')}, statuses {ld.get('statuses')}"
    )
    lines += ["", f"{'fault':<18} {'at s':>7} {'down s':>7} {'recovery s':>11}"]
    for f in result.get("faults") or []:
        down = f.get("restart_ready_s", f.get("duration_s"))
        rec = f.get("recovery_s")
        lines.append(f"{f['kind']:<18} {f['at_s']:>7} {down!s:>7} {'-' if rec is None else rec!s:>11}")
    lines.append("")
    lines.append("OK: every count exact" if result.get("ok") else "FAILED:\n  " + "\n  ".join(result["failures"]))
    return "\n".join(lines)
