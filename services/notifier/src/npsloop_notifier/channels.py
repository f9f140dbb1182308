"""Delivery channels: SMTP (over a small pool of reused connections) or a local Maildir for email;
HTTP POST (one keep-alive client) or local files for call tasks."""

from __future__ import annotations

import asyncio
import json
import logging
import mailbox
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx

from npsloop_schemas import NotificationRequestedV1

from .config import NotifierSettings
from .ports import DeliveryError

__all__ = ["DeliveryError", "FileCallTaskChannel", "HttpCallTaskChannel", "MaildirChannel", "SmtpChannel", "SmtpPool"]
log = logging.getLogger(__name__)


def thank_you_email(request: NotificationRequestedV1, sender: str) -> EmailMessage:
    p = request.payload
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = p.recipient.email or ""
    msg["Subject"] = "Thank you for your feedback"
    msg["Message-ID"] = f"<{p.delivery_id}@npsloop>"
    msg["X-Npsloop-Delivery-Id"] = str(p.delivery_id)
    greeting = f"Dear {p.recipient.name}," if p.recipient.name else "Hello,"
    msg.set_content(
        f"{greeting}\n\nthank you for rating us {p.score}/10. We are glad you would recommend us, "
        "and we would love to see you again soon.\n"
    )
    return msg


def call_task_body(request: NotificationRequestedV1) -> dict[str, Any]:
    p = request.payload
    return {
        "delivery_id": str(p.delivery_id),
        "tenant_id": request.tenant_id,
        "case_id": str(p.case_id) if p.case_id else None,
        "customer_key": p.customer_key,
        "contact": p.recipient.model_dump(mode="json"),
        "score": p.score,
        "comment": p.comment,
        "store_id": p.store_id,
        "feedback_event_id": str(p.feedback_event_id),
        "reason": f"detractor, score {p.score}",
    }


class SmtpPool:
    """A component: at most `size` SMTP connections, reused across messages.

    A connection that fails is dropped (the next message opens a new one); an idle connection the
    server closed meanwhile is reopened once, within the same attempt.
    """

    name = "smtp-pool"

    def __init__(self, settings: NotifierSettings, size: int) -> None:
        self.s = settings
        self._slots = asyncio.Semaphore(size)
        self._idle: list[aiosmtplib.SMTP] = []
        self.connects = 0

    def _client(self) -> aiosmtplib.SMTP:
        s = self.s
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_s,
        )

    async def send(self, message: EmailMessage) -> None:
        async with self._slots:
            reused = self._idle.pop() if self._idle else None
            client = reused if reused is not None and reused.is_connected else None
            try:
                if client is None:
                    client = await self._connect()
                try:
                    await client.send_message(message)
                except aiosmtplib.SMTPServerDisconnected:
                    if reused is None:
                        raise
                    client.close()  # the server closed the idle connection: reopen once
                    client = await self._connect()
                    await client.send_message(message)
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


class SmtpChannel:
    def __init__(self, settings: NotifierSettings, pool: SmtpPool) -> None:
        self.s, self.pool = settings, pool

    async def deliver(self, request: NotificationRequestedV1) -> None:
        if not request.payload.recipient.email:
            raise DeliveryError("no email address for this customer", permanent=True)
        try:
            await self.pool.send(thank_you_email(request, self.s.mail_from))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc}", permanent=True) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP {self.s.smtp_host}:{self.s.smtp_port}: {exc}") from exc


class MaildirChannel:
    """Mail into a local Maildir (the embedded default). The folder and its `tmp`, `new` and `cur`
    are created when missing, also when the folder itself already exists and is empty."""

    def __init__(self, directory: Path, sender: str) -> None:
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.sender, self.box = sender, mailbox.Maildir(directory, create=False)

    async def deliver(self, request: NotificationRequestedV1) -> None:
        if not request.payload.recipient.email:
            raise DeliveryError("no email address for this customer", permanent=True)
        await asyncio.to_thread(self.box.add, thank_you_email(request, self.sender))


class HttpCallTaskChannel:
    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url, self.client = url, client

    async def deliver(self, request: NotificationRequestedV1) -> None:
        try:
            response = await self.client.post(
                self.url,
                json=call_task_body(request),
                headers={"Idempotency-Key": str(request.payload.delivery_id)},
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"POST {self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            retryable = response.status_code >= 500 or response.status_code in (408, 425, 429)
            raise DeliveryError(
                f"POST {self.url}: HTTP {response.status_code} {response.text[:200]}", permanent=not retryable
            )


class FileCallTaskChannel:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory

    async def deliver(self, request: NotificationRequestedV1) -> None:
        path = self.dir / f"{request.payload.delivery_id}.json"
        await asyncio.to_thread(path.write_text, json.dumps(call_task_body(request), indent=2))
