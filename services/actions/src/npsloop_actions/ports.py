"""What the handlers need from storage. The SQL repository implements it; tests pass fakes.

Reads that decide something (the inbox claim, which cases exist) go to the database at once, in
bulk; writes are collected and sent in bulk when the edge flushes, inside the batch's one
transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from npsloop_schemas import Envelope, FeedbackClassifiedV1


@dataclass(frozen=True)
class CaseChange:
    case_id: uuid.UUID
    status: str
    entry: str
    detail: dict[str, str] = field(default_factory=dict)


class ActionsRepository(Protocol):
    async def claim_inbox(self, events: Sequence[Envelope]) -> set[uuid.UUID]:
        """Record the events as consumed; return the ids consumed for the first time."""
        ...

    def add_feedback(self, event: FeedbackClassifiedV1, customer_key: str) -> None: ...

    def open_case(self, case_id: uuid.UUID, event: FeedbackClassifiedV1, customer_key: str, reason: str) -> None: ...

    async def mark_cases(self, changes: Sequence[CaseChange]) -> set[uuid.UUID]:
        """Apply the changes in order (timeline entries) to the cases that exist; return those."""
        ...

    def add_outbox(self, event: Envelope, key: str) -> None: ...
