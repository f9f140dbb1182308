"""The benchmark's external systems, in a process of their own: a real SMTP server (aiosmtpd) and a
real HTTP sink for call tasks, both on 127.0.0.1.

Every message received is appended as one JSON line `{"id": <delivery id>, "t": <epoch s>}` to
`<out>/emails.jsonl` or `<out>/calls.jsonl` (written and flushed at once, so the benchmark can tail
them). When both servers listen, `<out>/sinks.ready.json` holds their addresses. SIGTERM stops it.

Own process, so that the load generator's CPU use cannot delay the receive timestamps.

For `make chaos` (bench.chaos) the same process also runs a CRM webhook receiver (`/webhooks`,
each delivery verified with the `standardwebhooks` package, recorded in `webhooks.jsonl` only when
answered 2xx) and takes faults as flags, in-process: `POST /_control` with
`{"smtp": "ok"|"refuse", "webhook": "ok"|"500"|"timeout", "webhook_secret": "whsec_...",
"timeout_s": 12}`. A refusing SMTP server answers 451 (try again later) to DATA.

    python -m bench.sinks --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from email.parser import BytesHeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from npsloop_platform.testing.servers import free_port

DELIVERY_HEADER = "X-Npsloop-Delivery-Id"


class Recorder:
    """Appends one JSON line per received message; thread-safe."""

    def __init__(self, path: Path) -> None:
        self._f = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self.count = 0

    def record(self, delivery_id: str | None, at: float, **extra: Any) -> None:
        line = json.dumps({"id": delivery_id, "t": at, **extra}) + "\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            self._f.close()


class Control:
    """The fault flags, set over `POST /_control`; read by the SMTP handler and the HTTP handler."""

    def __init__(self) -> None:
        self.smtp, self.webhook, self.webhook_secret, self.timeout_s = "ok", "ok", "", 12.0
        self.refused = {"smtp": 0, "webhook_500": 0, "webhook_timeout": 0, "webhook_unverified": 0}

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        self.smtp = str(body.get("smtp", self.smtp))
        self.webhook = str(body.get("webhook", self.webhook))
        self.webhook_secret = str(body.get("webhook_secret", self.webhook_secret))
        self.timeout_s = float(body.get("timeout_s", self.timeout_s))
        return {"smtp": self.smtp, "webhook": self.webhook, "refused": dict(self.refused)}


class SmtpHandler:
    def __init__(self, recorder: Recorder, control: Control | None = None) -> None:
        self.recorder = recorder
        self.control = control or Control()
        self._parser = BytesHeaderParser()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.control.smtp == "refuse":
            self.control.refused["smtp"] += 1
            return "451 4.3.0 Chaos: try again later"
        at = time.time()
        headers = self._parser.parsebytes(envelope.content)
        self.recorder.record(headers.get(DELIVERY_HEADER), at, to=",".join(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def make_http_server(
    recorder: Recorder, webhooks: Recorder | None = None, control: Control | None = None
) -> ThreadingHTTPServer:
    ctl = control or Control()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real task API would offer

        def answer(self, status: int, payload: bytes = b'{"ok": true}') -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def webhook(self, body: bytes) -> None:
            from standardwebhooks import Webhook
            from standardwebhooks.webhooks import WebhookVerificationError

            if ctl.webhook == "500":
                ctl.refused["webhook_500"] += 1
                return self.answer(500, b'{"error": "chaos"}')
            if ctl.webhook == "timeout":
                ctl.refused["webhook_timeout"] += 1
                time.sleep(ctl.timeout_s)  # longer than the notifier waits: it gave up, we never answer 2xx
                self.close_connection = True
                return self.answer(504, b"{}")
            at = time.time()
            try:
                Webhook(ctl.webhook_secret).verify(body, dict(self.headers.items()))
                verified = True
            except (WebhookVerificationError, ValueError, TypeError):
                verified = False
                ctl.refused["webhook_unverified"] += 1
            assert webhooks is not None
            try:  # the event it carries: one event posted under two webhook-ids would be a real duplicate
                event = json.loads(body).get("event_id")
            except (ValueError, AttributeError):
                event = None
            webhooks.record(self.headers.get("webhook-id"), at, verified=verified, event=event)
            return self.answer(200 if verified else 401)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/_control":
                return self.answer(200, json.dumps(ctl.update(json.loads(body or b"{}"))).encode())
            if self.path == "/webhooks" and webhooks is not None:
                return self.webhook(body)
            at = time.time()
            try:
                delivery_id = json.loads(body or b"null").get("delivery_id")
            except (ValueError, AttributeError):
                delivery_id = None
            recorder.record(delivery_id, at, idem=self.headers.get("Idempotency-Key"))
            payload = b'{"ok": true}'
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    from aiosmtpd.controller import Controller

    emails, calls = Recorder(out / "emails.jsonl"), Recorder(out / "calls.jsonl")
    webhooks, control = Recorder(out / "webhooks.jsonl"), Control()
    smtp_port = free_port()
    controller = Controller(SmtpHandler(emails, control), hostname="127.0.0.1", port=smtp_port)
    http = make_http_server(calls, webhooks, control)
    http_thread = threading.Thread(target=http.serve_forever, name="http-sink", daemon=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    controller.start()
    http_thread.start()
    try:
        ready = {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "call_task_url": f"http://127.0.0.1:{http.server_address[1]}/call-tasks",
            "webhook_url": f"http://127.0.0.1:{http.server_address[1]}/webhooks",
            "control_url": f"http://127.0.0.1:{http.server_address[1]}/_control",
            "pid": os.getpid(),
        }
        tmp = out / "sinks.ready.json.tmp"
        tmp.write_text(json.dumps(ready))
        tmp.replace(out / "sinks.ready.json")
        while not stop.wait(0.5):
            if os.getppid() == 1:  # the benchmark died without stopping us
                break
    finally:
        http.shutdown()
        http.server_close()
        controller.stop()
        emails.close()
        calls.close()
        webhooks.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
