"""NPS figures in SQL against hand-computed cases, on real PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest

from npsloop_platform.db import Database
from npsloop_platform.stores import StoreDirectory
from npsloop_reporting.figures import Scope, nps_breakdown, nps_series, score_distribution, themes
from npsloop_reporting.periods import Period, PeriodError, PeriodKind, parse_period, parse_week
from npsloop_reporting.samples import classified, fold_into

W47 = datetime(2026, 11, 18, 10, tzinfo=UTC)  # a Wednesday of 2026-W47 (16..22 November)
W46 = W47 - timedelta(days=7)
W45 = W47 - timedelta(days=14)


def answers(at: datetime, promoters: int, passives: int, detractors: int, **kw: object) -> list:
    scores = [10] * promoters + [8] * passives + [3] * detractors
    return [classified(at + timedelta(minutes=i), s, **kw) for i, s in enumerate(scores)]  # type: ignore[arg-type]


def week(label: str) -> Period:
    return Period.containing(PeriodKind.WEEK, parse_week(label))


async def seed(db: Database, stores: StoreDirectory) -> None:
    events = [
        # W47 berlin-1: 50 P (10 of them on the web), 30 passives, 20 D (10 naming the queue)
        *answers(W47, 40, 30, 10),
        *answers(W47 + timedelta(hours=5), 10, 0, 0, channel="web"),
        *answers(
            W47 + timedelta(hours=6), 0, 0, 10, comment="The queue was endless", themes=[("queue", "negative", -0.6)]
        ),
        # W46 berlin-1: 30 P, 30 passives, 40 D
        *answers(W46, 30, 30, 40),
        # W45 hamburg-2: 10 answers only
        *answers(W45, 5, 3, 2, store="hamburg-2"),
    ]
    assert await fold_into(db, stores, events) == 210


async def test_week_nps_margin_and_a_significant_change(db: Database, stores: StoreDirectory) -> None:
    await seed(db, stores)
    async with db.session() as s:
        pts = await nps_series(s, Scope("acme", store_id="berlin-1"), week("2026-W47"), count=3)
    w45, w46, w47 = pts
    assert [p.period for p in pts] == ["2026-W45", "2026-W46", "2026-W47"]
    # W47: n=100, p=.5, d=.2: NPS 30, SE = 100*sqrt((.7 - .09)/100) = 7.8102, margin 15.308
    assert (w47.n, w47.promoters, w47.passives, w47.detractors) == (100, 50, 30, 20)
    assert w47.nps == pytest.approx(30.0)
    assert w47.se == pytest.approx(100 * math.sqrt(0.0061))
    assert w47.margin == pytest.approx(15.308, abs=0.001)
    assert not w47.too_few_answers
    # W46: n=100, p=.3, d=.4: NPS -10, SE = 100*sqrt((.7 - .01)/100) = 8.3066
    assert w46.nps == pytest.approx(-10.0) and w46.margin == pytest.approx(1.96 * 8.30662, abs=0.001)
    # z = 40 / sqrt(7.8102^2 + 8.3066^2) = 3.508: significant
    assert w47.change == pytest.approx(40.0)
    assert w47.z == pytest.approx(3.508, abs=0.001) and w47.significant is True
    # berlin-1 had no answers in W45: an empty period, no NPS, no change tested
    assert (w45.n, w45.nps, w45.margin, w45.too_few_answers) == (0, None, None, True)
    assert w46.change is None and w46.significant is None


async def test_too_few_answers_has_no_margin_and_no_test(db: Database, stores: StoreDirectory) -> None:
    await seed(db, stores)
    async with db.session() as s:
        (w45,) = await nps_series(s, Scope("acme", store_id="hamburg-2"), week("2026-W45"))
        (w46,) = await nps_series(s, Scope("acme", store_id="hamburg-2"), week("2026-W46"))
    assert (w45.n, w45.nps, w45.too_few_answers, w45.margin) == (10, 30.0, True, None)
    assert w46.n == 0 and w46.change is None and w46.significant is None


async def test_a_small_change_is_not_significant(db: Database, stores: StoreDirectory) -> None:
    await fold_into(db, stores, [*answers(W46, 40, 30, 30), *answers(W47, 45, 25, 30)])
    async with db.session() as s:
        (w47,) = await nps_series(s, Scope("acme"), week("2026-W47"))
    # NPS 10 -> 15; SE 100*sqrt((.7-.01)/100)=8.3066 and 100*sqrt((.75-.0225)/100)=8.5294; z = 5/11.906 = 0.42
    assert w47.change == pytest.approx(5.0)
    assert w47.z == pytest.approx(5 / math.hypot(8.30662, 8.52936), abs=0.001)
    assert w47.significant is False


async def test_month_quarter_year_and_day(db: Database, stores: StoreDirectory) -> None:
    await seed(db, stores)
    tenant = Scope("acme")
    async with db.session() as s:
        (month,) = await nps_series(s, tenant, parse_period("month", "2026-11", date.today()))
        (quarter,) = await nps_series(s, tenant, parse_period("quarter", "2026-Q4", date.today()))
        (year,) = await nps_series(s, tenant, parse_period("year", "2026", date.today()))
        (day,) = await nps_series(s, tenant, parse_period("day", "2026-11-18", date.today()))
    # November: W45 (hamburg, 10), W46 and W47 (berlin, 200): 85 P, 63 passives, 62 D of 210
    assert (month.n, month.promoters, month.detractors) == (210, 85, 62)
    p, d = 85 / 210, 62 / 210
    assert month.nps == pytest.approx(100 * (p - d))
    assert month.margin == pytest.approx(1.96 * 100 * math.sqrt((p + d - (p - d) ** 2) / 210))
    assert quarter.n == year.n == 210 and quarter.period == "2026-Q4" and year.period == "2026"
    assert day.period == "2026-11-18" and day.n == 100  # every W47 answer fell on that Wednesday


async def test_store_region_channel_and_theme(db: Database, stores: StoreDirectory) -> None:
    await seed(db, stores)
    w47 = week("2026-W47")
    async with db.session() as s:
        (web,) = await nps_series(s, Scope("acme", channel="web"), w47)
        (queue,) = await nps_series(s, Scope("acme", theme="queue"), w47)
        (north,) = await nps_series(s, Scope("acme", region="north"), w47)
        (asia,) = await nps_series(s, Scope("acme", region="asia"), w47)
        (scoped,) = await nps_series(s, Scope("acme", key_stores=frozenset({"hamburg-2"})), w47)
        (other,) = await nps_series(s, Scope("globex"), w47)
        by_channel = await nps_breakdown(s, Scope("acme"), w47, "channel")
        by_theme = await nps_breakdown(s, Scope("acme"), w47, "theme")
        by_region = await nps_breakdown(s, Scope("acme"), parse_period("month", "2026-11", date.today()), "region")
        dist = await score_distribution(s, Scope("acme"), w47)
        th = await themes(s, Scope("acme"), w47)
    assert (web.n, web.nps) == (10, 100.0) and web.too_few_answers
    assert (queue.n, queue.nps) == (10, -100.0)
    assert north.n == 100 and asia.n == 0 and scoped.n == 0 and other.n == 0
    assert [(g["channel"], g["n"]) for g in by_channel] == [("pos", 90), ("web", 10)]
    assert by_channel[0]["nps"] == pytest.approx(round(100 * (40 - 20) / 90, 2)) and by_channel[0]["margin"] is not None
    assert by_channel[1]["margin"] is None and by_channel[1]["too_few_answers"]
    assert [(g["theme"], g["n"], g["detractors"]) for g in by_theme] == [("queue", 10, 10)]
    assert [(g["region"], g["n"]) for g in by_region] == [("north", 210)]
    assert dict(dist) == {0: 0, 1: 0, 2: 0, 3: 20, 4: 0, 5: 0, 6: 0, 7: 0, 8: 30, 9: 0, 10: 50}
    assert th == [
        {
            "theme": "queue",
            "mentions": 10,
            "previous": 0,
            "change": 10,
            "positive": 0,
            "neutral": 0,
            "negative": 10,
            "compound": -0.6,
            "detractors": 10,
        }
    ]


async def test_weeks_are_the_stores_own(db: Database, stores: StoreDirectory) -> None:
    sunday_night_utc = datetime(2026, 11, 22, 20, tzinfo=UTC)  # Monday 05:00 in Tokyo, Sunday 21:00 in Berlin
    await fold_into(
        db,
        stores,
        [classified(sunday_night_utc, 10, store="tokyo-1"), classified(sunday_night_utc, 0, store="berlin-1")],
    )
    async with db.session() as s:
        (tokyo47,) = await nps_series(s, Scope("acme", store_id="tokyo-1"), week("2026-W47"))
        (tokyo48,) = await nps_series(s, Scope("acme", store_id="tokyo-1"), week("2026-W48"))
        (berlin47,) = await nps_series(s, Scope("acme", store_id="berlin-1"), week("2026-W47"))
    assert (tokyo47.n, tokyo48.n, berlin47.n) == (0, 1, 1)


def test_periods_parse_and_refuse_what_does_not_exist() -> None:
    today = date(2026, 11, 23)
    assert parse_week("2026-W53") == date(2026, 12, 28)  # 2026 has 53 ISO weeks
    with pytest.raises(PeriodError, match="2026 has 53 ISO weeks"):
        parse_week("2026-W54")
    with pytest.raises(PeriodError, match="2025 has 52 ISO weeks"):
        parse_week("2025-W53")
    with pytest.raises(PeriodError, match="unknown period"):
        parse_period("fortnight", None, today)
    with pytest.raises(PeriodError, match="months are 01 to 12"):
        parse_period("month", "2026-13", today)
    with pytest.raises(PeriodError, match="quarters are Q1 to Q4"):
        parse_period("quarter", "2026-Q5", today)
    with pytest.raises(PeriodError, match="not a date"):
        parse_period("day", "2026-02-30", today)
    assert parse_period("week", None, today).label == "2026-W48"
    assert parse_period("quarter", "2026-11-23", today).label == "2026-Q4"
    assert week("2027-W01").previous.label == "2026-W53"
    assert Period.containing(PeriodKind.MONTH, date(2026, 1, 31)).previous.label == "2025-12"
