"""The unit of work one consumed batch runs in (after cosmicpython's `service_layer/unit_of_work.py`).

Handlers never publish, dead-letter or wake anything directly: they ask the unit of work, which
holds it all until `commit()`. The consumer edge then sends what was published, dead-letters what
was refused, runs the after-commit hooks, waits for every ack once and commits the offsets once.
A unit of work that is left without `commit()` rolls back and nothing of it leaves the process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from npsloop_schemas import Envelope

from .bus.base import Headers, Message
from .db import Database

E = TypeVar("E", bound=Envelope)


@dataclass(frozen=True)
class Received(Generic[E]):
    """One consumed event with its message and its key, extracted once at the edge."""

    event: E
    msg: Message
    key: str

    def log_extra(self) -> dict[str, str]:
        return {"event_id": str(self.event.event_id), "correlation_id": str(self.event.correlation_id)}


@dataclass(frozen=True)
class Outgoing:
    event: Envelope
    key: str
    headers: Headers = ()


@dataclass
class UnitOfWork:
    """A unit of work with no database: publishes, dead letters and hooks wait for `commit()`."""

    name: str = "unit-of-work"
    outgoing: list[Outgoing] = field(default_factory=list)
    refused: list[tuple[Received[Any], BaseException]] = field(default_factory=list)
    hooks: list[Callable[[], None]] = field(default_factory=list)
    committed: bool = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.committed:
            await self.rollback()

    def publish(self, event: Envelope, key: str, headers: Headers = ()) -> None:
        """Publish `event` once this unit of work has committed."""
        self.outgoing.append(Outgoing(event, key, headers))

    def publish_all(self, events: Sequence[tuple[Envelope, str]]) -> None:
        self.outgoing.extend(Outgoing(e, k) for e, k in events)

    def dead_letter(self, item: Received[Any], reason: BaseException) -> None:
        """This one message cannot be handled: dead-letter it after the commit, keep the rest."""
        self.refused.append((item, reason))

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once the commit succeeded (e.g. wake the outbox relay)."""
        self.hooks.append(hook)

    async def commit(self) -> None:
        self.committed = True

    async def rollback(self) -> None:
        self.outgoing.clear()
        self.refused.clear()
        self.hooks.clear()


class SqlUnitOfWork(UnitOfWork):
    """The unit of work with one database transaction: the whole batch commits once."""

    def __init__(self, db: Database, name: str = "sql-unit-of-work") -> None:
        super().__init__(name=name)
        self.db = db
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use `async with`")
        return self._session

    async def __aenter__(self) -> Self:
        self._session = self.db.session()
        await self._session.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc, tb)
        finally:
            await self.session.close()
            self._session = None

    async def commit(self) -> None:
        await self.session.commit()
        await super().commit()

    async def rollback(self) -> None:
        await super().rollback()
        if self._session is not None:
            await self._session.rollback()
