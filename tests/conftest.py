"""Session-wide fixtures: real PostgreSQL and Redis, started once per test session.

``postgres`` / ``redis`` are the servers; ``fresh_postgres_url`` gives each test its own empty
database and ``fresh_redis_url`` an emptied Redis, so no test sees another's data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Postgres, Redis, flush_redis, run_postgres, run_redis


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with run_postgres() as server:
        yield server


@pytest.fixture
def fresh_postgres_url(postgres: Postgres) -> str:
    """An asyncpg SQLAlchemy URL of a new, empty database for this test only."""
    return postgres.url(postgres.create_database())


@pytest.fixture(scope="session")
def redis() -> Iterator[Redis]:
    with run_redis() as server:
        yield server


@pytest.fixture
def fresh_redis_url(redis: Redis) -> str:
    """A URL of the session's Redis, emptied for this test."""
    flush_redis(redis.port)
    return redis.url()
