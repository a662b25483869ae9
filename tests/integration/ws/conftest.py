"""Fixtures of the game service's tests on a real Redis: a Redis backend and a plain client
beside it (to read what the backend stored and count the commands Redis ran)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from partyquiz_ws.backends import Backend
from partyquiz_ws.redis_backend import redis_backend


@pytest.fixture
async def admin(fresh_redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(fresh_redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def backend(fresh_redis_url: str) -> AsyncIterator[Backend]:
    started = redis_backend(fresh_redis_url)
    yield started
    await started.close()
