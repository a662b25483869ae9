"""The API door's timeout: a request's own, not the wait for a connection to send it on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from partyquiz_operator import k8s
from partyquiz_operator.metrics import OperatorMetrics

TIMEOUT = 1.0
# A slow answer: its first bytes at once, then a little every quarter timeout, for 2.5 timeouts.
TRICKLES = 10
DONE = web.AppKey("done", asyncio.Event)


async def secret(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "silent":
        await request.app[DONE].wait()  # no answer while the test runs
        return web.Response(status=503)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"metadata": {"name": "' + name.encode() + b'"}')
    if name == "slow":
        for _ in range(TRICKLES):
            await asyncio.sleep(TIMEOUT / 4)
            await response.write(b" ")
    await response.write(b"}")
    await response.write_eof()
    return response


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app[DONE] = asyncio.Event()
    app.router.add_get("/api/v1/namespaces/ns/secrets/{name}", secret)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    app[DONE].set()
    await runner.cleanup()


def session(server: str) -> k8s.Api:
    credentials = k8s.Credentials(
        server=server,
        ca_path=None,
        cert_path=None,
        key_path=None,
        insecure=True,
        token=lambda: None,
    )
    return k8s.Api(credentials, OperatorMetrics(), timeout=TIMEOUT, connections=1)


async def test_a_request_waiting_for_a_busy_connection_is_not_timed_out(server: str) -> None:
    api = session(server)
    await api.open()
    try:
        slow = asyncio.create_task(api.get("Secret", "ns", "slow"))
        queued = asyncio.create_task(api.get("Secret", "ns", "queued"))
        found = await asyncio.gather(slow, queued)
    finally:
        await api.close()
    assert [body and body["metadata"]["name"] for body in found] == ["slow", "queued"]


async def test_a_server_that_does_not_answer_fails_the_request_as_unavailable(server: str) -> None:
    api = session(server)
    await api.open()
    try:
        with pytest.raises(k8s.Unavailable, match="get secrets"):
            await api.get("Secret", "ns", "silent")
    finally:
        await api.close()
