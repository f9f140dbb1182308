"""Message keys: one customer's events share a key, so they stay ordered in one partition."""

from __future__ import annotations

import uuid


def customer_key(tenant_id: str, customer_id: str | None, event_id: uuid.UUID) -> str:
    """`tenant:customer_id`, or `tenant:anon:<event_id>` when the customer is unknown."""
    if customer_id:
        return f"{tenant_id}:{customer_id}"
    return f"{tenant_id}:anon:{event_id}"
