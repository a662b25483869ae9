"""Liveness, readiness and metrics endpoints; none of them needs authentication."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response

from partyquiz_web.dependencies import RuntimeDep
from partyquiz_web.metrics import CONTENT_TYPE
from partyquiz_web.responses import OrjsonResponse
from partyquiz_web.schemas import HealthStatus

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
async def healthz() -> HealthStatus:
    """The process is alive; checks no dependency."""
    return HealthStatus(status="ok")


@router.get(
    "/readyz",
    response_model=HealthStatus,
    responses={503: {"model": HealthStatus, "description": "The database is unreachable."}},
)
async def readyz(runtime: RuntimeDep) -> OrjsonResponse:
    """Ready when the database answers (503 otherwise); an unreachable Redis is named, not fatal.

    Without Redis the pages, the quiz editor and the results still work (rate limits fall back
    to this process alone); only live games need Redis, and the game service's own readiness
    says so. Taking every web pod out of its Service for a Redis outage would take the whole
    site down instead.
    """
    timeout = runtime.settings.dependency_timeout_seconds
    failing = []
    try:
        await asyncio.wait_for(runtime.database.ping(), timeout)
        runtime.metrics.set_dependency_up("database", True)
    except Exception as exc:  # any failure means "not ready", never a 500
        log.warning("readiness: database unreachable: %s", exc)
        runtime.metrics.set_dependency_up("database", False)
        failing.append("database")
    if runtime.redis is not None:
        try:
            await asyncio.wait_for(runtime.redis.ping(), timeout)
            runtime.metrics.set_dependency_up("redis", True)
        except Exception as exc:
            log.warning("readiness: redis unreachable: %s", exc)
            runtime.metrics.set_dependency_up("redis", False)
            failing.append("redis")
    if "database" in failing:
        body = HealthStatus(status="unavailable", failing=failing)
        return OrjsonResponse(body.model_dump(), status_code=503)
    status = "degraded" if failing else "ok"
    return OrjsonResponse(HealthStatus(status=status, failing=failing).model_dump())


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics of this process."""
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)
