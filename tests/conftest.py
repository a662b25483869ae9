"""Session-wide fixtures: real PostgreSQL and Redis, started once per test session.

``postgres`` / ``redis`` are the servers; ``fresh_postgres_url`` gives each test its own empty
database and ``fresh_redis_url`` an emptied Redis, so no test sees another's data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.servers import Postgres, Redis, flush_redis, run_postgres, run_redis

# A shared 2-core machine makes wall-clock deadlines per example meaningless; the
# properties themselves are what the tests assert.
settings.register_profile("partyquiz", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("partyquiz")

_TIER_MARKERS = frozenset({"integration", "e2e", "images", "realnode", "browser"})
_TESTS_ROOT = Path(__file__).parent


# Cheap tiers first for fast feedback; the browser tier last, because Playwright's sync API
# keeps an event loop running in the main thread until the session ends, and no asyncio test
# may run after it has started.
_TIER_ORDER = ("unit", "integration", "e2e", "images", "realnode", "browser")


def _tier(item: pytest.Item) -> str:
    try:
        return item.path.relative_to(_TESTS_ROOT).parts[0]
    except ValueError:
        return ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by the tier folder it lives in, and run the tiers in a fixed order."""
    for item in items:
        tier = _tier(item)
        if tier in _TIER_MARKERS:
            item.add_marker(tier)
    rank = {tier: i for i, tier in enumerate(_TIER_ORDER)}
    items.sort(key=lambda item: rank.get(_tier(item), 0))  # stable: file order kept within


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
