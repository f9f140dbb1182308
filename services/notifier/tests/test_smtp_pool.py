"""The SMTP pool against a real SMTP server (aiosmtpd on 127.0.0.1): connections are reused,
bounded, and replaced when they break."""

from __future__ import annotations

import asyncio

from npsloop_notifier.channels import SmtpPool
from npsloop_notifier.config import NotifierSettings
from npsloop_platform.testing.servers import SmtpSink


def raw_mail(n: int) -> bytes:
    return f"From: a@b.co\r\nTo: c@d.co\r\nSubject: {n}\r\nX-Npsloop-Delivery-Id: d-{n}\r\n\r\nhello {n}\r\n".encode()


async def test_ten_mails_over_two_reused_connections(smtp_server: SmtpSink) -> None:
    settings = NotifierSettings(
        database_url="postgresql://u@h/db", smtp_host=smtp_server.host, smtp_port=smtp_server.port
    )
    pool = SmtpPool(settings, size=2)
    try:
        await asyncio.gather(*(pool.send("a@b.co", "c@d.co", raw_mail(i)) for i in range(10)))
        assert len(smtp_server.messages) == 10 and pool.connects <= 2
        assert sorted(m["X-Npsloop-Delivery-Id"] for m in smtp_server.messages) == sorted(f"d-{i}" for i in range(10))

        for client in pool._idle:  # the server (or a NAT) dropped the idle connections
            client.close()
        await pool.send("a@b.co", "c@d.co", raw_mail(10))
        assert len(smtp_server.messages) == 11 and pool.connects >= 3  # reconnected, not failed
    finally:
        await pool.stop()
