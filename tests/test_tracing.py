"""One trace from POST to email: W3C trace context through HTTP, Kafka headers and the outbox, on
the in-memory bus and on real Kafka."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from npsloop.loop import Loop
from npsloop_platform import tracing
from npsloop_platform.testing.helpers import eventually, feedback_body
from npsloop_platform.testing.servers import SmtpSink
from npsloop_schemas import Topics

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure("test", span_exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


async def test_one_trace_covers_post_to_email(
    spans: InMemorySpanExporter, loop: Loop, client: httpx.AsyncClient, smtp_server: SmtpSink
) -> None:
    body = feedback_body(10, customer_id="c-traced", contact={"email": "ann@example.com"})
    traceparent = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"  # the caller's own trace goes on
    response = await client.post("/v1/feedback", json=body, headers={"traceparent": traceparent})
    assert response.status_code == 202, response.text

    def trace() -> list[ReadableSpan]:
        return [s for s in spans.get_finished_spans() if s.context and format(s.context.trace_id, "032x") == CALLER_TRACE]

    async def emailed_and_traced() -> bool:
        names = {s.name for s in trace()}
        return len(smtp_server.messages) == 1 and f"process {Topics.NOTIFICATION_REQUESTED}" in names

    await eventually(emailed_and_traced, timeout=60, what="the email, and its span in the caller's trace")
    def span(name: str, group: str | None = None) -> ReadableSpan:
        (found,) = [
            s
            for s in trace()
            if s.name == name and (group is None or (s.attributes or {}).get("messaging.consumer.group.name") == group)
        ]
        return found

    post = span("POST /v1/feedback")
    classified = span(f"process {Topics.FEEDBACK_RECEIVED}", "classifier")
    acted = span(f"process {Topics.FEEDBACK_CLASSIFIED}", "actions")  # reporting reads the topic too
    notified = span(f"process {Topics.NOTIFICATION_REQUESTED}", "notifier")
    assert post.parent is not None and format(post.parent.span_id, "016x") == "00f067aa0ba902b7"
    # each hop is the child of the one before: HTTP -> Kafka header -> Kafka header -> outbox
    assert classified.parent is not None and post.context is not None
    assert classified.parent.span_id == post.context.span_id
    assert acted.parent is not None and classified.context is not None
    assert acted.parent.span_id == classified.context.span_id
    assert notified.parent is not None and acted.context is not None
    assert notified.parent.span_id == acted.context.span_id
    assert notified.attributes is not None and notified.attributes["messaging.consumer.group.name"] == "notifier"
    assert post.attributes is not None and post.attributes["http.response.status_code"] == 202


async def test_tracing_off_adds_no_headers(loop: Loop, client: httpx.AsyncClient) -> None:
    assert not tracing.enabled()
    response = await client.post("/v1/feedback", json=feedback_body(3, customer_id="c-untraced"))
    assert response.status_code == 202
    from npsloop_platform.testing.helpers import read_topic

    (msg,) = await read_topic(loop.bus, Topics.FEEDBACK_RECEIVED, 1)
    assert msg.header("traceparent") is None


def test_otlp_exports_spans_over_http_to_the_configured_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """NPSLOOP_TRACING=otlp: a real OTLP/HTTP receiver on 127.0.0.1 gets the spans, in protobuf."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[tuple[str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers.get("Content-Length", 0)))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        tracing.configure("ingest", "otlp")
        with tracing.server_span("POST", "/v1/feedback", [(b"traceparent", f"00-{CALLER_TRACE}-00f067aa0ba902b7-01".encode())]):
            pass
        tracing.shutdown()  # flushes the batch
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert received and received[0][0] == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(received[0][1])
    (resource_spans,) = request.resource_spans
    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert attributes["service.name"] == "npsloop-ingest"
    (span,) = [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert span.name == "POST /v1/feedback" and span.trace_id.hex() == CALLER_TRACE


@pytest.mark.parametrize("bus", ["memory"], indirect=True)  # about HTTP only: Kafka adds nothing here
async def test_a_process_wide_tracer_provider_adds_no_second_server_span(
    spans: InMemorySpanExporter, loop: Loop, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent such as `opentelemetry-instrument` sets a process-wide provider. FastAPI's own
    telemetry would then add its server span next to ours; it is off, so each request has one."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    global_provider = TracerProvider()
    global_provider.add_span_processor(SimpleSpanProcessor(spans))  # what it records lands here too
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: global_provider)
    try:
        response = await client.post("/v1/feedback", json=feedback_body(9, customer_id="c-agent"))
        assert response.status_code == 202, response.text
        server = [s for s in spans.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
        assert [s.name for s in server] == ["POST /v1/feedback"]
    finally:
        global_provider.shutdown()
