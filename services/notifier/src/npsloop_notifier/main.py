"""The notifier app factory: `uvicorn --factory npsloop_notifier.main:create_app`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from npsloop_platform.app import Component, ServiceParts, create_service_app
from npsloop_platform.bus import Bus
from npsloop_platform.db import Database, Migrations
from npsloop_schemas import NotificationKind

from .channels import FileCallTaskChannel, HttpCallTaskChannel, HttpClient, MaildirChannel, SmtpChannel, SmtpPool
from .config import NotifierSettings
from .consumer import build_consumer
from .models import SCHEMA
from .ports import Channel
from .repository import SqlDeliveryStore

MIGRATIONS = Path(__file__).parent / "migrations"


def channels_for(
    settings: NotifierSettings, http: HttpClient
) -> tuple[dict[NotificationKind, Channel], list[Component]]:
    """The channels the settings name, and the components (connection pools) they need."""
    channels: dict[NotificationKind, Channel] = {}
    parts: list[Component] = []
    if settings.mail_dir:
        channels[NotificationKind.THANK_YOU_EMAIL] = MaildirChannel(settings.mail_dir, settings.mail_from)
    else:
        pool = SmtpPool(settings, settings.smtp_pool_size)
        channels[NotificationKind.THANK_YOU_EMAIL] = SmtpChannel(settings, pool)
        parts.append(pool)
    if settings.call_task_url:
        channels[NotificationKind.CALL_TASK] = HttpCallTaskChannel(settings.call_task_url, http)
    elif settings.call_task_dir:
        channels[NotificationKind.CALL_TASK] = FileCallTaskChannel(settings.call_task_dir)
    return channels, parts


def build(settings: NotifierSettings, bus: Bus, db: Database | None = None) -> ServiceParts:
    # Every delivery under way may finish at once: a pool smaller than that opens and closes
    # connections all the time (a new Postgres backend each), which cost more than the deliveries.
    db = db or Database(settings.dsn, pool_size=settings.max_in_flight + 2)
    http = HttpClient(settings.http_timeout_s, max_connections=settings.max_in_flight)
    channels, pools = channels_for(settings, http)
    consumer = build_consumer(settings, bus, SqlDeliveryStore(db), channels)
    return ServiceParts(
        components=[db, Migrations(settings.dsn, MIGRATIONS, SCHEMA), http, *pools, consumer],
        db=db,
        consumers=[consumer],
    )


def create_app(settings: NotifierSettings | None = None, bus: Bus | None = None) -> FastAPI:
    return create_service_app("notifier", settings or NotifierSettings(), build, bus)
