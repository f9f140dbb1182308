"""What the handlers need from storage. The SQL repository implements it; tests pass fakes."""

from __future__ import annotations

import uuid
from typing import Protocol

from npsloop_schemas import Envelope, FeedbackClassifiedV1


class ActionsRepository(Protocol):
    async def claim_inbox(self, event_id: uuid.UUID, event_type: str) -> bool:
        """Record the event as consumed; False when it was consumed before (a redelivery)."""
        ...

    async def add_feedback(self, event: FeedbackClassifiedV1, customer_key: str) -> None: ...

    async def open_case(
        self, case_id: uuid.UUID, event: FeedbackClassifiedV1, customer_key: str, reason: str
    ) -> None: ...

    async def mark_case(self, case_id: uuid.UUID, status: str, entry: str, detail: dict[str, str]) -> bool:
        """Move a case to `status` and add a timeline entry; False when the case is unknown."""
        ...

    async def add_outbox(self, event: Envelope, key: str) -> None: ...
