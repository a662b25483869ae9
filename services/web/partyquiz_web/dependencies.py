"""What a request needs, built once per app (``Runtime``) and handed out as FastAPI dependencies.

Owns the per-app objects (database, Redis client, tokens, metrics, rate limiter, clock,
random source) and the request-scoped ones (session, current host, client IP). Nothing
here is module-level state: everything hangs off ``app.state.runtime``.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from partyquiz_web.database import Database
from partyquiz_web.http_errors import AuthenticationError
from partyquiz_web.metrics import WebMetrics
from partyquiz_web.models import Host
from partyquiz_web.rate_limiting import InProcessCounter, Limit, RateLimiter, RedisCounter
from partyquiz_web.repositories import HostRepository
from partyquiz_web.security import Passwords, Tokens
from partyquiz_web.settings import DEVELOPMENT_WS_URL, WebSettings


@dataclass
class Runtime:
    settings: WebSettings
    database: Database
    redis: Redis | None
    tokens: Tokens
    passwords: Passwords
    metrics: WebMetrics
    limiter: RateLimiter
    login_limit: Limit
    lookup_limit: Limit
    clock: Callable[[], float]
    rng: random.Random

    @classmethod
    def build(
        cls, settings: WebSettings, *, clock: Callable[[], float], rng: random.Random
    ) -> Runtime:
        redis = (
            Redis.from_url(
                settings.redis_url,
                socket_timeout=settings.dependency_timeout_seconds,
                socket_connect_timeout=settings.dependency_timeout_seconds,
            )
            if settings.redis_url
            else None
        )
        counter = RedisCounter(redis) if redis is not None else InProcessCounter()
        window = settings.rate_limit_window_seconds
        return cls(
            settings=settings,
            database=Database(settings.database_url),
            redis=redis,
            tokens=Tokens(settings.secret, session_ttl_seconds=settings.access_token_ttl_seconds),
            passwords=Passwords(),
            metrics=WebMetrics(),
            limiter=RateLimiter(counter, clock),
            login_limit=Limit("login", settings.login_rate_limit, window),
            lookup_limit=Limit("code", settings.code_lookup_rate_limit, window),
            clock=clock,
            rng=rng,
        )

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def public_base(self, request: Request) -> str:
        """The address players open the pages at (``PUBLIC_URL``, else this request's)."""
        if self.settings.public_url:
            return self.settings.public_url
        return f"{request.url.scheme}://{request.url.netloc}"

    def join_url(self, request: Request, code: str) -> str:
        """The link players open (and the QR code holds) to join game ``code``."""
        return f"{self.public_base(request)}/join/{code}"

    def ws_url(self, request: Request) -> str:
        """Where players' browsers connect to the game service."""
        if self.settings.public_ws_url:
            return self.settings.public_ws_url
        if self.settings.public_url:
            scheme, host = self.settings.public_url.split("://", 1)
            return f"{'wss' if scheme == 'https' else 'ws'}://{host}/ws"
        if self.settings.environment == "development":
            return DEVELOPMENT_WS_URL
        scheme = "wss" if request.url.scheme == "https" else "ws"
        return f"{scheme}://{request.url.netloc}/ws"

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.dispose()


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.database.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="A host's access token from /api/auth/login.")
_service_bearer = HTTPBearer(
    auto_error=False, scheme_name="ServiceToken", description="Game-service token."
)


async def get_current_host(
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Host:
    if credentials is None:
        raise AuthenticationError("missing bearer token")
    claims = runtime.tokens.verify_session(credentials.credentials, runtime.clock())
    host = await HostRepository(session).by_id(claims.host_id)
    if host is None:
        raise AuthenticationError("the account of this token no longer exists")
    return host


CurrentHost = Annotated[Host, Depends(get_current_host)]


async def require_service_token(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_service_bearer)],
) -> None:
    if credentials is None:
        raise AuthenticationError("missing service token")
    runtime.tokens.verify_service_token(credentials.credentials, runtime.clock())


def client_ip(request: Request) -> str:
    """The client address; uvicorn resolves X-Forwarded-For from trusted proxies into it."""
    return request.client.host if request.client else "unknown"


ClientIp = Annotated[str, Depends(client_ip)]
