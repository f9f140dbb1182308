"""CRM webhooks per the Standard Webhooks spec (standardwebhooks.com): secrets, signatures, the
URL rules of dev and prod mode (SSRF), and one signed POST.

- A secret is `whsec_<base64 of 32 random bytes>`; the HMAC key is the decoded bytes.
- `webhook-id` is the delivery id (the same on every retry and replay, so receivers can dedupe),
  `webhook-timestamp` the Unix time of the attempt, and `webhook-signature` is
  `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, space-separated per secret: during a
  rotation's overlap both the new and the previous secret sign.
- In prod mode a URL must be https and its host must resolve to public addresses only; the check
  runs when a subscription is made and again on every connection (a resolver that drops private
  addresses), so a DNS change cannot point a subscription into the private network later.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from .channels import HttpClient, raise_for_status
from .ports import DeliveryError, WebhookJob

SECRET_PREFIX = "whsec_"
USER_AGENT = "npsloop-webhooks/1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secrets_: tuple[str, ...] | list[str], msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: one `v1,<sig>` per secret, space-separated."""
    to_sign = f"{msg_id}.{timestamp}.{body}".encode()
    sigs = [base64.b64encode(hmac.new(_key(s), to_sign, hashlib.sha256).digest()).decode() for s in secrets_]
    return " ".join(f"v1,{s}" for s in sigs)


class UrlRefused(ValueError):
    """A webhook URL that this mode does not allow; the message says why."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_url(url: str, mode: str) -> str:
    """The URL, if this mode allows it; UrlRefused otherwise. Prod: https, public addresses only."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # both parse (and may refuse) the netloc
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UrlRefused("not an http(s) URL with a host")
    if parts.username or parts.password:
        raise UrlRefused("credentials in the URL are not allowed; the signature authenticates us")
    if mode == "dev":
        return url
    if parts.scheme != "https":
        raise UrlRefused("only https:// URLs are allowed in prod mode")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlRefused(f"the host {parts.hostname} does not resolve ({exc})") from None
    private = sorted({str(info[4][0]) for info in infos if not _public(str(info[4][0]))})
    if private or not infos:
        raise UrlRefused(f"the host {parts.hostname} resolves to private or loopback addresses {private} (SSRF)")
    return url


class PublicOnlyResolver(AbstractResolver):
    """Prod mode: resolve as usual, then drop private, loopback and link-local addresses."""

    def __init__(self) -> None:
        self.inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        public = [r for r in found if _public(r["host"])]
        if not public:
            raise OSError(f"{host} resolves only to private or loopback addresses; refused (SSRF)")
        return public

    async def close(self) -> None:
        await self.inner.close()


def public_only_resolver() -> AbstractResolver:
    return PublicOnlyResolver()


class WebhookSender:
    """One signed POST of a job; raises DeliveryError with what went wrong. Redirects are not followed."""

    def __init__(self, http: HttpClient, clock: Callable[[], float] = time.time) -> None:
        self.http, self.clock = http, clock

    def headers(self, job: WebhookJob, secrets_: tuple[str, ...]) -> dict[str, str]:
        timestamp = int(self.clock())
        msg_id = str(job.delivery_id)
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secrets_, msg_id, timestamp, job.body),
            "npsloop-event-type": job.event_type,
        }

    async def send(self, job: WebhookJob, secrets_: tuple[str, ...]) -> int:
        url = job.subscription.url
        what = f"POST {urlsplit(url).netloc}"
        try:
            async with self.http.session.post(
                url, data=job.body.encode(), headers=self.headers(job, secrets_), allow_redirects=False
            ) as response:
                status, body = response.status, (await response.read())[:200]
                retry_after = response.headers.get("Retry-After")
        except TimeoutError as exc:
            raise DeliveryError(f"{what}: no answer within {self.http.timeout.total:g} s (timeout)") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}") from exc
        raise_for_status(what, status, body, retry_after)
        return status


def describe(sub: Any) -> dict[str, Any]:
    """A subscription as the API shows it (never a secret)."""
    return {
        "id": str(sub.id),
        "url": sub.url,
        "event_types": list(sub.event_types),
        "description": sub.description,
        "status": sub.status,
        "disabled_reason": sub.disabled_reason,
        "disabled_at": sub.disabled_at.isoformat() if sub.disabled_at else None,
        "consecutive_failures": sub.consecutive_failures,
        "previous_secret_valid_until": sub.previous_valid_until.isoformat() if sub.previous_valid_until else None,
        "created_at": sub.created_at.isoformat() if sub.created_at else None,
        "created_by": sub.created_by,
    }
