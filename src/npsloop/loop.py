"""All five services composed in one process on one bus: the embedded default and the pipeline tests.

Each service contributes the same parts (`build(settings, bus)`) it runs with on its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from npsloop_actions.config import ActionsSettings
from npsloop_actions.main import build as build_actions
from npsloop_classifier.config import ClassifierSettings
from npsloop_classifier.main import build as build_classifier
from npsloop_ingest.config import IngestSettings
from npsloop_ingest.main import build as build_ingest
from npsloop_notifier.config import NotifierSettings
from npsloop_notifier.main import build as build_notifier
from npsloop_platform.access import KeyStore
from npsloop_platform.app import AppState, Component, create_app
from npsloop_platform.bus import Bus
from npsloop_platform.consumer import EventConsumer
from npsloop_platform.db import Database
from npsloop_reporting.config import ReportingSettings
from npsloop_reporting.main import build as build_reporting
from npsloop_reporting.main import utc_now


class Loop:
    def __init__(
        self, bus: Bus, database_url: str, *, clock: Callable[[], datetime] = utc_now, **overrides: Any
    ) -> None:
        """`overrides` are settings fields (e.g. smtp_port, call_task_url) applied to every service;
        `clock` is reporting's (the Monday digest, SLA states)."""
        # Dev mode unless told otherwise: the embedded default and tests allow http://127.0.0.1 webhooks.
        # No call quiet hours either: calls go to files or test sinks, and tests run at any hour.
        common: dict[str, Any] = {
            "bus": bus.name,
            "database_url": database_url,
            "mode": "dev",
            "call_quiet_hours": "",
            **overrides,
        }
        self.bus = bus
        self.ingest_settings = IngestSettings(**common)
        self.notifier_settings = NotifierSettings(**common)
        classifier = build_classifier(ClassifierSettings(**common), bus)
        actions = build_actions(ActionsSettings(**common), bus)
        notifier = build_notifier(self.notifier_settings, bus, keys=actions.keys)
        # Ingest keeps its own pool, as on its own: it asks for custom plans, which its claims need
        # once the table has grown (npsloop_ingest.main.build). The key store is shared.
        ingest = build_ingest(self.ingest_settings, bus, keys=actions.keys)
        self.notifier = notifier
        self.reporting_settings = ReportingSettings(**common)
        reporting = build_reporting(self.reporting_settings, bus, db=actions.db, keys=actions.keys, clock=clock)
        parts = [ingest, classifier, actions, notifier, reporting]
        self.components: list[Component] = [c for p in parts for c in p.components]
        assert actions.db is not None and actions.keys is not None
        self.actions_db: Database = actions.db
        self.keys: KeyStore = actions.keys
        # Signs dashboard sessions; a new one per start, so a restart signs everybody out.
        self.session_secret = secrets.token_bytes(32)
        self.consumers: dict[str, EventConsumer] = {c.group_id: c for p in parts for c in p.consumers}
        self.routers = [*ingest.routers, *actions.routers, *notifier.routers, *reporting.routers]
        self.reporting = reporting
        self.parts = parts

    async def start(self) -> None:
        for component in self.components:
            await component.start()

    async def stop(self) -> None:
        for component in reversed(self.components):
            await component.stop()

    def app(self, *, manage_bus: bool = True, manage_components: bool = True) -> FastAPI:
        """One ASGI app: ingest's, actions', the notifier's and reporting's routes (the dashboard too),
        /healthz and /readyz."""
        components: list[Component] = [*([self.bus] if manage_bus else [])]
        if manage_components:
            components += self.components
        state = AppState(
            bus=self.bus,
            settings=self.ingest_settings,
            db=self.actions_db,
            keys=self.keys,
            session_secret=self.session_secret,
            extras={k: v for p in self.parts for k, v in p.extras.items()},
            embedded=self,
        )
        middleware = [m for p in self.parts for m in p.middleware]
        return create_app("npsloop (embedded)", components, self.routers, state, middleware)
