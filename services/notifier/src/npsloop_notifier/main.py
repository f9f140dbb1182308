"""The notifier app factory: `uvicorn --factory npsloop_notifier.main:create_app`."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI

from npsloop_platform.app import Component, create_service_app
from npsloop_platform.bus import Bus
from npsloop_platform.db import Database, Migrations
from npsloop_schemas import NotificationKind

from .channels import Channel, FileCallTaskChannel, HttpCallTaskChannel, MaildirChannel, SmtpChannel
from .config import NotifierSettings
from .consumer import build_consumer
from .models import SCHEMA
from .repository import SqlDeliveryStore

MIGRATIONS = Path(__file__).parent / "migrations"


class HttpClient:
    """The shared httpx client as a component, closed on shutdown."""

    name = "http-client"

    def __init__(self, timeout_s: float) -> None:
        self.client = httpx.AsyncClient(timeout=timeout_s)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.aclose()

    async def ready(self) -> bool:
        return not self.client.is_closed


def channels_for(settings: NotifierSettings, http: httpx.AsyncClient) -> dict[NotificationKind, Channel]:
    channels: dict[NotificationKind, Channel] = {}
    email: Channel = MaildirChannel(settings) if settings.mail_dir else SmtpChannel(settings)
    channels[NotificationKind.THANK_YOU_EMAIL] = email
    if settings.call_task_url:
        channels[NotificationKind.CALL_TASK] = HttpCallTaskChannel(settings, http)
    elif settings.call_task_dir:
        channels[NotificationKind.CALL_TASK] = FileCallTaskChannel(settings.call_task_dir)
    return channels


def build(settings: NotifierSettings, bus: Bus, db: Database | None = None) -> tuple[list[Component], list[APIRouter]]:
    url = settings.require_database_url()
    db = db or Database(url)
    http = HttpClient(settings.http_timeout_s)
    consumer = build_consumer(settings, bus, SqlDeliveryStore(db), channels_for(settings, http.client))
    return [db, Migrations(url, MIGRATIONS, SCHEMA), http, consumer], []


def create_app(settings: NotifierSettings | None = None, bus: Bus | None = None) -> FastAPI:
    return create_service_app("notifier", settings or NotifierSettings(), build, bus)
