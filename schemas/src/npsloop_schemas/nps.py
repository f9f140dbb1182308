"""NPS bands (Reichheld) and the NPS statistic with its 95% margin of error."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator, Field


def _integral(value: object) -> object:
    """JSON Schema's `integer` admits 10.0, so every consumer must too; "7", 7.5, true, NaN never."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("the score must be a number, an integer from 0 to 10")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("the score must be an integer from 0 to 10, without a fraction")
        return int(value)
    return value


Score = Annotated[
    int,
    Field(ge=0, le=10, description="Likelihood to recommend: an integer from 0 to 10."),
    BeforeValidator(_integral),
]

#: Below this many responses an NPS is flagged as too small to trust.
SMALL_SAMPLE = 30


class Band(StrEnum):
    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"


def band_for(score: int) -> Band:
    """9-10 promoter, 7-8 passive, 0-6 detractor. Anything but an int 0..10 is a ValueError."""
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"score must be an integer from 0 to 10, got {score!r}")
    if score >= 9:
        return Band.PROMOTER
    if score >= 7:
        return Band.PASSIVE
    return Band.DETRACTOR


@dataclass(frozen=True)
class NpsSummary:
    n: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    margin_of_error: float | None
    small_sample: bool


def nps_summary(promoters: int, passives: int, detractors: int) -> NpsSummary:
    """NPS = %promoters - %detractors, with SE = 100*sqrt((p + d - (p - d)^2)/n) and MoE = 1.96*SE."""
    n = promoters + passives + detractors
    if n == 0:
        return NpsSummary(0, 0, 0, 0, None, None, True)
    p, d = promoters / n, detractors / n
    se = 100 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)
    return NpsSummary(n, promoters, passives, detractors, 100 * (p - d), 1.96 * se, n < SMALL_SAMPLE)
