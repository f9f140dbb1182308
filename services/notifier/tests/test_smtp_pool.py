"""The SMTP pool against a real SMTP server (aiosmtpd on 127.0.0.1): connections are reused,
bounded, and replaced when they break; one transaction sends the bytes sendmail would."""

from __future__ import annotations

import asyncio
from typing import Any

import aiosmtplib
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from npsloop_notifier.channels import SmtpPool
from npsloop_notifier.config import NotifierSettings
from npsloop_notifier.smtp import BadAddress, data_bytes, envelope_address, normalized, transaction
from npsloop_platform.testing.servers import SmtpSink, free_port


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


@pytest.mark.parametrize(
    "message",
    [
        b"Subject: a\r\n\r\nhello\r\n",  # what compose writes: passed through as it is
        b"Subject: a\n\nhello\nworld",  # LF only, no final line ending
        b"Subject: a\r\n\r\nlone\rcarriage\r\n",
        b"Subject: a\r\n\r\n.starts with a dot\r\n..two\r\nmid.dle\r\n.",
        b".first line\r\n",
        b"",
    ],
)
def test_data_bytes_are_what_aiosmtplib_would_send(message: bytes) -> None:
    expected = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"
    assert data_bytes(normalized(message)) == expected
    assert normalized(message) == normalize_message_line_endings(message)


@pytest.mark.parametrize("address", ["a b@example.com", "a<b>@example.com", 'x"@example.com', "jörg@example.com"])
def test_an_address_no_command_line_can_carry_is_refused_before_any_command(address: str) -> None:
    with pytest.raises(BadAddress):
        envelope_address(address)


class Recording:
    """aiosmtpd handler: refuses recipients starting with `refuse`, records what it accepted."""

    def __init__(self) -> None:
        self.accepted: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.startswith("refuse"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted.append((envelope.mail_from, list(envelope.mail_options), envelope.original_content))
        return "250 OK"


async def test_a_transaction_sends_the_same_bytes_and_survives_a_refused_recipient() -> None:
    from aiosmtpd.controller import Controller

    handler = Recording()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=controller.port, timeout=10)
    try:
        await client.connect()
        message = b"Subject: x\r\n\r\n.dot first\r\nplain\r\n"
        await transaction(client, "noreply@npsloop.local", "c@example.com", message)
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused, match="no such user"):
            await transaction(client, "noreply@npsloop.local", "refuse@example.com", message)
        await transaction(client, "noreply@npsloop.local", "d@example.com", b"Subject: y\n\nbare LF\n")  # reset, reused
        assert [(a[0], a[2]) for a in handler.accepted] == [
            ("noreply@npsloop.local", message),  # the server undid the dot-stuffing: the bytes we composed
            ("noreply@npsloop.local", b"Subject: y\r\n\r\nbare LF\r\n"),
        ]
        assert handler.accepted[0][1] == [f"SIZE={len(message)}"]
    finally:
        client.close()
        controller.stop()
