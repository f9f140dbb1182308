"""Kafka edge of actions: the registry of batch handlers. One batch, one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from npsloop_platform.bus import Bus
from npsloop_platform.consumer import EventConsumer, consumer_options
from npsloop_platform.db import Database
from npsloop_platform.outbox import OutboxRelay
from npsloop_platform.uow import Received, SqlUnitOfWork
from npsloop_schemas import FeedbackClassifiedV1, NotificationStatusV1

from .config import ActionsSettings
from .handlers import handle_classified, handle_status
from .repository import SqlActionsRepository


def build_consumer(settings: ActionsSettings, bus: Bus, db: Database, relay: OutboxRelay) -> EventConsumer:
    async def classified(items: Sequence[Received[FeedbackClassifiedV1]], uow: SqlUnitOfWork) -> None:
        repo = SqlActionsRepository(uow.session)
        await handle_classified([(i.event, i.key) for i in items], repo, settings.source_name)
        await _flush(repo, uow)

    async def status(items: Sequence[Received[NotificationStatusV1]], uow: SqlUnitOfWork) -> None:
        repo = SqlActionsRepository(uow.session)
        await handle_status([(i.event, i.key) for i in items], repo, settings.source_name)
        await _flush(repo, uow)

    async def _flush(repo: SqlActionsRepository, uow: SqlUnitOfWork) -> None:
        await repo.flush()
        if repo.outbox_added:
            uow.after_commit(relay.wake)

    return EventConsumer(
        bus,
        settings.group_id,
        {FeedbackClassifiedV1: classified, NotificationStatusV1: status},
        unit_of_work=partial(SqlUnitOfWork, db, "actions"),
        **consumer_options(settings),
    )
