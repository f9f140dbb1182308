"""SMTP with STARTTLS and authentication against a real aiosmtpd server that requires both."""

from __future__ import annotations

import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from npsloop_platform.bus import MemoryBus
from npsloop_platform.testing.servers import SmtpSink, free_port

from .conftest import notification, started_service, stop_service


@pytest.fixture
def tls_smtp() -> Iterator[tuple[SmtpSink, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"npsloop", b"s3cret")
            return AuthResult(success=ok, handled=False)

        sink = SmtpSink("127.0.0.1", free_port())
        controller = Controller(
            sink, hostname="127.0.0.1", port=sink.port, tls_context=context, require_starttls=True,
            auth_required=True, authenticator=authenticate, auth_exclude_mechanism=["LOGIN"],
        )  # fmt: skip
        controller.start()
        try:
            yield sink, cert
        finally:
            controller.stop()


async def test_starttls_and_auth_are_configurable(database_url: str, tls_smtp: tuple[SmtpSink, Path]) -> None:
    sink, cert = tls_smtp
    bus = MemoryBus()
    await bus.start()
    common = {"smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_starttls": True, "smtp_ca_file": cert}
    good, good_parts = await started_service(
        bus, database_url, smtp_username="npsloop", smtp_password="s3cret", **common
    )
    try:
        (result,) = await good.notifier.deliver_batch([(notification(customer="acme:t-1"), "acme:t-1")])
        assert result.report is not None and result.report.payload.status == "sent", result.report
        assert len(sink.messages) == 1
    finally:
        await stop_service(good, good_parts)
    bad, bad_parts = await started_service(
        bus, database_url, smtp_username="npsloop", smtp_password="wrong", smtp_timeout_s=3, **common
    )
    try:
        (result,) = await bad.notifier.deliver_batch([(notification(customer="acme:t-2"), "acme:t-2")])
        assert result.report is not None and result.report.payload.status == "failed"
        assert result.report.payload.attempts == 1 and "SMTP authentication failed" in str(result.report.payload.reason)
    finally:
        await stop_service(bad, bad_parts)
        await bus.stop()
