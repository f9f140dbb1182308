"""What the handlers need from storage. The SQL repository implements it; tests pass fakes.

Reads that decide something (the inbox claim, the customers and their open cases, stored
feedback) go to the database at once, in bulk; writes are collected and sent in bulk when the
edge flushes, inside the batch's one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from npsloop_schemas import Band, CaseKind, CaseStatus, Channel, Envelope


class OpenCaseRace(Exception):
    """Another transaction opened a case for the same customer first: the batch is run again,
    and then joins that case. The consumer treats this as transient (retried, never dead-lettered)."""


@dataclass
class OpenCase:
    case_id: uuid.UUID
    kind: CaseKind
    status: CaseStatus
    segment: Band
    priority: int
    store_id: str | None
    themes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


@dataclass
class Customer:
    """A customer's journey as one batch sees and changes it."""

    customer_key: str
    tenant_id: str
    customer_id: str | None
    exists: bool = False
    current_band: Band | None = None
    previous_band: Band | None = None
    last_score: int = 0
    answers: int = 0
    at_risk: bool = False
    at_risk_since: datetime | None = None
    was_detractor: bool = False
    recovered: bool = False
    recovered_at: datetime | None = None
    surprise_set_now: bool = False
    surprise_reason: str | None = None
    surprise_set_at: datetime | None = None
    last_store_id: str | None = None
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    open_case: OpenCase | None = None
    changed: bool = False

    @property
    def anonymous(self) -> bool:
        return self.customer_id is None


@dataclass
class StoredFeedback:
    feedback_event_id: uuid.UUID
    tenant_id: str
    customer_key: str
    score: int
    band: Band
    store_id: str | None
    channel: Channel
    comment: str | None
    contact: dict[str, Any] | None
    consent_to_contact: bool
    locale: str | None
    case_id: uuid.UUID | None
    requested: list[str]
    rules: list[str]
    themes: list[str]
    flags: list[str]
    case: OpenCase | None = None  # the case it opened or joined, in whatever status


@dataclass(frozen=True)
class CaseChange:
    """A delivery report on a case: `contacted` True moves an open case to contacted."""

    case_id: uuid.UUID
    entry: str
    contacted: bool
    at: datetime
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseRef:
    case_id: uuid.UUID
    status: CaseStatus
    store_id: str | None
    customer_key: str
    first_contact: bool  # this change was the case's first contact


class ActionsRepository(Protocol):
    async def claim_inbox(self, events: Sequence[Envelope]) -> set[uuid.UUID]:
        """Record the events as consumed; return the ids consumed for the first time."""
        ...

    async def customers(self, tenant_keys: Sequence[tuple[str, str, str | None]]) -> dict[str, Customer]:
        """(tenant, customer key, customer id) -> the journey and open case, locked for this batch."""
        ...

    async def stored_feedback(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredFeedback]: ...

    def add_feedback(self, row: dict[str, Any]) -> None: ...

    def update_feedback(self, feedback_event_id: uuid.UUID, values: dict[str, Any]) -> None: ...

    def open_case(self, row: dict[str, Any]) -> None:
        """Insert at flush; a customer who has an open case by then raises OpenCaseRace."""
        ...

    def update_case(self, case_id: uuid.UUID, values: dict[str, Any]) -> None: ...

    def add_timeline(
        self, case_id: uuid.UUID, entry: str, detail: dict[str, Any], actor: str | None = None
    ) -> None: ...

    def save_customer(self, customer: Customer) -> None: ...

    async def mark_cases(self, changes: Sequence[CaseChange]) -> dict[uuid.UUID, CaseRef]:
        """Apply delivery reports (timeline entries, first contact) to the cases that exist; return those."""
        ...

    def add_outbox(self, event: Envelope, key: str) -> None: ...
