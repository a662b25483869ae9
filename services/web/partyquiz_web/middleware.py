"""Pure ASGI middleware: request metrics and the request-body size limit.

Owns what happens around every HTTP request before routing. It must stay light: no body
buffering, no per-request allocations beyond a closure, and no knowledge of the routes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from partyquiz_web.metrics import UNMATCHED_HANDLER, WebMetrics


class MetricsMiddleware:
    """Count and time every HTTP request under its route template."""

    def __init__(self, app: ASGIApp, metrics: WebMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route: Any = scope.get("route")
            handler = getattr(route, "path", None) or UNMATCHED_HANDLER
            self.metrics.observe_request(
                handler, scope["method"], status, time.perf_counter() - started
            )


def _too_large_body(limit: int) -> bytes:
    return orjson.dumps(
        {
            "code": "payload_too_large",
            "message": f"request body exceeds {limit} bytes",
            "errors": [],
        }
    )


class BodySizeLimitMiddleware:
    """Refuse request bodies above ``limit`` bytes with 413 before anything parses them.

    A declared Content-Length above the limit is refused at once; a body without one (chunked)
    is counted as it streams and the read fails with 413 as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit: int, larger: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.larger = dict(larger or {})
        """Paths that take more than ``limit`` (image uploads), with their own limit."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = max(self.limit, self.larger.get(scope["path"], 0))
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await _send_413(send, limit)
                    return
                break
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route's body read, so the error handlers render it.
                    raise HTTPException(413, f"request body exceeds {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def _send_413(send: Send, limit: int) -> None:
    body = _too_large_body(limit)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
