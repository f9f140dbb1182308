"""The contact policy, channel-agnostic: a suppression list (opt-outs included), a frequency cap
per customer across every kind and channel, and quiet hours for calls in the store's time zone.

The state lives in PostgreSQL (`suppressions`, `contact_state`), so every replica applies the
same policy. This module computes what to check; the store checks it in the batch's one `begin`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta

from npsloop_platform.stores import StoreDirectory
from npsloop_schemas import NotificationKind, NotificationRequestedV1

from .config import EMAIL_KINDS, NotifierSettings
from .ports import Gate


def normalize(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        return "".join(ch for ch in value if ch.isdigit() or ch == "+")
    return value


def suppression_hash(tenant_id: str, kind: str, value: str) -> str:
    """The key of a suppression entry: the list blocks an address without storing it."""
    return hashlib.sha256(f"{tenant_id}\x00{kind}\x00{normalize(kind, value)}".encode()).hexdigest()


def hint(kind: str, value: str) -> str:
    """A masked form for people: `a***@example.com`, `+49******78`, `acme:c***`."""
    value = normalize(kind, value)
    if kind == "email" and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"[:128]
    if kind == "phone":
        return f"{value[:3]}{'*' * max(len(value) - 5, 0)}{value[-2:]}"
    return f"{value[:7]}***"


class ContactPolicy:
    def __init__(self, settings: NotifierSettings, stores: StoreDirectory) -> None:
        self.settings, self.stores = settings, stores
        self.quiet = _parse_hours(settings.call_quiet_hours)

    def gate(self, request: NotificationRequestedV1, now: datetime) -> Gate:
        p, tenant = request.payload, request.tenant_id
        hashes = [suppression_hash(tenant, "customer", p.customer_key)]
        if p.kind in EMAIL_KINDS and p.recipient.email:
            hashes.append(suppression_hash(tenant, "email", p.recipient.email))
        if p.kind is NotificationKind.CALL_TASK and p.recipient.phone:
            hashes.append(suppression_hash(tenant, "phone", p.recipient.phone))
        days = self.settings.cap_days(p.kind)
        return Gate(tuple(hashes), now - timedelta(days=days) if days > 0 else None)

    def quiet_hours(self, request: NotificationRequestedV1, now: datetime) -> str | None:
        """Why a call may not be made now (quiet hours in the store's zone), or None."""
        if request.payload.kind is not NotificationKind.CALL_TASK or self.quiet is None:
            return None
        zone = self.stores.zone(request.tenant_id, request.payload.store_id)
        local = now.astimezone(zone).time()
        start, end = self.quiet
        inside = start <= local < end if start < end else (local >= start or local < end)
        if not inside:
            return None
        return (
            f"quiet hours: {local:%H:%M} in {zone.key} is within {self.settings.call_quiet_hours}; "
            "no calls then (NPSLOOP_CALL_QUIET_HOURS)"
        )

    def cap_reason(self, request: NotificationRequestedV1, last: datetime | None) -> str:
        days = self.settings.cap_days(request.payload.kind)
        when = f" (last one at {last:%Y-%m-%d %H:%M} UTC)" if last else ""
        return f"frequency cap: at most one message per customer in {days:g} days{when}"


def _parse_hours(value: str) -> tuple[time, time] | None:
    if not value:
        return None
    a, _, b = value.partition("-")
    start, end = time.fromisoformat(a), time.fromisoformat(b)
    return None if start == end else (start, end)
