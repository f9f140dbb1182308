"""`npsloop demo` (`make demo`): a realistic quarter for four stores, then the embedded default
with the dashboard opened.

The quarter: 13 weeks up to today, busier on Saturdays and in the weeks before Christmas (and a
little worse when busy: queues), Hamburg slipping over the last five weeks, detractor cases
contacted, resolved and closed with root causes, one detractor recovered (she came back with a
10), passives asked, and comments in English and German. The history is folded straight into the
reporting read model (the in-memory bus keeps none); whatever you post afterwards goes through
the whole loop as usual.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

STORES_TOML = """# The demo's store directory (NPSLOOP_STORES_FILE): time zones, regions, digest recipients.
[defaults]
time_zone = "Europe/Berlin"
country = "DE"

[regions.north]
name = "North"
digest_recipients = ["north@demo.example"]

[regions.south]
name = "South"
digest_recipients = ["south@demo.example"]

[stores."acme/berlin-1"]
name = "Berlin Mitte"
region = "north"
digest_recipients = ["berlin-1@demo.example"]

[stores."acme/hamburg-2"]
name = "Hamburg Altona"
region = "north"
digest_recipients = ["hamburg-2@demo.example"]

[stores."acme/munich-3"]
name = "Munich Schwabing"
region = "south"
digest_recipients = ["munich-3@demo.example"]

