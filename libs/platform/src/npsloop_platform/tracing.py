"""OpenTelemetry traces across HTTP and Kafka, with W3C trace context (`traceparent`) in headers.

Off by default (nothing is recorded and headers stay as they are: no cost per event). With
`NPSLOOP_TRACING=console` (spans printed to stdout, one JSON per span) or `otlp` (spans sent to
`OTEL_EXPORTER_OTLP_ENDPOINT`, OTLP over HTTP), one feedback's journey is one trace:

    POST /v1/feedback (ingest) -> process feedback.received.v1 (classifier)
      -> process feedback.classified.v1 (actions) -> outbox publish notification.requested.v1
      -> process notification.requested.v1 (notifier: the email or call task)

- A request's span continues the caller's `traceparent`; every message sent while it is current
  carries the context in its Kafka headers.
- A consumer starts one span per message, child of the message's `traceparent`, for the time its
  batch takes. What the batch publishes carries the span of the event that caused it
  (`causation_id`).
- Outbox rows have no headers: the relay looks up the span of the row's causing event among the
  recent ones of this process (the consumer that wrote the row), else it starts a new trace.
"""

from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None  # None: tracing is off
_provider: Any = None
_recent: OrderedDict[str, trace.SpanContext] = OrderedDict()  # event_id -> span that handled it
_RECENT_MAX = 50_000
_CAUSATION = re.compile(rb'"causation_id"\s*:\s*"([0-9a-fA-F-]{36})"')

Headers = Sequence[tuple[str, bytes]]


def enabled() -> bool:
    return _tracer is not None


def configure(service: str, exporter: str | None = None, span_exporter: Any = None) -> None:
    """Turn tracing on for this process: `exporter` 'console' or 'otlp' (NPSLOOP_TRACING when None),
    or a ready `span_exporter` (tests). Empty or 'off': tracing stays off."""
    global _tracer, _provider
    exporter = exporter if exporter is not None else os.environ.get("NPSLOOP_TRACING", "")
    if span_exporter is None and exporter in ("", "off", "none"):
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if _provider is not None:
        _provider.shutdown()
    provider = TracerProvider(resource=Resource.create({"service.name": f"npsloop-{service}"}))
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    elif exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(formatter=lambda s: s.to_json(None) + "\n")))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # OTEL_EXPORTER_OTLP_* settings
    else:
        raise ValueError(f"NPSLOOP_TRACING must be 'console', 'otlp' or empty, not {exporter!r}")
    _provider, _tracer = provider, provider.get_tracer("npsloop")
    log.info("tracing on (%s)", exporter or type(span_exporter).__name__)


def shutdown() -> None:
    """Flush what is buffered and turn tracing off."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None
    _recent.clear()


# ------------------------------------------------------------------------------ carriers --


class _HeaderGetter(Getter[Headers]):
    def get(self, carrier: Headers, key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k.lower() == key]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k for k, _ in carrier]


class _ListSetter(Setter[list[tuple[str, bytes]]]):
    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier.append((key, value.encode("latin-1")))


_GETTER, _SETTER = _HeaderGetter(), _ListSetter()


def inject(headers: Headers, span_context: trace.SpanContext | None = None) -> Headers:
    """`headers` plus the current (or the given) span's `traceparent`; unchanged when tracing is off,
    when no span is current, or when they already carry one."""
    if _tracer is None or any(k == "traceparent" for k, _ in headers):
        return headers
    ctx = trace.set_span_in_context(trace.NonRecordingSpan(span_context)) if span_context is not None else None
    out = list(headers)
    _PROPAGATOR.inject(out, context=ctx, setter=_SETTER)
    return out


def extract(headers: Headers) -> otel_context.Context:
    return _PROPAGATOR.extract(headers, getter=_GETTER)


# ----------------------------------------------------------------------------------- spans --


_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: noise in a trace


@contextmanager
def server_span(method: str, route: str, headers: Sequence[tuple[bytes, bytes]]) -> Iterator[trace.Span | None]:
    if _tracer is None or route in _UNTRACED:
        yield None
        return
    carrier = [(k.decode("latin-1"), v) for k, v in headers]
    with _tracer.start_as_current_span(
        f"{method} {route}",
        context=extract(carrier),
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route},
    ) as span:
        yield span


class BatchSpans:
    """One CONSUMER span per message of a batch, each the child of its message's `traceparent`."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.spans: dict[str, trace.Span] = {}

    def start(self, items: Sequence[Any]) -> None:
        if _tracer is None:
            return
        for item in items:
            event_id = str(item.event.event_id)
            span = _tracer.start_span(
                f"process {item.msg.topic}",
                context=extract(item.msg.headers),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.consumer.group.name": self.group,
                    "messaging.destination.name": item.msg.topic,
                    "messaging.kafka.offset": item.msg.offset,
                    "npsloop.event_type": item.event.type_tag,
                    "npsloop.event_id": event_id,
                },
            )
            self.spans[event_id] = span
            remember(event_id, span.get_span_context(), self.group)

    def context_for(self, causation_id: Any) -> trace.SpanContext | None:
        if not self.spans or causation_id is None:  # tracing off: no work per event
            return None
        span = self.spans.get(str(causation_id))
        return span.get_span_context() if span is not None else None

    def end(self, failed: BaseException | None = None) -> None:
        for span in self.spans.values():
            if failed is not None:
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(failed).__name__))
            span.end()
        self.spans.clear()


def remember(event_id: str, span_context: trace.SpanContext, group: str | None = None) -> None:
    """Keyed by consumer group too: in one process (the embedded default) several groups handle the
    same event, and an outbox row continues the span of the group that wrote it."""
    _recent[f"{group}:{event_id}"] = span_context
    if len(_recent) > _RECENT_MAX:
        _recent.popitem(last=False)


def outbox_headers(value: bytes, group: str | None = None) -> Headers:
    """For an outbox row: the traceparent of the span (of `group`) that handled its causing event, if recent."""
    if _tracer is None:
        return ()
    match = _CAUSATION.search(value)
    parent = _recent.get(f"{group}:{match.group(1).decode()}") if match else None
    if parent is None:
        return ()
    return inject((), parent)


class TracingComponent:
    """Flushes buffered spans when the service stops; always ready."""

    name = "tracing"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        shutdown()

    async def ready(self) -> bool:
        return True
