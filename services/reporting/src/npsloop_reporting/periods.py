"""Reporting periods: a day, an ISO week (Monday to Sunday), a month, a quarter or a year, in the
store's local calendar. Parsing names the exact problem (`2026-W54`: 2026 has 53 ISO weeks)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class PeriodKind(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class PeriodError(ValueError):
    """A period or date the user wrote that does not exist; the message says why."""


def iso_weeks(year: int) -> int:
    """How many ISO weeks `year` has (52 or 53)."""
    return date(year, 12, 28).isocalendar().week


def _add_months(d: date, months: int) -> date:
    m = d.year * 12 + d.month - 1 + months
    return date(m // 12, m % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    start: date  # first day
    end: date  # the day after the last

    @classmethod
    def containing(cls, kind: PeriodKind, day: date) -> Period:
        if kind is PeriodKind.DAY:
            return cls(kind, day, day + timedelta(days=1))
        if kind is PeriodKind.WEEK:
            start = day - timedelta(days=day.weekday())
            return cls(kind, start, start + timedelta(days=7))
        if kind is PeriodKind.MONTH:
            start = day.replace(day=1)
            return cls(kind, start, _add_months(start, 1))
        if kind is PeriodKind.QUARTER:
            start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
            return cls(kind, start, _add_months(start, 3))
        start = date(day.year, 1, 1)
        return cls(kind, start, date(day.year + 1, 1, 1))

    def shift(self, n: int) -> Period:
        """The period `n` steps later (earlier when negative)."""
        if self.kind is PeriodKind.DAY:
            return Period.containing(self.kind, self.start + timedelta(days=n))
        if self.kind is PeriodKind.WEEK:
            return Period.containing(self.kind, self.start + timedelta(days=7 * n))
        months = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[self.kind]
        return Period.containing(self.kind, _add_months(self.start, months * n))

    @property
    def previous(self) -> Period:
        return self.shift(-1)

    @property
    def label(self) -> str:
        s = self.start
        if self.kind is PeriodKind.DAY:
            return s.isoformat()
        if self.kind is PeriodKind.WEEK:
            y, w, _ = s.isocalendar()
            return f"{y}-W{w:02d}"
        if self.kind is PeriodKind.MONTH:
            return f"{s.year}-{s.month:02d}"
        if self.kind is PeriodKind.QUARTER:
            return f"{s.year}-Q{(s.month - 1) // 3 + 1}"
        return str(s.year)


_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-?Q(\d)$")
_YEAR = re.compile(r"^(\d{4})$")


def parse_week(text: str) -> date:
    """`2026-W47` -> its Monday. `2026-W54` is a PeriodError (2026 has 53 ISO weeks)."""
    m = _WEEK.match(text.strip())
    if not m:
        raise PeriodError(f"{text!r} is not an ISO week; write it like 2026-W47")
    year, week = int(m.group(1)), int(m.group(2))
    if not 1 <= year <= 9998:
        raise PeriodError(f"year {year} is out of range")
    weeks = iso_weeks(year)
    if not 1 <= week <= weeks:
        raise PeriodError(f"{text!r} does not exist: {year} has {weeks} ISO weeks (W01 to W{weeks})")
    return date.fromisocalendar(year, week, 1)


def parse_period(kind: str, when: str | None, today: date) -> Period:
    """The period of `kind` containing `when` (a date, or a week/month/quarter/year label)."""
    try:
        k = PeriodKind(kind)
    except ValueError:
        raise PeriodError(f"unknown period {kind!r}; use one of day, week, month, quarter, year") from None
    if when is None or when == "":
        return Period.containing(k, today)
    text = when.strip()
    if _WEEK.match(text):
        return Period.containing(k, parse_week(text))
    if m := _QUARTER.match(text):
        q = int(m.group(2))
        if not 1 <= q <= 4:
            raise PeriodError(f"{text!r} does not exist: quarters are Q1 to Q4")
        return Period.containing(k, date(int(m.group(1)), 3 * q - 2, 1))
    if m := _MONTH.match(text):
        month = int(m.group(2))
        if not 1 <= month <= 12:
            raise PeriodError(f"{text!r} does not exist: months are 01 to 12")
        return Period.containing(k, date(int(m.group(1)), month, 1))
    if m := _YEAR.match(text):
        return Period.containing(k, date(int(m.group(1)), 1, 1))
    try:
        return Period.containing(k, date.fromisoformat(text))
    except ValueError:
        raise PeriodError(f"{text!r} is not a date; write 2026-11-23, 2026-W47, 2026-11, 2026-Q4 or 2026") from None