[stores."acme/vienna-1"]
name = "Wien Neubau"
region = "south"
time_zone = "Europe/Vienna"
country = "AT"
digest_recipients = ["vienna-1@demo.example"]
"""

# store: (base NPS tilt, weekly answers, language mix of German)
STORES = {
    "berlin-1": (0.15, 55, 0.3),
    "hamburg-2": (0.10, 45, 0.5),
    "munich-3": (0.0, 40, 0.6),
    "vienna-1": (0.05, 30, 0.9),
}
CHANNELS = [("pos", 0.6), ("web", 0.25), ("app", 0.15)]
GOOD = {
    "en": [
        ("Friendly staff and a quick checkout", "staff"),
        ("Great selection, found everything", "availability"),
        ("Clean store, lovely atmosphere", "cleanliness"),
        ("The cashier went out of her way to help", "staff"),
    ],
    "de": [
        ("Sehr freundliches Personal", "staff"),
        ("Tolle Auswahl, alles gefunden", "availability"),
        ("Sauberer Laden, schnelle Kasse", "checkout_payment"),
        ("Super Beratung an der Frischetheke", "staff"),
    ],
}
BAD = {
    "en": [
        ("Waited 20 minutes at the till", "waiting_time"),
        ("Out of stock again", "availability"),
        ("Staff were rude when I asked for help", "staff"),
        ("Prices went up a lot", "price"),
    ],
    "de": [
        ("Lange Schlange an der Kasse", "waiting_time"),
        ("Schon wieder ausverkauft", "availability"),
        ("Unfreundliche Bedienung", "staff"),
        ("Viel zu teuer geworden", "price"),
    ],
}
ROOT_CAUSES = {
    "waiting_time": "understaffed till",
    "availability": "stock-out",
    "staff": "staff behaviour",
    "price": "pricing",
}


def _score(rng: random.Random, tilt: float) -> int:
    """A score drawn so that NPS is about 100 * tilt + 20."""
    u = rng.random() - tilt
    if u < 0.38:
        return rng.choice([9, 10, 10])
    if u < 0.70:
        return rng.choice([7, 8])
    return rng.choice([0, 2, 3, 4, 5, 6, 6])


def quarter(now: datetime, seed: int = 7) -> list[Any]:
    from npsloop_reporting.samples import classified, status

    rng = random.Random(seed)
    events: list[Any] = []
    zone = ZoneInfo("Europe/Berlin")
    today = now.astimezone(zone).date()
    first_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=12)
    recovered_done = False
    for store, (tilt, weekly, german) in STORES.items():
        for week in range(13):
            monday = first_monday + timedelta(weeks=week)
            busy = 1 + 0.35 * math.sin(week / 13 * math.pi) + (0.3 if week >= 10 else 0)  # season, December rush
            t = tilt - 0.08 * (busy - 1)
            if store == "hamburg-2" and week >= 8:
                t -= 0.09 * (week - 7)  # the store that slips
            for day in range(7):
                date = monday + timedelta(days=day)
                if date > today:
                    break
                share = (1.6 if day == 5 else 0.4 if day == 6 else 1.0) / 6.0
                for _ in range(max(0, round(rng.gauss(weekly * busy * share, 2)))):
                    at = datetime.combine(date, time(rng.randint(8, 19), rng.randint(0, 59)), tzinfo=zone)
                    if at > now:
                        continue
                    score = _score(rng, t)
                    lang = "de" if rng.random() < german else "en"
                    channel = rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
                    comment, theme = (None, None)
                    if rng.random() < 0.55:
                        comment, theme = rng.choice(GOOD[lang] if score >= 7 else BAD[lang])
                    themes = (
                        [(theme, "positive" if score >= 7 else "negative", 0.6 if score >= 7 else -0.6)]
                        if theme
                        else []
                    )
                    customer = f"{store}-c{rng.randint(1, 4000)}"
                    fb = classified(
                        at,
                        score,
                        store=store,
                        channel=channel,
                        comment=comment,
                        customer=customer,
                        themes=themes,
                        language=lang if comment else None,
                    )
                    events.append(fb)
                    if score <= 6:
                        events += _case(rng, fb, at, now, store, week, theme)
                        if not recovered_done and store == "berlin-1" and week == 6 and comment:
                            recovered_done = True
                            back = at + timedelta(days=9)
                            events.append(
                                classified(
                                    back,
                                    10,
                                    store=store,
                                    channel="pos",
                                    customer=customer,
                                    comment="You called me back and fixed it. Thank you!",
                                    themes=[("staff", "positive", 0.8)],
                                    language="en",
                                )
                            )
                    elif score <= 8 and rng.random() < 0.6:
                        events.append(status(fb, at + timedelta(minutes=2), "nurture_email"))
    return events


def _case(
    rng: random.Random, fb: Any, at: datetime, now: datetime, store: str, week: int, theme: str | None
) -> list[Any]:
    from npsloop_reporting.samples import closed, opened, updated

    case = opened(
        fb,
        at + timedelta(minutes=1),
        sla_due_at=at + timedelta(hours=24),
        priority=100 - fb.payload.feedback.score * 10,
    )
    out: list[Any] = [case]
    slow = store == "hamburg-2" and week >= 8
    hours = rng.lognormvariate(math.log(30 if slow else 6), 0.8)
    contact = at + timedelta(hours=hours)
    if contact > now:
        return out
    out.append(updated(case, contact, "contacted", "contacted"))
    done = contact + timedelta(hours=rng.uniform(1, 72))
    if done > now or rng.random() < 0.1:
        return out
    cause = ROOT_CAUSES.get(theme or "", rng.choice(list(ROOT_CAUSES.values())))
    outcome = "recovered" if rng.random() < 0.35 else "resolved"
    out.append(updated(case, done, "resolved", "resolved", root_cause=cause, outcome=outcome))
    if rng.random() < 0.8:
        out.append(closed(case, done + timedelta(hours=1), root_cause=cause, outcome=outcome))
    return out


async def seed(url: str, data: Path, now: datetime | None = None) -> int:
    """Fold the quarter into the reporting read model at `url`, once (a marker file in `data`)."""
    from npsloop_platform.db import Database, migrate
    from npsloop_platform.stores import load_stores
    from npsloop_reporting.consumer import MIGRATIONS
    from npsloop_reporting.models import SCHEMA
    from npsloop_reporting.samples import fold_into

    marker = data / "demo-seeded"
    if marker.exists():
        return 0
    events = quarter(now or datetime.now(UTC))
    await migrate(url, MIGRATIONS, SCHEMA)
    db = Database(url, pool_size=2)
    stores = load_stores(data / "stores.toml")
    try:
        for i in range(0, len(events), 500):
            await fold_into(db, stores, events[i : i + 500])
    finally:
        await db.stop()
    marker.write_text(f"{len(events)} events\n")
    return len(events)


def write_stores(data: Path) -> Path:
    path = data / "stores.toml"
    if not path.exists():
        path.write_text(STORES_TOML)
    return path
