"""Kafka edge of actions: the registry of batch handlers. One batch, one transaction.

Classified answers and late comments (`feedback.reclassified`) share a topic and a handler, so
one customer's events are handled in the order they came, inside one batch too.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from npsloop_platform.bus import Bus
from npsloop_platform.consumer import EventConsumer, PermanentError, consumer_options
from npsloop_platform.db import Database
from npsloop_platform.outbox import OutboxRelay
from npsloop_platform.retry import is_transient
from npsloop_platform.uow import Received, SqlUnitOfWork
from npsloop_schemas import FeedbackClassifiedV1, FeedbackReclassifiedV1, NotificationStatusV1

from .config import ActionsSettings
from .deliveries import handle_status
from .handlers import Context, handle_feedback
from .ports import OpenCaseRace
from .repository import SqlActionsRepository


def transient(exc: BaseException) -> bool:
    """Outages, and a lost race for a customer's one open case: the batch runs again and joins it."""
    return isinstance(exc, OpenCaseRace) or is_transient(exc)


def build_consumer(
    settings: ActionsSettings, bus: Bus, db: Database, relay: OutboxRelay, ctx: Context
) -> EventConsumer:
    async def feedback(items: Sequence[Received[Any]], uow: SqlUnitOfWork) -> None:
        repo = SqlActionsRepository(uow.session)
        refused = await handle_feedback([(i.event, i.key) for i in items], repo, ctx)
        for index, reason in refused:
            uow.dead_letter(items[index], PermanentError(reason))
        await _flush(repo, uow)

    async def status(items: Sequence[Received[NotificationStatusV1]], uow: SqlUnitOfWork) -> None:
        repo = SqlActionsRepository(uow.session)
        await handle_status([(i.event, i.key) for i in items], repo, ctx)
        await _flush(repo, uow)

    async def _flush(repo: SqlActionsRepository, uow: SqlUnitOfWork) -> None:
        await repo.flush()
        if repo.outbox_added:
            uow.after_commit(relay.wake)

    return EventConsumer(
        bus,
        settings.group_id,
        {FeedbackClassifiedV1: feedback, FeedbackReclassifiedV1: feedback, NotificationStatusV1: status},
        unit_of_work=partial(SqlUnitOfWork, db, "actions"),
        transient=transient,
        **consumer_options(settings),
    )
