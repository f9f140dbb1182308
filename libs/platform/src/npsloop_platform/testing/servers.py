"""Real loopback servers for tests: an SMTP server (aiosmtpd) and an HTTP sink (stdlib)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """A free port P whose neighbour P+1 is free too (kafka.sh puts the controller on P+1)."""
    for _ in range(100):
        port = free_port()
        if port >= 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of neighbouring ports on 127.0.0.1")


@dataclass
class SmtpSink:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    #: Once this many messages were accepted, new transactions wait at MAIL FROM until `release()`.
    hold_after: int | None = None
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if self.hold_after is not None and len(self.messages) >= self.hold_after:
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 in its own thread; `stop()` stops it."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.sink = SmtpSink("127.0.0.1", free_port())
        self._controller = Controller(self.sink, hostname="127.0.0.1", port=self.sink.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self.sink

    def stop(self) -> None:
        self.sink.release()  # a held transaction must not keep the server thread from stopping
        self._controller.stop()


@contextmanager
def tls_smtp_server(
    directory: Path, *, implicit: bool, login: tuple[bytes, bytes] | None = None
) -> Iterator[tuple[SmtpSink, Path]]:
    """aiosmtpd on 127.0.0.1 with a self-signed certificate for 127.0.0.1 (written to `directory`):
    implicit TLS (SMTPS) or STARTTLS required; with `login`, AUTH PLAIN required too. Yields the sink
    and the certificate, the CA file a client must trust."""
    import ssl
    import subprocess

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == login
        return AuthResult(success=ok, handled=False)

    sink = SmtpSink("127.0.0.1", free_port())
    auth: dict[str, Any] = {}
    if login is not None:
        auth = {"auth_required": True, "authenticator": authenticate, "auth_exclude_mechanism": ["LOGIN"]}
    # aiosmtpd counts only STARTTLS as TLS for AUTH; an SMTPS connection is TLS from its first byte.
    tls: dict[str, Any] = (
        {"ssl_context": context, "auth_require_tls": False}
        if implicit
        else {"tls_context": context, "require_starttls": True}
    )
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, **tls, **auth)
    controller.start()
    try:
        yield sink, cert
    finally:
        controller.stop()


@dataclass
class HttpSink:
    """Records every POST. `fail_next` answers that many requests with `fail_status` first."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 503
    lock: threading.Lock = field(default_factory=threading.Lock)


class HttpServer:
    def __init__(self) -> None:
        sink = self.sink = HttpSink()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink.lock:
                    failing = sink.fail_next > 0
                    if failing:
                        sink.fail_next -= 1
                    else:
                        sink.requests.append(
                            {"path": self.path, "headers": dict(self.headers), "json": json.loads(body or b"null")}
                        )
                self.send_response(sink.fail_status if failing else 201)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": %s}' % (b"false" if failing else b"true"))

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        sink.url = f"http://127.0.0.1:{self._server.server_address[1]}/call-tasks"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def start(self) -> HttpSink:
        self._thread.start()
        return self.sink

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
