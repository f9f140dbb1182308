"""Business hours across a weekend and a public holiday, in two time zones (holidays: `holidays`)."""

from __future__ import annotations

from datetime import UTC, datetime

from npsloop_actions.business_hours import Calendar
from npsloop_actions.policy import Sla
from npsloop_platform.stores import Store

BERLIN = Store(tenant_id="acme", store_id="berlin-1", time_zone="Europe/Berlin", country="DE", subdivision="BE")
NEW_YORK = Store(tenant_id="acme", store_id="nyc-1", time_zone="America/New_York", country="US", subdivision="NY")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_48_business_hours_skip_the_weekend_and_christmas_in_berlin() -> None:
    cal = Calendar(Sla(), BERLIN)
    # Thu 2026-12-24 10:00 Berlin (09:00 UTC). Fri 25th and Sat 26th are holidays (and Sat/Sun a
    # weekend): Thu 14h left, then Mon 28th 24h, then Tue 29th 10h -> Tue 10:00 Berlin = 09:00 UTC.
    start = utc(2026, 12, 24, 9)
    due = cal.add(start, 48)
    assert due == utc(2026, 12, 29, 9)
    assert cal.between(start, due) == 48
    assert cal.between(start, utc(2026, 12, 27, 23)) == 14  # to Mon 00:00 Berlin: holidays and weekend count nothing
    assert not cal.is_business_day(datetime(2026, 12, 25).date())


def test_the_same_hours_in_new_york_follow_its_zone_and_its_holidays() -> None:
    cal = Calendar(Sla(), NEW_YORK)
    # Wed 2026-11-25 12:00 New York (17:00 UTC); Thu 26th is Thanksgiving, Sat/Sun the weekend:
    # Wed 12h, Fri 24h, Mon 12h -> Mon 2026-11-30 12:00 New York = 17:00 UTC.
    start = utc(2026, 11, 25, 17)
    assert cal.add(start, 48) == utc(2026, 11, 30, 17)
    # Berlin works on Thanksgiving: the same start is due Fri 27th 17:00 UTC... minus the weekend
    assert Calendar(Sla(), BERLIN).add(start, 48) == utc(2026, 11, 27, 17)


def test_a_working_day_window_and_a_start_on_a_weekend() -> None:
    sla = Sla(day_start="09:00", day_end="17:00")
    cal = Calendar(sla, BERLIN)
    # Sat 2026-11-28: nothing counts until Mon 09:00 Berlin (08:00 UTC); 12 h = Mon 8 h + Tue 4 h.
    assert cal.add(utc(2026, 11, 28, 12), 12) == utc(2026, 12, 1, 12)
    # across the change to winter time (Sun 2026-10-25 in Berlin): Fri 16:00 + 2h -> Mon 10:00 local
    assert cal.add(utc(2026, 10, 23, 14), 2) == utc(2026, 10, 26, 9)
