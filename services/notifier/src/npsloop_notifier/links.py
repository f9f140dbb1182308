"""Signed links for customers: unsubscribe and the passive's one-click reply.

A token is `<base64url JSON>.<base64url HMAC-SHA256>` with an expiry. It names the delivery, the
tenant, the customer key and a hash of the address (never the address itself: links end up in
proxy logs), so the public pages need no login and cannot be pointed at anybody else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

UNSUBSCRIBE, REPLY = "u", "r"


class BadToken(ValueError):
    """The token is malformed, forged or expired; the message says which, for the page."""


@dataclass(frozen=True)
class LinkClaims:
    action: str
    delivery_id: uuid.UUID
    tenant_id: str
    customer_key: str
    feedback_event_id: uuid.UUID
    email_hash: str | None
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Links:
    def __init__(
        self, base_url: str, secret: bytes, ttl_days: int, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.base_url, self.secret, self.ttl, self.clock = base_url.rstrip("/"), secret, timedelta(days=ttl_days), clock

    def token(
        self,
        action: str,
        delivery_id: uuid.UUID,
        tenant_id: str,
        customer_key: str,
        feedback_event_id: uuid.UUID,
        email_hash: str | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "a": action,
            "d": str(delivery_id),
            "t": tenant_id,
            "k": customer_key,
            "f": str(feedback_event_id),
            "exp": int((self.clock() + self.ttl).timestamp()),
        }
        if email_hash:
            claims["h"] = email_hash
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._mac(payload))}"

    def url(self, path: str, token: str) -> str:
        return f"{self.base_url}{path}?token={quote(token)}"

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).digest()

    def read(self, token: str, action: str) -> LinkClaims:
        payload, _, mac = token.partition(".")
        try:
            given = _unb64(mac)
        except ValueError:
            raise BadToken("this link is damaged") from None
        if not payload or not hmac.compare_digest(given, self._mac(payload)):
            raise BadToken("this link is not valid (it was changed or is not ours)")
        try:
            c = json.loads(_unb64(payload))
            claims = LinkClaims(
                action=c["a"],
                delivery_id=uuid.UUID(c["d"]),
                tenant_id=c["t"],
                customer_key=c["k"],
                feedback_event_id=uuid.UUID(c["f"]),
                email_hash=c.get("h"),
                expires_at=datetime.fromtimestamp(int(c["exp"]), UTC),
            )
        except (ValueError, KeyError, TypeError):
            raise BadToken("this link is damaged") from None
        if claims.action != action:
            raise BadToken("this link is for something else")
        if claims.expires_at < self.clock():
            raise BadToken("this link has expired")
        return claims
