"""The Monday digest: at `digest_hour` (08:00) on Monday in each store's time zone, the digest of
the week that just ended goes to the store's `digest_recipients`, and a region's roll-up to the
region's. A scheduler that starts later in the week still sends that week's digest, once.

Exactly once across restarts and replicas: a row (tenant, scope, week) is claimed in
`reporting.digests` (its primary key decides between replicas) before anything is sent, and
marked sent after. A failed send is retried on a later tick (at most `MAX_ATTEMPTS`); a claim
whose process died before it finished is taken over after `STALE_CLAIM`. The clock is injectable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from npsloop_platform.component import Background
from npsloop_platform.db import Database, custom_plan_session
from npsloop_platform.logging import pii_hash
from npsloop_platform.stores import StoreDirectory

from .config import ReportingSettings
from .digest import build_digest, render_html, render_text
from .figures import Scope
from .mailer import Mailer, digest_message
from .periods import Period, PeriodKind

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10
STALE_CLAIM = timedelta(minutes=15)


@dataclass(frozen=True)
class Due:
    tenant_id: str
    scope: str  # the store id, or "region:<name>"
    title: str
    recipients: list[str]
    week: Period
    store_id: str | None = None
    region: str | None = None


def due_week(now: datetime, zone: ZoneInfo, hour: int) -> Period | None:
    """The week whose digest is due at `now` in `zone`: last week, once this Monday's `hour` passed."""
    local = now.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    if local < datetime.combine(monday, time(hour), tzinfo=zone):
        return None  # Monday before 08:00: last week's was sent a week ago; this one not yet
    return Period.containing(PeriodKind.WEEK, monday - timedelta(days=7))


def due_digests(stores: StoreDirectory, now: datetime, hour: int) -> list[Due]:
    out: list[Due] = []
    regions: dict[tuple[str, str], ZoneInfo] = {}
    for store in stores.stores.values():
        week = due_week(now, store.zone, hour)
        if store.digest_recipients and week is not None:
            out.append(
                Due(
                    store.tenant_id,
                    store.store_id,
                    store.name or store.store_id,
                    list(store.digest_recipients),
                    week,
                    store_id=store.store_id,
                )
            )
        if store.region is not None:
            regions.setdefault((store.tenant_id, store.region), store.zone)  # the region's first store's zone
    for (tenant, name), zone in regions.items():
        region = stores.region(name)
        week = due_week(now, zone, hour)
        if region is not None and region.digest_recipients and week is not None:
            out.append(
                Due(
                    tenant,
                    f"region:{name}",
                    f"Region {region.name or name}",
                    list(region.digest_recipients),
                    week,
                    region=name,
                )
            )
    return out


class DigestScheduler(Background):
    name = "digest-scheduler"

    def __init__(
        self,
        settings: ReportingSettings,
        db: Database,
        stores: StoreDirectory,
        mailer: Mailer,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self.s, self.db, self.stores, self.mailer, self.clock = settings, db, stores, mailer, clock
        self.sent = 0

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("digest tick failed; trying again at the next one")
            if await self.sleep(self.s.digest_poll_s):
                return

    async def tick(self) -> int:
        """Send every digest due now that nobody has sent; returns how many this call sent."""
        now = self.clock()
        sent = 0
        for due in due_digests(self.stores, now, self.s.digest_hour):
            if await self._claim(due, now):
                sent += await self._send(due, now)
        self.sent += sent
        return sent

    async def _claim(self, due: Due, now: datetime) -> bool:
        async with self.db.session() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        """INSERT INTO reporting.digests AS g
                            (tenant_id, scope, week, status, attempts, claimed_at, recipients)
                        VALUES (:t, :s, :w, 'claimed', 1, :now, 0)
                        ON CONFLICT (tenant_id, scope, week) DO UPDATE
                        SET status = 'claimed', attempts = g.attempts + 1, claimed_at = :now
                        WHERE g.attempts < :max
                          AND (g.status = 'failed' OR (g.status = 'claimed' AND g.claimed_at < :stale))
                        RETURNING g.attempts"""
                    ),
                    {
                        "t": due.tenant_id,
                        "s": due.scope,
                        "w": due.week.label,
                        "now": now,
                        "max": MAX_ATTEMPTS,
                        "stale": now - STALE_CLAIM,
                    },
                )
            ).first()
        return row is not None

    async def _send(self, due: Due, now: datetime) -> int:
        scope = Scope(due.tenant_id, store_id=due.store_id, region=due.region)
        try:
            async with custom_plan_session(self.db) as session:
                digest = await build_digest(
                    session, scope, due.title, due.week, now, self.s.min_answers, self.s.dashboard_url
                )
            msg = digest_message(
                self.s.mail_from,
                due.recipients,
                f"{due.title}: NPS week {due.week.label}",
                render_text(digest),
                render_html(digest),
                f"digest.{due.tenant_id}.{due.scope}.{due.week.label}".replace(":", "-").replace(" ", "-"),
            )
            await self.mailer.send(due.recipients, msg)
        except Exception as exc:
            log.warning("digest %s/%s %s not sent: %s", due.tenant_id, due.scope, due.week.label, type(exc).__name__)
            await self._mark(due, "failed", now, f"{type(exc).__name__}: {exc}"[:2000])
            return 0
        await self._mark(due, "sent", now, None, len(due.recipients))
        log.info(
            "digest %s/%s %s sent to %d recipients (%s)",
            due.tenant_id,
            due.scope,
            due.week.label,
            len(due.recipients),
            ",".join(filter(None, map(pii_hash, due.recipients))),
        )
        return 1

    async def _mark(self, due: Due, status: str, now: datetime, error: str | None, recipients: int = 0) -> None:
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE reporting.digests SET status = :st, sent_at = :sent_at, "
                    "error = :err, recipients = :n WHERE tenant_id = :t AND scope = :s AND week = :w"
                ),
                {
                    "st": status,
                    "sent_at": now if status == "sent" else None,
                    "err": error,
                    "n": recipients,
                    "t": due.tenant_id,
                    "s": due.scope,
                    "w": due.week.label,
                },
            )
