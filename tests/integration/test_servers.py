"""The throwaway servers the suite relies on really start and are isolated per test."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis

pytestmark = pytest.mark.integration


async def test_each_test_gets_an_empty_postgres_database(fresh_postgres_url: str) -> None:
    conn = await asyncpg.connect(fresh_postgres_url.replace("+asyncpg", ""))
    try:
        version = await conn.fetchval("show server_version_num")
        tables = await conn.fetchval(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        )
    finally:
        await conn.close()
    assert int(version) >= 150000
    assert tables == 0


async def test_each_test_gets_an_empty_redis(fresh_redis_url: str) -> None:
    client = aioredis.from_url(fresh_redis_url)
    try:
        assert await client.dbsize() == 0
        await client.set("k", "v")
        info = await client.info("server")
    finally:
        await client.aclose()
    assert str(info["redis_version"]).startswith("7.")
