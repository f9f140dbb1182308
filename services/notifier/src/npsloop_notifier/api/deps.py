"""What the notifier's routes need, kept in the app state's extras under `notifier`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from npsloop_platform.app import state_of

from ..admin_repository import DeliveryLog, SuppressionList
from ..config import NotifierSettings
from ..delivery import Clock
from ..links import Links
from ..webhook_handlers import WebhookDispatcher
from ..webhook_repository import SqlWebhookStore

EXTRA = "notifier"


@dataclass
class NotifierApi:
    settings: NotifierSettings
    subscriptions: SqlWebhookStore
    dispatcher: WebhookDispatcher
    log: DeliveryLog
    suppressions: SuppressionList
    links: Links
    clock: Clock


async def get_api(request: Request) -> NotifierApi:
    api: NotifierApi = state_of(request).extras[EXTRA]
    return api


ApiDep = Annotated[NotifierApi, Depends(get_api)]
TENANT = Query(
    None,
    min_length=1,
    max_length=64,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    description="Optional: your key's tenant.",
)
