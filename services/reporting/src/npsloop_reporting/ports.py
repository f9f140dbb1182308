"""What the fold needs from storage. The SQL repository implements it; tests may pass fakes.

The inbox claim is read at once, in bulk; everything else is collected and written in bulk by
`flush()`, inside the batch's one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from npsloop_schemas import Envelope


@dataclass(frozen=True)
class Text:
    """The text side of an answer: set by feedback.classified, replaced by feedback.reclassified."""

    feedback_event_id: uuid.UUID
    at: datetime
    comment: str | None
    language: str | None
    sentiment: str | None
    themes: list[tuple[str, str | None, float | None]] = field(default_factory=list)
    set_comment: bool = True


class ReportingRepository(Protocol):
    async def claim_inbox(self, events: Sequence[Envelope]) -> set[uuid.UUID]:
        """Record the events as folded; return the ids folded for the first time."""
        ...

    def add_response(self, row: dict[str, Any], text: Text) -> None: ...

    def replace_text(self, tenant_id: str, text: Text) -> None:
        """A late text for an answer (or, if it is not here yet, kept until it is)."""
        ...

    def merge_case(self, row: dict[str, Any]) -> None:
        """Fold one case event's facts into the case (commutative: see models.CaseRow)."""
        ...

    def add_delivery(self, row: dict[str, Any]) -> None: ...

    async def flush(self) -> None: ...
