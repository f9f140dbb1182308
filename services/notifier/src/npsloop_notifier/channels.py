"""Delivery channels: SMTP (over a small pool of reused connections) or a local Maildir for email;
HTTP POST (one keep-alive aiohttp session) or local files for call tasks.

Why aiohttp and not httpx for outgoing calls: on this project's 2-core benchmark machine httpx
cost about 2 ms of CPU per POST (anyio and h11 in pure Python), aiohttp about 0.2 ms; the
notifier makes one call per detractor. Emails are composed as bytes (`templates.py`): the email
package's header folding cost more CPU than the rest of a delivery.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mailbox
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.abc
import aiosmtplib

from npsloop_schemas import NotificationRequestedV1

from .config import NotifierSettings
from .ports import DeliveryError
from .smtp import BadAddress, SmtpPool, envelope_sender
from .templates import Templates

__all__ = [
    "DeliveryError",
    "FileCallTaskChannel",
    "HttpCallTaskChannel",
    "HttpClient",
    "MaildirChannel",
    "SmtpChannel",
    "SmtpPool",
]
log = logging.getLogger(__name__)


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
    """Every email kind: rendered from its template, sent over the pool."""

    def __init__(self, settings: NotifierSettings, pool: SmtpPool, templates: Templates) -> None:
        self.s, self.pool, self.templates = settings, pool, templates

    async def deliver(self, request: NotificationRequestedV1) -> None:
        sender, message = self.templates.compose(request, self.s.mail_from)
        to = request.payload.recipient.email or ""
        try:
            await self.pool.send(envelope_sender(sender), to, message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc}", permanent=True) from exc
        except BadAddress as exc:  # no SMTP command line can carry it; retrying cannot help
            raise DeliveryError(f"address cannot be sent over SMTP: {exc}", permanent=True) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:  # a setting to fix; retrying cannot help
            raise DeliveryError(
                f"SMTP authentication failed (NPSLOOP_SMTP_USERNAME/_PASSWORD): {exc}", permanent=True
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP {self.s.smtp_host}:{self.s.smtp_port}: {exc}") from exc


class MaildirChannel:
    """Mail into a local Maildir (the embedded default). The folder and its `tmp`, `new` and `cur`
    are created when missing, also when the folder itself already exists and is empty."""

    def __init__(self, directory: Path, sender: str, templates: Templates) -> None:
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.sender, self.templates = sender, templates
        self.box = mailbox.Maildir(directory, create=False)

    async def deliver(self, request: NotificationRequestedV1) -> None:
        _, message = self.templates.compose(request, self.sender)  # the same bytes as over SMTP
        await asyncio.to_thread(self.box.add, message)


class HttpClient:
    """A component: the one keep-alive aiohttp session every HTTP channel shares."""

    name = "http-client"

    def __init__(
        self,
        timeout_s: float,
        max_connections: int = 64,
        resolver: Callable[[], aiohttp.abc.AbstractResolver] | None = None,
    ) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_connections, self.resolver = max_connections, resolver
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:  # created lazily, inside the running loop
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=self.max_connections,
                resolver=self.resolver() if self.resolver else None,
            )
            self._session = aiohttp.ClientSession(timeout=self.timeout, connector=connector)
        return self._session

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def ready(self) -> bool:
        return True


class HttpCallTaskChannel:
    def __init__(self, url: str, http: HttpClient) -> None:
        self.url, self.http = url, http

    async def deliver(self, request: NotificationRequestedV1) -> None:
        try:
            async with self.http.session.post(
                self.url,
                json=call_task_body(request),
                headers={"Idempotency-Key": str(request.payload.delivery_id)},
                allow_redirects=False,
            ) as response:
                status, body = response.status, (await response.read())[:200]
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"POST {self.url}: {type(exc).__name__}: {exc}") from exc
        raise_for_status(f"POST {self.url}", status, body, retry_after)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import time

    return max(when.timestamp() - (now if now is not None else time.time()), 0.0)


def raise_for_status(what: str, status: int, body: bytes, retry_after: str | None) -> None:
    """2xx passes. 5xx, 408 and 429 are worth retrying (408/429 after their Retry-After); every
    other answer (3xx: redirects are not followed; 4xx) is final."""
    if 200 <= status < 300:
        return
    text = body.decode(errors="replace")
    retryable = status >= 500 or status in (408, 429)
    wait = retry_after_seconds(retry_after) if status in (408, 429, 503) else None
    raise DeliveryError(
        f"{what}: HTTP {status} {text}".strip(), permanent=not retryable, retry_after_s=wait, status_code=status
    )


class FileCallTaskChannel:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory

    async def deliver(self, request: NotificationRequestedV1) -> None:
        path = self.dir / f"{request.payload.delivery_id}.json"
        await asyncio.to_thread(path.write_text, json.dumps(call_task_body(request), indent=2))
