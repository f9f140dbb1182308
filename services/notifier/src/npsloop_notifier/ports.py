"""What delivery needs from the outside world: channels that contact people, stores that
remember deliveries and subscriptions. The SQL stores and the SMTP/HTTP channels implement them;
tests pass fakes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from npsloop_schemas import NotificationRequestedV1


class DeliveryError(Exception):
    """A failed delivery attempt. `permanent`: retrying cannot help (e.g. 400, recipient refused).
    `retry_after_s`: the receiver asked to wait this long (Retry-After on a 408 or 429)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after_s: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent, self.retry_after_s, self.status_code = permanent, retry_after_s, status_code


class Channel(Protocol):
    async def deliver(self, request: NotificationRequestedV1) -> None:
        """Contact the customer once; raise DeliveryError on failure."""
        ...


@dataclass(frozen=True)
class Gate:
    """What the contact policy asks the store to check for one request, in the batch's `begin`."""

    hashes: tuple[str, ...] = ()  # suppression-list entries that block it (address, phone, customer)
    not_before: datetime | None = None  # capped kinds: the customer's last contact must be this old


@dataclass(frozen=True)
class Begun:
    """A delivery's state when a batch starts: 'pending' (new, or in doubt after a crash) or final,
    with what the contact policy found."""

    status: str = "pending"
    attempts: int = 0
    error: str | None = None
    existed: bool = False  # begun before this batch: final, or in doubt after a crash
    blocked: str | None = None  # on the suppression list, for this reason
    claimed: bool = False  # took the customer's frequency-cap slot
    holder: uuid.UUID | None = None  # the delivery that held the slot before this batch
    last_contact_at: datetime | None = None


@dataclass(frozen=True)
class Attempt:
    number: int
    at: datetime
    error: str | None = None
    status_code: int | None = None


@dataclass
class Outcome:
    status: str
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None
    #: The last failure was transient (an outage, not a refusal): worth retrying later.
    retryable: bool = False
    #: status 'retrying': when the redelivery loop tries again.
    retry_at: datetime | None = None


class DeliveryStore(Protocol):
    async def begin(
        self, requests: Sequence[NotificationRequestedV1], gates: Sequence[Gate], now: datetime
    ) -> dict[uuid.UUID, Begun]:
        """One round trip for a batch: insert each delivery as 'pending' unless it exists, check
        the suppression list and claim frequency-cap slots; return every delivery's state."""
        ...

    async def finish(
        self,
        request: NotificationRequestedV1,
        outcome: Outcome,
        now: datetime,
        *,
        capped: bool = False,
        total: int | None = None,
    ) -> None:
        """One round trip: the final status (or 'retrying' at `outcome.retry_at`), every attempt
        of the delivery log, and the contact state (a sent message counts; a failed one gives its
        cap slot back). `total`: attempts in all, when earlier rounds made some."""
        ...


@dataclass(frozen=True)
class Subscription:
    id: uuid.UUID
    tenant_id: str
    url: str
    event_types: frozenset[str]
    secret: str
    previous_secret: str | None = None
    previous_valid_until: datetime | None = None
    status: str = "active"

    def matches(self, event_type: str) -> bool:
        return event_type in self.event_types or "*" in self.event_types

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The current secret, and the previous one while its overlap lasts."""
        if self.previous_secret and self.previous_valid_until and now < self.previous_valid_until:
            return (self.secret, self.previous_secret)
        return (self.secret,)


@dataclass(frozen=True)
class WebhookJob:
    """One event to one subscription."""

    delivery_id: uuid.UUID
    subscription: Subscription
    event_id: uuid.UUID
    event_type: str
    tenant_id: str
    customer_key: str
    body: str


class WebhookStore(Protocol):
    async def subscriptions(self, tenants: Sequence[str]) -> list[Subscription]:
        """The live subscriptions of these tenants (active and disabled; never deleted ones)."""
        ...

    async def begin(self, jobs: Sequence[WebhookJob]) -> dict[uuid.UUID, Begun]:
        """One round trip: insert the deliveries unless they exist; the state of those that did."""
        ...

    async def finish(self, job: WebhookJob, outcome: Outcome, *, total_attempts: int, count: bool = True) -> str | None:
        """One round trip: the status, the attempts, and (`count`) the subscription's failure
        count, which disables it at the threshold. Returns the subscription's status."""
        ...
