"""In-process rate limiting: fixed windows per client and bucket, clock injected."""

from __future__ import annotations

import pytest

from partyquiz_web.http_errors import RateLimitedError
from partyquiz_web.rate_limiting import InProcessCounter, Limit, RateLimiter

LIMIT = Limit("login", max_requests=3, window_seconds=60)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_requests_over_the_limit_are_refused_until_the_window_ends() -> None:
    clock = Clock(1_800_000_000.0)  # the start of a 60 s window
    limiter = RateLimiter(InProcessCounter(), clock)
    for _ in range(3):
        await limiter.check(LIMIT, "10.0.0.1")
    clock.now += 15
    with pytest.raises(RateLimitedError) as info:
        await limiter.check(LIMIT, "10.0.0.1")
    assert info.value.retry_after == 45
    clock.now += 45
    await limiter.check(LIMIT, "10.0.0.1")


async def test_clients_and_buckets_are_counted_apart() -> None:
    limiter = RateLimiter(InProcessCounter(), Clock(1_800_000_000.0))
    for _ in range(3):
        await limiter.check(LIMIT, "10.0.0.1")
    await limiter.check(LIMIT, "10.0.0.2")
    await limiter.check(Limit("code", 3, 60), "10.0.0.1")
