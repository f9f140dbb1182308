"""Kafka edge of reporting: one consumer group over feedback.classified, case.events and
notification.status. One batch, one transaction.

The platform's consumer hands each event type its own group of a batch; the read model wants
them in poll order (a case's events, one customer's answers). So the handlers only collect into
the unit of work, and the unit of work folds everything in (topic, partition, offset) order when
it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from npsloop_platform.bus import Bus
from npsloop_platform.consumer import EventConsumer, consumer_options
from npsloop_platform.db import Database
from npsloop_platform.stores import StoreDirectory
from npsloop_platform.uow import Received, SqlUnitOfWork

from .config import ReportingSettings
from .handlers import FOLDED, fold
from .repository import SqlReportingRepository

MIGRATIONS = Path(__file__).parent / "migrations"


class ReportingUnitOfWork(SqlUnitOfWork):
    def __init__(self, db: Database, stores: StoreDirectory, default_sla_s: float) -> None:
        super().__init__(db, "reporting")
        self.stores, self.default_sla_s = stores, default_sla_s
        self.pending: list[Received[Any]] = []
        self.folded = 0

    async def __aenter__(self) -> Self:
        self.pending = []
        return await super().__aenter__()

    async def commit(self) -> None:
        items = sorted(self.pending, key=lambda i: (i.msg.topic, i.msg.partition, i.msg.offset))
        repo = SqlReportingRepository(self.session)
        self.folded = await fold([(i.event, i.key) for i in items], self.stores, repo, self.default_sla_s)
        await super().commit()


async def collect(items: Sequence[Received[Any]], uow: ReportingUnitOfWork) -> None:
    uow.pending.extend(items)


def build_consumer(settings: ReportingSettings, bus: Bus, db: Database, stores: StoreDirectory) -> EventConsumer:
    return EventConsumer(
        bus,
        settings.group_id,
        dict.fromkeys(FOLDED, collect),
        unit_of_work=lambda: ReportingUnitOfWork(db, stores, settings.default_sla_hours * 3600),
        **consumer_options(settings),
    )
