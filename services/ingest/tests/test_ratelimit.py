"""The per-key token bucket, with an injected clock."""

from npsloop_ingest.ratelimit import RateLimiter


def test_a_burst_then_the_sustained_rate_then_429_with_headers() -> None:
    now = [0.0]
    limiter = RateLimiter(per_s=2.0, burst=3, clock=lambda: now[0])
    verdicts = [limiter.check("k1") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    refused = verdicts[-1]
    assert refused.headers() == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "2",
        "Retry-After": "1",
    }
    assert limiter.check("k2").allowed  # another key has its own bucket
    now[0] = 0.5  # one token back after 1/per_s seconds
    assert limiter.check("k1").allowed and not limiter.check("k1").allowed
    now[0] = 100.0
    assert limiter.check("k1").remaining == 2  # full again, never above the burst
