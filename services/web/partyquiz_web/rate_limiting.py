"""Fixed-window rate limits per client IP and bucket (login, code lookup).

Owns the counting: in Redis when configured, so a limit holds across replicas, otherwise in
process. The clock is injected. A Redis outage fails open (requests pass, a warning is
logged): a rate limit must not turn a cache problem into a login outage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from partyquiz_web.http_errors import RateLimitedError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    bucket: str
    max_requests: int
    window_seconds: int


class Counter(Protocol):
    async def hit(self, key: str, window_start: int, window_seconds: int) -> int:
        """Count one request in the window; return the count including it."""
        ...


class InProcessCounter:
    """Counts in a dict; only correct for a single replica."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}

    async def hit(self, key: str, window_start: int, window_seconds: int) -> int:
        if len(self._counts) > 10_000:
            # Drop windows that have passed so memory stays bounded under many IPs.
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= window_start}
        count = self._counts.get((key, window_start), 0) + 1
        self._counts[(key, window_start)] = count
        return count


class RedisCounter:
    """Counts with INCR + EXPIRE, shared by every replica using the same Redis."""

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def hit(self, key: str, window_start: int, window_seconds: int) -> int:
        redis_key = f"partyquiz:web:ratelimit:{key}:{window_start}"
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, window_seconds + 1)
            count, _ = await pipe.execute()
        return int(count)


class RateLimiter:
    """Enforce ``Limit``s per client; raises ``RateLimitedError`` when one is exceeded."""

    def __init__(self, counter: Counter, clock: Callable[[], float]) -> None:
        self._counter = counter
        self._clock = clock

    async def check(self, limit: Limit, client: str) -> None:
        now = self._clock()
        window_start = int(now // limit.window_seconds) * limit.window_seconds
        try:
            count = await self._counter.hit(
                f"{limit.bucket}:{client}", window_start, limit.window_seconds
            )
        except (RedisError, OSError) as exc:
            log.warning("rate limit not enforced, counter unavailable: %s", exc)
            return
        if count > limit.max_requests:
            retry_after = max(1, int(window_start + limit.window_seconds - now + 0.999))
            raise RateLimitedError(
                f"too many requests; try again in {retry_after} s", retry_after=retry_after
            )
