"""Business hours in a store's time zone, without weekends (days not listed) and public holidays.

Holidays come from the `holidays` library (country and optional subdivision of the store, from
the store directory). All inputs and outputs are aware datetimes; results are in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from npsloop_platform.stores import Store

from .policy import WEEKDAYS, Sla, _clock


@lru_cache(maxsize=256)
def _holidays(country: str | None, subdivision: str | None, year: int) -> frozenset[date]:
    if not country:
        return frozenset()
    try:
        return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())
    except NotImplementedError:  # a country the library does not know: no holidays, never a crash
        return frozenset()


class Calendar:
    """One store's working time: which local days count, and which hours of them."""

    def __init__(self, sla: Sla, store: Store) -> None:
        self.zone = ZoneInfo(store.time_zone)
        self.country, self.subdivision = store.country, store.subdivision
        self.days = {WEEKDAYS.index(d) for d in sla.business_days}
        self.start, self.end = _clock(sla.day_start), _clock(sla.day_end)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in _holidays(self.country, self.subdivision, day.year)

    def _window(self, day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, self.start, self.zone)
        end = (
            datetime.combine(day + timedelta(days=1), time(0), self.zone)
            if self.end == time.max
            else datetime.combine(day, self.end, self.zone)
        )
        return start.astimezone(UTC), end.astimezone(UTC)

    def add(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` business hours after `start` (UTC)."""
        left = timedelta(hours=hours)
        day = start.astimezone(self.zone).date()
        for _ in range(3700):  # ten years of days: a calendar with no business day ends here
            if self.is_business_day(day):
                lo, hi = self._window(day)
                lo = max(lo, start)
                if hi > lo:
                    if hi - lo >= left:
                        return lo + left
                    left -= hi - lo
            day += timedelta(days=1)
        raise ValueError("no business hours within ten years: check business_days and holidays")

    def between(self, start: datetime, end: datetime) -> float:
        """Business hours from `start` to `end` (0 when end <= start)."""
        if end <= start:
            return 0.0
        total = timedelta()
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        while day <= last:
            if self.is_business_day(day):
                lo, hi = self._window(day)
                lo, hi = max(lo, start), min(hi, end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds() / 3600
