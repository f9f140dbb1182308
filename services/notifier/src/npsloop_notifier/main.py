"""The notifier app factory: `uvicorn --factory npsloop_notifier.main:create_app`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from npsloop_platform.access import MIGRATIONS as ACCESS_MIGRATIONS
from npsloop_platform.access import SCHEMA as ACCESS_SCHEMA
from npsloop_platform.access import KeyStore
from npsloop_platform.app import Component, ServiceParts, create_service_app
from npsloop_platform.bus import Bus
from npsloop_platform.db import CUSTOM_PLANS, Database, Migrations
from npsloop_platform.stores import load_stores
from npsloop_schemas import NotificationKind

from .admin_repository import DeliveryLog, SuppressionList
from .api import routers
from .api.deps import EXTRA, NotifierApi
from .channels import FileCallTaskChannel, HttpCallTaskChannel, HttpClient, MaildirChannel, SmtpChannel, SmtpPool
from .config import EMAIL_KINDS, NotifierSettings
from .consumer import build_consumer, build_webhook_consumer
from .delivery import Clock, Sleep, utcnow
from .handlers import Notifier
from .links import Links
from .models import SCHEMA
from .policy import ContactPolicy
from .ports import Channel
from .repository import SqlDeliveryStore
from .retry import Redelivery
from .templates import Templates, load_branding
from .webhook_handlers import WebhookDispatcher
from .webhook_repository import SqlWebhookStore
from .webhooks import WebhookSender, public_only_resolver

MIGRATIONS = Path(__file__).parent / "migrations"


def channels_for(
    settings: NotifierSettings, http: HttpClient, templates: Templates
) -> tuple[dict[NotificationKind, Channel], list[Component]]:
    """The channels the settings name, and the components (connection pools) they need."""
    channels: dict[NotificationKind, Channel] = {}
    parts: list[Component] = []
    email: Channel
    if settings.mail_dir:
        email = MaildirChannel(settings.mail_dir, settings.mail_from, templates)
    else:
        pool = SmtpPool(settings, settings.smtp_pool_size)
        email = SmtpChannel(settings, pool, templates)
        parts.append(pool)
    channels |= dict.fromkeys(EMAIL_KINDS, email)
    if settings.call_task_url:
        channels[NotificationKind.CALL_TASK] = HttpCallTaskChannel(settings.call_task_url, http)
    elif settings.call_task_dir:
        channels[NotificationKind.CALL_TASK] = FileCallTaskChannel(settings.call_task_dir)
    return channels, parts


def build(
    settings: NotifierSettings,
    bus: Bus,
    db: Database | None = None,
    *,
    clock: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
    keys: KeyStore | None = None,
) -> ServiceParts:
    """`clock` and `sleep` are injectable: tests never wait through a backoff or a frequency cap."""
    # Every delivery under way may finish at once: a pool smaller than that opens and closes
    # connections all the time (a new Postgres backend each), which cost more than the deliveries.
    # Custom plans, as ingest's: begin and finish take their ids as arrays. Generic plans made
    # while notifier.deliveries was small scan it, and stay until the next ANALYZE: with 150,000
    # more rows, 27-82 ms a statement instead of 1.2-2.4 (bench/README.md).
    db = db or Database(
        settings.dsn,
        pool_size=settings.max_in_flight + 2,
        session_settings=CUSTOM_PLANS,
    )
    http = HttpClient(settings.http_timeout_s, max_connections=settings.max_in_flight)
    webhook_http = HttpClient(
        settings.webhook_timeout_s,
        max_connections=settings.max_in_flight,
        resolver=public_only_resolver if settings.mode == "prod" else None,
    )
    links = Links(settings.public_base_url, settings.secret_for_links(), settings.link_ttl_days, clock)
    templates = Templates(
        links,
        directory=settings.templates_dir,
        branding=load_branding(settings.branding_file),
        default_locale=settings.default_locale,
    )
    channels, pools = channels_for(settings, http, templates)
    notifier = Notifier(
        SqlDeliveryStore(db),
        channels,
        settings,
        settings.source_name,
        settings.max_in_flight,
        ContactPolicy(settings, load_stores(settings.stores_file)),
        clock,
        sleep,
    )
    subscriptions = SqlWebhookStore(
        db, disable_after=settings.webhook_disable_after, cache_ttl_s=settings.webhook_cache_ttl_s
    )
    dispatcher = WebhookDispatcher(
        subscriptions, WebhookSender(webhook_http), settings, settings.max_in_flight, clock, sleep
    )
    redelivery = Redelivery(
        notifier,
        dispatcher,
        bus,
        group_id=settings.group_id,
        poll_s=settings.retry_poll_s,
        batch=settings.retry_batch,
        clock=clock,
    )
    consumer = build_consumer(settings, bus, notifier)
    webhook_consumer = build_webhook_consumer(settings, bus, dispatcher)
    access: list[Component] = []
    if keys is None:  # on its own; the embedded default passes the one key store it shares
        keys = KeyStore(db, cache_ttl_s=settings.access_cache_ttl_s)
        access = [Migrations(settings.dsn, ACCESS_MIGRATIONS, ACCESS_SCHEMA), keys]
    api = NotifierApi(settings, subscriptions, dispatcher, DeliveryLog(db), SuppressionList(db), links, clock)
    return ServiceParts(
        components=[
            db,
            *access,
            Migrations(settings.dsn, MIGRATIONS, SCHEMA),
            http,
            webhook_http,
            *pools,
            consumer,
            webhook_consumer,
            redelivery,
        ],
        routers=list(routers),
        db=db,
        consumers=[consumer, webhook_consumer],
        keys=keys,
        extras={EXTRA: api, "notifier.delivery": notifier, "notifier.redelivery": redelivery},
    )


def create_app(settings: NotifierSettings | None = None, bus: Bus | None = None) -> FastAPI:
    return create_service_app("notifier", settings or NotifierSettings(), build, bus)
