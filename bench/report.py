"""Reporting: percentiles, the table on stdout, ratios against the raw ceiling, the targets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


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


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


LATENCIES = {
    "http_post_to_202": "POST -> 202 (ingest ack)",
    "ack_to_feedback_stored": "ack -> feedback stored (2 hops)",
    "ack_to_case_stored": "ack -> case stored (2 hops)",
    "ack_to_email_received": "ack -> email received (3 hops)",
    "ack_to_call_task_received": "ack -> call task received (3 hops)",
}


def phase_lines(p: dict[str, Any]) -> list[str]:
    out = [
        f"  accepted (202)                  {p['accepted']} of {p['events']}   statuses {p['http_statuses']}",
        f"  ingest accepted events/s        {fmt(p['ingest_accepted_per_s'])}   (over {fmt(p['ingest_span_s'])} s)",
        f"  POSTs started per s             {fmt(p.get('post_rate_achieved'))}",
        f"  whole-loop events/s             {fmt(p['events_per_s'])}   (first POST -> last case/email, "
        f"{fmt(p['loop_span_s'])} s)",
        f"  whole-loop events/s incl. calls {fmt(p['events_per_s_incl_call_tasks'])}",
        "",
        f"  {'latency (ms)':<34}{'n':>7}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}",
    ]
    for key, label in LATENCIES.items():
        s = p["latency_ms"][key]
        out.append(
            f"  {label:<34}{s.get('n', 0):>7}{fmt(s.get('p50')):>10}{fmt(s.get('p95')):>10}"
            f"{fmt(s.get('p99')):>10}{fmt(s.get('max')):>10}"
        )
    c = p["counts"]
    out += ["", f"  {'effects':<20}{'expected':>10}{'got':>10}{'missing':>10}{'duplicate':>11}{'unexpected':>12}"]
    cs = c["cases"]
    out.append(
        f"  {'cases':<20}{cs['expected']:>10}{cs['stored']:>10}{cs['missing']:>10}{cs['duplicates_rows']:>11}"
        f"{cs['unexpected']:>12}"
    )
    for key, label in (("emails", "emails"), ("call_tasks", "call tasks")):
        e = c[key]
        out.append(
            f"  {label:<20}{e['expected']:>10}{e['expected'] - e['missing']:>10}{e['missing']:>10}"
            f"{e['duplicates']:>11}{e['unexpected']:>12}"
        )
    f = c["feedback_stored"]
    out.append(f"  {'feedback rows':<20}{f['expected']:>10}{f['stored']:>10}{f['missing']:>10}")
    if p.get("http_error_samples"):
        out.append(f"  HTTP errors, samples: {p['http_error_samples']}")
    if not p["complete"]:
        out.append(f"  INCOMPLETE: stalled={p['stalled']} timed_out={p['timed_out']}")
    cpu, per = p.get("cpu_s") or {}, p.get("cpu_ms_per_event") or {}
    if cpu:
        out.append(
            f"  CPU s during the {p['cpu_wall_s']} s phase: "
            + ", ".join(f"{k} {v}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
        )
        out.append(
            f"  CPU ms per event: total {fmt(per.get('total'), 2)} ("
            + ", ".join(f"{k} {fmt(v, 2)}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if k != "total")
            + "; sinks and load generator not counted)"
        )
    return out


def report(result: dict[str, Any]) -> str:
    out: list[str] = []
    p, r, sus = result.get("pipeline"), result.get("raw"), result.get("sustained")
    cfg = result["config"]
    out.append("")
    out.append(
        f"npsloop end-to-end benchmark  ({result['started_at']}, {result['machine']['cpus']} CPUs, "
        f"N={cfg['events']}, concurrency={cfg['concurrency']}, rate={cfg['rate'] or 'unlimited'}, "
        f"sustained {cfg['sustained_rate']:g}/s x {cfg['sustained_seconds']:g} s)"
    )
    out.append("=" * 100)
    if p:
        out.append(
            "BURST  HTTP -> ingest -> Kafka -> classifier -> actions (+Postgres, outbox) -> notifier -> SMTP/HTTP"
        )
        out += phase_lines(p)
    if sus:
        out += ["", f"SUSTAINED  {sus['rate']:g} events/s for {sus['seconds']:g} s, same services"]
        out += phase_lines(sus)
    t = result.get("totals")
    if t:
        out += [
            "",
            f"BOTH PHASES  cases by status {t['cases_by_status']}; duplicate timeline entries: opened "
            f"{t['duplicate_opened_timeline']}, delivery_sent {t['duplicate_contacted_timeline']}",
            f"  outbox {t['outbox']}; notifier deliveries {t['notifier_deliveries']}; retried "
            f"{t['notifier_deliveries_retried']}; dead-lettered {t.get('dead_lettered', '-')}",
        ]
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
        out += ["", "PIPELINE (burst) / RAW"]
        out.append(f"  throughput  pipeline_events_per_s / raw_events_per_s = {fmt(ratios['throughput'], 3)}")
        for key, label in (("email", "email (3 hops)"), ("case", "case (2 hops)")):
            lr = ratios.get(f"latency_{key}") or {}
            out.append(
                f"  latency {label:<16} p50 x{fmt(lr.get('p50'))}, p95 x{fmt(lr.get('p95'))}, p99 x{fmt(lr.get('p99'))}"
            )
    targets = result.get("targets")
    if targets:
        out += ["", "TARGETS (2 cores)"]
        for name, tg in targets.items():
            out.append(f"  {'MET   ' if tg['met'] else 'MISSED'}  {name:<44} {tg['measured']}  (target {tg['target']})")
    if result.get("profiles"):
        out.append("")
        out.append(
            "cProfile stats: "
            + ", ".join(f"{k} {v}" for k, v in result["profiles"].items())
            + "  (python -m pstats FILE)"
        )
    out.append("")
    out.append(f"ok (exactly once, both phases): {result.get('ok')}")
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


def compute_targets(result: dict[str, Any]) -> None:
    """The issue's targets, each with what was measured. Missing one does not make `ok` false:
    `ok` is about correctness (exactly once), the targets about speed."""
    p, sus, ratios = result.get("pipeline") or {}, result.get("sustained") or {}, result.get("ratios") or {}
    targets: dict[str, Any] = {}
    if sus:
        p99 = (sus.get("latency_ms") or {}).get("ack_to_email_received", {}).get("p99")
        achieved = sus.get("post_rate_achieved") or 0
        met = bool(p99 is not None and p99 < 1000 and sus.get("complete") and achieved >= 0.95 * sus["rate"])
        targets[f"sustained {sus['rate']:g}/s, p99 ack->email < 1000 ms"] = {
            "target": f"{sus['rate']:g}/s, p99 < 1000 ms",
            "measured": f"{fmt(achieved)}/s posted, p99 {fmt(p99)} ms",
            "met": met,
        }
    if ratios.get("throughput") is not None:
        targets["burst throughput >= 0.15 x raw ceiling"] = {
            "target": ">= 0.150",
            "measured": f"{ratios['throughput']:.3f}",
            "met": ratios["throughput"] >= 0.15,
        }
    total = (p.get("cpu_ms_per_event") or {}).get("total")
    if total is not None:
        targets["CPU per event <= 4 ms (burst, all processes)"] = {
            "target": "<= 4.0 ms",
            "measured": f"{total:.2f} ms",
            "met": total <= 4.0,
        }
    result["targets"] = targets
