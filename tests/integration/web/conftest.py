"""Fixtures for the web service against real databases: each test gets a migrated, empty one.

``database_url`` is parametrised over SQLite (the embedded default) and PostgreSQL 15;
``web`` builds an app on it with an injected clock and serves it through httpx's ASGI
transport. Helpers here speak the public API the way a host's browser would.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from partyquiz_web.app import create_app
from partyquiz_web.dependencies import Runtime
from partyquiz_web.migrating import upgrade_to_head
from partyquiz_web.settings import WebSettings, load_settings

SECRET = "k3Jx9-p2Qw8zR4tY7uV1bN5mA6sD0fG3hL2jK9pQ"
START = 1_800_000_000.0
PASSWORD = "correct horse battery"


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sample_quiz(title: str = "Sample") -> dict[str, Any]:
    return {
        "format_version": 1,
        "title": title,
        "settings": {"get_ready_seconds": 0},
        "description": "One of each kind",
        "questions": [
            {
                "kind": "single",
                "text": "Capital of France?",
                "choices": [{"text": "Paris"}, {"text": "Lyon"}, {"text": "Nice"}],
                "correct": [0],
                "time_limit_seconds": 20,
                "read_seconds": 0,
                "points": "standard",
            },
            {
                "kind": "multiple",
                "text": "Prime numbers?",
                "choices": [{"text": "2"}, {"text": "4"}, {"text": "5"}],
                "correct": [0, 2],
                "time_limit_seconds": 30,
                "read_seconds": 0,
                "points": "double",
            },
            {
                "kind": "true_false",
                "text": "The sun is a star.",
                "choices": [{"text": "True"}, {"text": "False"}],
                "correct": [0],
                "time_limit_seconds": 10,
                "read_seconds": 0,
                "points": "standard",
            },
            {
                "kind": "poll",
                "text": "Favourite season?",
                "choices": [{"text": "Summer"}, {"text": "Winter"}],
                "correct": [],
                "time_limit_seconds": 15,
                "read_seconds": 0,
                "points": "none",
            },
        ],
    }


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'partyquiz.db'}"
    else:
        url = str(request.getfixturevalue("fresh_postgres_url"))
    await upgrade_to_head(url)
    return url


def make_settings(database_url: str, **overrides: object) -> WebSettings:
    return load_settings({}, jwt_secret=SECRET, database_url=database_url, **overrides)


@dataclass
class Web:
    """One app instance and a client talking to it from ``client_ip``."""

    app: FastAPI
    clock: Clock
    client: httpx.AsyncClient
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def client_from(self, ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.clients.append(client)
        return client

    def service_headers(self) -> dict[str, str]:
        token = self.runtime.tokens.issue_service_token(self.clock())
        return {"Authorization": f"Bearer {token}"}

    async def register_and_login(
        self, email: str = "host@example.org", password: str = PASSWORD
    ) -> dict[str, str]:
        response = await self.client.post(
            "/api/auth/register", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        response = await self.client.post(
            "/api/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


MakeWeb = Callable[..., Awaitable[Web]]


@pytest.fixture
async def make_web() -> AsyncIterator[MakeWeb]:
    """Build app instances (several may share one database, like replicas)."""
    built: list[Web] = []

    async def build(
        database_url: str, *, rng: random.Random | None = None, **overrides: object
    ) -> Web:
        clock = Clock()
        app = create_app(make_settings(database_url, **overrides), clock=clock, rng=rng)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        web = Web(app=app, clock=clock, client=client)
        built.append(web)
        return web

    yield build
    for web in built:
        for client in [web.client, *web.clients]:
            await client.aclose()
        await web.runtime.close()


@pytest.fixture
async def web(make_web: MakeWeb, database_url: str) -> Web:
    return await make_web(database_url)
