"""The Grafana dashboard and the Prometheus alert rules, over the metrics of `npsloop_platform.metrics`."""

from __future__ import annotations

from typing import Any

from .render_k8s import PARTITIONS
from .services import SERVICES

DS = {"type": "prometheus", "uid": "${datasource}"}


def alert_rules() -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for spec in SERVICES:
        if not spec.group:
            continue
        # KEDA adds replicas up to the partition count; lag past what that many replicas absorb, and
        # still growing, means the consumer cannot keep up (or is stuck).
        limit = spec.lag_threshold * PARTITIONS
        lag = f'sum(npsloop_consumer_lag{{group="{spec.group}"}})'
        rules.append(
            {
                "alert": "NpsloopConsumerLagGrowing",
                "expr": f"{lag} > {limit} and deriv({lag}[10m:1m]) > 0",
                "for": "10m",
                "labels": {"severity": "warning", "group": spec.group},
                "annotations": {
                    "summary": f"{spec.name} is falling behind: lag above {limit} and growing",
                    "description": "Look for retries in its log (an outage?) and at npsloop_consumer_handler_seconds; "
                    "more replicas help only up to the partition count.",
                },
            }
        )
    rules += [
        {
            "alert": "NpsloopDeadLetters",
            "expr": "sum by (group, topic) (increase(npsloop_dead_lettered_total[15m])) > 0",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Messages went to {{ $labels.topic }}.dlq.{{ $labels.group }}",
                "description": "Each carries npsloop-dlq-reason; fix the cause, then replay the DLQ.",
            },
        },
        {
            "alert": "NpsloopOutboxStuck",
            "expr": "max by (table) (npsloop_outbox_oldest_unpublished_seconds) > 300",
            "for": "5m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Outbox {{ $labels.table }}: a row has waited over 5 minutes",
                "description": "The relay cannot publish: is Kafka reachable from actions? npsloop_outbox_depth shows the backlog.",
            },
        },
        {
            "alert": "NpsloopSlaBreachesRising",
            "expr": 'max without (group) (increase(npsloop_consumer_events_total{event_type="case.sla_breached.v1"}[1h])) > 5 '
            'and max without (group) (increase(npsloop_consumer_events_total{event_type="case.sla_breached.v1"}[1h])) '
            '> 2 * max without (group) (increase(npsloop_consumer_events_total{event_type="case.sla_breached.v1"}[1h] offset 1d))',
            "for": "30m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Follow-up SLA breaches doubled against the same hour yesterday",
                "description": "Cases wait too long for a first contact: staffing, or deliveries failing?",
            },
        },
        {
            "alert": "NpsloopDeliveriesFailing",
            "expr": 'sum by (kind) (increase(npsloop_deliveries_total{status="failed"}[15m])) > 0',
            "labels": {"severity": "warning"},
            "annotations": {"summary": "{{ $labels.kind }} deliveries failed after every retry"},
        },
        {
            "alert": "NpsloopHttpErrors",
            "expr": 'sum(rate(npsloop_http_requests_total{status=~"5.."}[5m])) / sum(rate(npsloop_http_requests_total[5m])) > 0.05',
            "for": "5m",
            "labels": {"severity": "critical"},
            "annotations": {"summary": "Over 5% of requests answer 5xx (ingest's 503: Kafka unreachable)"},
        },
    ]
    return {"groups": [{"name": "npsloop", "rules": rules}]}


def _panel(pid: int, title: str, exprs: list[tuple[str, str]], x: int, y: int, unit: str = "short") -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": DS,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(65 + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def dashboard() -> dict[str, Any]:
    p99 = "histogram_quantile(0.99, sum by (le, {by}) (rate({m}_bucket[5m])))"
    specs: list[tuple[str, list[tuple[str, str]], str]] = [
        (
            "HTTP requests by route and status",
            [("sum by (route, status) (rate(npsloop_http_requests_total[5m]))", "{{route}} {{status}}")],
            "reqps",
        ),
        (
            "HTTP p99 latency by route",
            [(p99.format(by="route", m="npsloop_http_request_duration_seconds"), "{{route}}")],
            "s",
        ),
        (
            "Outbox depth and oldest row",
            [
                ("max by (table) (npsloop_outbox_depth)", "depth {{table}}"),
                ("max by (table) (npsloop_outbox_oldest_unpublished_seconds)", "oldest s {{table}}"),
            ],
            "short",
        ),
        (
            "Dead letters by group and topic",
            [("sum by (group, topic) (increase(npsloop_dead_lettered_total[5m]))", "{{group}} {{topic}}")],
            "short",
        ),
        (
            "Batch size p50 by group",
            [
                (
                    "histogram_quantile(0.5, sum by (le, group) (rate(npsloop_consumer_batch_size_bucket[5m])))",
                    "{{group}}",
                )
            ],
            "short",
        ),
        ("Handler p99 by group", [(p99.format(by="group", m="npsloop_consumer_handler_seconds"), "{{group}}")], "s"),
        (
            "Deliveries by kind and status",
            [("sum by (kind, status) (rate(npsloop_deliveries_total[5m]))", "{{kind}} {{status}}")],
            "ops",
        ),
        (
            "Events handled by type",
            [("sum by (group, event_type) (rate(npsloop_consumer_events_total[5m]))", "{{group}} {{event_type}}")],
            "ops",
        ),
    ]
    for spec in SERVICES:  # one lag panel per consumer group, from the list of services
        if spec.group:
            specs.append(
                (
                    f"{spec.name}: consumer lag (scales out above {spec.lag_threshold} per replica)",
                    [(f'sum by (topic) (npsloop_consumer_lag{{group="{spec.group}"}})', "{{topic}}")],
                    "short",
                )
            )
    panels = [
        _panel(i + 1, title, exprs, 12 * (i % 2), 8 * (i // 2), unit) for i, (title, exprs, unit) in enumerate(specs)
    ]
    return {
        "uid": "npsloop",
        "title": "npsloop",
        "tags": ["npsloop"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
        },
        "panels": panels,
    }
