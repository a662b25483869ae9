"""The app factory: ``create_app(settings)`` wires routes, middleware and error handling.

Owns the composition of one app instance and its lifetime (engine and Redis are closed on
shutdown). It creates no tables (migrations do) and keeps nothing at module level.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

from partyquiz_web import http_errors
from partyquiz_web.dependencies import Runtime
from partyquiz_web.images import MAX_UPLOAD_BYTES
from partyquiz_web.middleware import BodySizeLimitMiddleware, MetricsMiddleware
from partyquiz_web.quiz_files import MAX_IMPORT_BYTES
from partyquiz_web.routes import auth, games, health, images, internal, pages, quizzes
from partyquiz_web.settings import WebSettings, load_settings

STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    settings: WebSettings,
    *,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> FastAPI:
    """Build the web app for ``settings``; ``clock`` and ``rng`` are injectable for tests."""
    runtime = Runtime.build(settings, clock=clock, rng=rng or random.SystemRandom())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="PartyQuiz web",
        summary="Host accounts, quizzes, games and results for PartyQuiz.",
        version="1",
        lifespan=lifespan,
        separate_input_output_schemas=False,
    )
    app.state.runtime = runtime
    http_errors.install(app)

    routers = (
        auth.router,
        quizzes.router,
        images.router,
        games.router,
        internal.router,
        health.router,
        pages.router,
    )
    for router in routers:
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    runtime.metrics.initialise_routes(
        (route.path, method, route.status_code or 200)
        for route in [*app.routes, *(r for router in routers for r in router.routes)]
        if isinstance(route, APIRoute)
        for method in sorted(route.methods or ())
    )
    runtime.metrics.initialise_dependencies(
        ["database", "redis"] if settings.redis_url else ["database"]
    )

    # Added last = outermost: metrics see every response, including 413s.
    app.add_middleware(
        BodySizeLimitMiddleware,
        limit=settings.max_body_bytes,
        larger={"/api/images": MAX_UPLOAD_BYTES, "/api/quizzes/import": MAX_IMPORT_BYTES},
    )
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    return app


def create_app_from_environment() -> FastAPI:
    """Build the app from the process environment: what each ``serve`` worker process runs.

    Worker processes start afresh (uvicorn spawns them), so they read the same environment the
    parent checked before it bound the socket.
    """
    return create_app(load_settings())
