"""Delivery channels: SMTP or a local Maildir for email; HTTP POST or local files for call tasks."""

from __future__ import annotations

import asyncio
import json
import mailbox
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib
import httpx

from npsloop_schemas import NotificationRequestedV1

from .config import NotifierSettings


class DeliveryError(Exception):
    """A failed delivery attempt. `permanent`: retrying cannot help (e.g. 400, recipient refused)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    async def deliver(self, request: NotificationRequestedV1) -> None: ...


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


class SmtpChannel:
    def __init__(self, settings: NotifierSettings) -> None:
        self.s = settings

    async def deliver(self, request: NotificationRequestedV1) -> None:
        if not request.payload.recipient.email:
            raise DeliveryError("no email address for this customer", permanent=True)
        try:
            await aiosmtplib.send(
                thank_you_email(request, self.s.mail_from),
                hostname=self.s.smtp_host,
                port=self.s.smtp_port,
                username=self.s.smtp_username,
                password=self.s.smtp_password.get_secret_value() if self.s.smtp_password else None,
                start_tls=self.s.smtp_starttls,
                timeout=self.s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc}", permanent=True) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP {self.s.smtp_host}:{self.s.smtp_port}: {exc}") from exc


class MaildirChannel:
    def __init__(self, settings: NotifierSettings) -> None:
        assert settings.mail_dir is not None
        self.s, self.box = settings, mailbox.Maildir(settings.mail_dir, create=True)

    async def deliver(self, request: NotificationRequestedV1) -> None:
        if not request.payload.recipient.email:
            raise DeliveryError("no email address for this customer", permanent=True)
        await asyncio.to_thread(self.box.add, thank_you_email(request, self.s.mail_from))


class HttpCallTaskChannel:
    def __init__(self, settings: NotifierSettings, client: httpx.AsyncClient) -> None:
        assert settings.call_task_url is not None
        self.url, self.client = settings.call_task_url, client

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
        self.dir = directory

    async def deliver(self, request: NotificationRequestedV1) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{request.payload.delivery_id}.json"
        await asyncio.to_thread(path.write_text, json.dumps(call_task_body(request), indent=2))
