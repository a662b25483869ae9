"""Engine and session factory for one app, built from its settings.

Owns connection options per backend (SQLite pragmas, PostgreSQL connect timeout). Nothing is
created at import; the app factory builds one ``Database`` and disposes it on shutdown.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

CONNECT_TIMEOUT_SECONDS = 10


def build_engine(url: str, *, connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> AsyncEngine:
    """Create an async engine with the options this service needs on each backend."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,
        connect_args={"timeout": connect_timeout, "command_timeout": 30},
    )


class Database:
    """The engine and session factory of one app instance."""

    def __init__(self, url: str) -> None:
        self.engine = build_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> AsyncSession:
        return self.sessions()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
