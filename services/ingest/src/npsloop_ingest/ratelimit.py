"""Rate limits per API key: a token bucket per key prefix, per replica.

Each replica holds its own buckets, so with N replicas behind a load balancer a key may post up to
N times the limit; the README says so. The clock is injectable (tests never sleep).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Verdict:
    allowed: bool
    limit: int  # requests per window (the burst size)
    remaining: int
    reset_s: int  # seconds until the bucket is full again
    retry_after_s: int  # when refused: seconds until one request is allowed

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


class RateLimiter:
    def __init__(self, per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_s, self.burst, self.clock = per_s, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def check(self, key: str, cost: int = 1) -> Verdict:
        """Take `cost` requests' worth (a batch costs one per item) if the bucket holds them. A cost
        above the burst counts as the burst, so that a full batch can always pass eventually."""
        cost = min(cost, self.burst)
        now = self.clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_s)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        if len(self._buckets) > 100_000:
            self._buckets.clear()
        self._buckets[key] = (tokens, now)
        reset = math.ceil((self.burst - tokens) / self.per_s)
        retry = 0 if allowed else max(1, math.ceil((min(cost, self.burst) - tokens) / self.per_s))
        return Verdict(allowed, self.burst, int(tokens), reset, retry)
