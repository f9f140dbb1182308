"""SMTP with STARTTLS and authentication against a real aiosmtpd server that requires both."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from npsloop_platform.bus import MemoryBus
from npsloop_platform.testing.servers import SmtpSink, tls_smtp_server

from .conftest import notification, started_service, stop_service

LOGIN = (b"npsloop", b"s3cret")


@pytest.fixture
def tls_smtp() -> Iterator[tuple[SmtpSink, Path]]:
    with tempfile.TemporaryDirectory() as tmp, tls_smtp_server(Path(tmp), implicit=False, login=LOGIN) as server:
        yield server


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
