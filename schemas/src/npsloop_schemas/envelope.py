"""The envelope every npsloop event travels in.

`event_id` is chosen by the producer and is the idempotency key everywhere downstream.
Timestamps must carry a timezone; naive datetimes are rejected.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

TenantId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    Field(description="Tenant (retailer) identifier: letters, digits, '_', '.', '-'."),
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """Base for payloads: immutable, unknown fields ignored so that additive changes stay compatible."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def _discriminators_required(schema: dict[str, Any]) -> None:
    """`event_type` and `schema_version` have defaults in Python, but a message without them cannot be
    routed: the published schema says they are required, so it accepts nothing the consumers refuse."""
    required = schema.setdefault("required", [])
    for name in ("event_type", "schema_version"):
        if name in schema.get("properties", {}) and name not in required:
            required.append(name)


class Envelope(Contract):
    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_extra=_discriminators_required)

    event_id: uuid.UUID = Field(description="Producer-chosen id; the idempotency key downstream.")
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime = Field(description="When it happened in the world (timezone required).")
    recorded_at: AwareDatetime = Field(default_factory=utcnow, description="When npsloop recorded it (UTC).")
    tenant_id: TenantId
    source: str = Field(min_length=1, max_length=128, description="The producing system or service.")
    correlation_id: uuid.UUID = Field(description="Shared by every event of one feedback's journey.")
    causation_id: uuid.UUID | None = Field(default=None, description="The event_id that caused this one.")

    @classmethod
    def following(
        cls,
        cause: Envelope,
        *,
        event_id: uuid.UUID,
        source: str,
        payload: Any,
        occurred_at: datetime | None = None,
    ) -> Self:
        """An event caused by `cause`: same tenant and correlation, causation = cause.event_id."""
        return cls.model_validate(
            {
                "event_id": event_id,
                "occurred_at": occurred_at or utcnow(),
                "tenant_id": cause.tenant_id,
                "source": source,
                "correlation_id": cause.correlation_id,
                "causation_id": cause.event_id,
                "payload": payload,
            }
        )

    @property
    def type_tag(self) -> str:
        return f"{self.event_type}.v{self.schema_version}"
