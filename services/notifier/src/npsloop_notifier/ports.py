"""What delivery needs from the outside world: channels that contact people, a store that
remembers deliveries. The SQL store and the SMTP/HTTP channels implement them; tests pass fakes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from npsloop_schemas import NotificationRequestedV1


class DeliveryError(Exception):
    """A failed delivery attempt. `permanent`: retrying cannot help (e.g. 400, recipient refused)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    async def deliver(self, request: NotificationRequestedV1) -> None:
        """Contact the customer once; raise DeliveryError on failure."""
        ...


@dataclass(frozen=True)
class Begun:
    """A delivery's state when a batch starts: 'pending' (new, or in doubt after a crash) or final."""

    status: str = "pending"
    attempts: int = 0
    error: str | None = None
    existed: bool = False  # begun before this batch: final, or in doubt after a crash


@dataclass(frozen=True)
class Attempt:
    number: int
    at: datetime
    error: str | None = None


@dataclass
class Outcome:
    status: str
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None


class DeliveryStore(Protocol):
    async def begin(self, requests: Sequence[NotificationRequestedV1]) -> dict[uuid.UUID, Begun]:
        """One round trip for a batch: insert each delivery as 'pending' unless it exists; return
        the state of those that existed before (absent: new)."""
        ...

    async def finish(self, delivery_id: uuid.UUID, outcome: Outcome) -> None:
        """One round trip: the final status and every attempt of the delivery log."""
        ...
