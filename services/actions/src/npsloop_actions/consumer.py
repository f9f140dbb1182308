"""Kafka edge of actions: one unit of work per consumed event (inbox + change + outbox, one commit)."""

from __future__ import annotations

from npsloop_platform.bus import Bus, Message
from npsloop_platform.consumer import EventConsumer, PermanentError, Publisher
from npsloop_platform.db import Database
from npsloop_platform.outbox import OutboxRelay
from npsloop_schemas import Event, FeedbackClassifiedV1, NotificationStatusV1, Topics

from .config import ActionsSettings
from .handlers import handle_classified, handle_status
from .repository import SqlActionsRepository


def build_consumer(settings: ActionsSettings, bus: Bus, db: Database, relay: OutboxRelay) -> EventConsumer:
    async def handle(event: Event, msg: Message, publisher: Publisher) -> None:
        async with db.session() as session, session.begin():
            repo = SqlActionsRepository(session)
            if isinstance(event, FeedbackClassifiedV1):
                await handle_classified(event, repo, settings.source_name)
            elif isinstance(event, NotificationStatusV1):
                key = msg.key.decode() if msg.key else event.tenant_id
                await handle_status(event, repo, settings.source_name, key)
            else:
                raise PermanentError(f"actions does not handle {event.type_tag} (on {msg.topic})")
        if repo.outbox_added:
            relay.wake()

    return EventConsumer(bus, [Topics.FEEDBACK_CLASSIFIED, Topics.NOTIFICATION_STATUS], settings.group_id, handle)
