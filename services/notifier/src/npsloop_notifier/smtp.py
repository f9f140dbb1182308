"""SMTP: a small pool of reused aiosmtplib connections, and one mail transaction on one of them.

`transaction` is what `aiosmtplib.SMTP.sendmail` does for one recipient (MAIL, RCPT, DATA, RSET
after a refusal, the same exceptions), without the CPU sendmail spends re-checking what does not
change: it parses and quotes the addresses four times (MAIL and RCPT each parse what sendmail
parsed already) and runs its line-ending regex over the whole message twice and its
dot-stuffing regex once. Here the addresses are quoted once (the sender once per process) and a
message that already has CRLF line endings and no line starting with a dot (what `compose`
writes) goes as it is; any other message is normalized exactly as aiosmtplib would.
"""

from __future__ import annotations

import asyncio
import functools
from email.utils import getaddresses

import aiosmtplib
from aiosmtplib.email import parse_address
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from .config import NotifierSettings

__all__ = ["BadAddress", "SmtpPool", "data_bytes", "envelope_address", "envelope_sender", "normalized", "transaction"]


@functools.lru_cache(maxsize=1024)
def envelope_sender(sender: str) -> str:
    """The bare address of a From header (`npsloop <noreply@x>` -> `noreply@x`); one per tenant."""
    return getaddresses([sender])[0][1] or sender


@functools.lru_cache(maxsize=1024)
def _sender_address(sender: str) -> bytes:
    return envelope_address(sender)


class BadAddress(ValueError):
    """An address that cannot go on an SMTP command line: sending it again cannot help."""


def envelope_address(address: str) -> bytes:
    """`<address>` for MAIL FROM / RCPT TO, checked as aiosmtplib checks it, and stricter: a bare
    address only (aiosmtplib would send `a<b>@x.co` to `<b>`). BadAddress for whitespace, `<>"`
    outside a quoted local part, or non-ASCII (SMTPUTF8 is not used)."""
    try:
        bare = parse_address(address)
    except ValueError as exc:
        raise BadAddress(str(exc)) from None
    if bare != address.strip():
        raise BadAddress(f"Address {address!r} is not a bare address (it would go to <{bare}>)")
    if not bare.isascii():
        raise BadAddress(f"Address {address!r} is not ASCII (this client does not use SMTPUTF8)")
    return f"<{bare}>".encode("ascii")


def normalized(message: bytes) -> bytes:
    """CRLF line endings and a final CRLF (RFC 5321), as aiosmtplib's
    `normalize_message_line_endings` makes them; its regex runs only when some line ending is not
    CRLF (every CR paired with an LF and every LF with a CR: the three counts are equal)."""
    crlf = message.count(b"\r\n")
    if crlf != message.count(b"\n") or crlf != message.count(b"\r") or not message.endswith(b"\r\n"):
        return normalize_message_line_endings(message)
    return message


def data_bytes(message: bytes) -> bytes:
    """A normalized message as DATA sends it: leading dots doubled (only when a line starts with
    one), then the terminating `.` line; the same bytes as aiosmtplib's `execute_data_command`."""
    if message.startswith(b".") or b"\n." in message:
        message = PERIOD_REGEX.sub(b"..", message)
    return message + b".\r\n"


async def transaction(client: aiosmtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    """One mail to one recipient over a connected client that nobody else uses meanwhile.

    Raises what sendmail raises: SMTPSenderRefused, SMTPRecipientsRefused, SMTPDataError (after an
    RSET, so that the connection can be reused), SMTPServerDisconnected and SMTPTimeoutError (the
    client is closed then); BadAddress for an address that cannot be sent, before any command."""
    rcpt = envelope_address(recipient)
    mail_from = _sender_address(sender)
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    message = normalized(message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Server not connected")
    options = [b"SIZE=%d" % len(message)] if client.supports_extension("size") else []
    try:
        response = await client.execute_command(b"MAIL", b"FROM:" + mail_from, *options)
        if response.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(response.code, response.message, sender)
        response = await client.execute_command(b"RCPT", b"TO:" + rcpt)
        if response.code not in (aiosmtplib.SMTPStatus.completed, aiosmtplib.SMTPStatus.will_forward):
            refused = aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)
            raise aiosmtplib.SMTPRecipientsRefused([refused])
        response = await client.execute_command(b"DATA")
        if response.code != aiosmtplib.SMTPStatus.start_input:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        try:
            protocol.write(data_bytes(message))
            response = await protocol.read_response(timeout=client.timeout)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            client.close()  # a half-read response: the connection cannot be trusted again
            raise
        if response.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        try:  # reset the envelope for the connection's next mail, as sendmail does
            await client.rset()
        except (ConnectionError, aiosmtplib.SMTPResponseException):
            pass
        raise


class SmtpPool:
    """A component: at most `size` SMTP connections, reused across messages.

    A connection that fails is dropped (the next message opens a new one); an idle connection the
    server closed meanwhile is reopened once, within the same attempt.
    """

    name = "smtp-pool"

    def __init__(self, settings: NotifierSettings, size: int) -> None:
        self.s = settings
        self._options = settings.smtp_options()  # a bad CA file stops the start, not the first mail
        self._slots = asyncio.Semaphore(size)
        self._idle: list[aiosmtplib.SMTP] = []
        self.connects = 0

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(**self._options)

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        async with self._slots:
            reused = self._idle.pop() if self._idle else None
            client = reused if reused is not None and reused.is_connected else None
            try:
                if client is None:
                    client = await self._connect()
                try:
                    await transaction(client, sender, recipient, message)
                except aiosmtplib.SMTPServerDisconnected:
                    if reused is None:
                        raise
                    client.close()  # the server closed the idle connection: reopen once
                    client = await self._connect()
                    await transaction(client, sender, recipient, message)
            except BaseException:
                if client is not None:
                    client.close()
                raise
            self._idle.append(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        client = self._client()
        await client.connect()
        self.connects += 1
        return client

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await asyncio.wait_for(client.quit(), 2)
            except Exception:
                client.close()

    async def ready(self) -> bool:
        return True
