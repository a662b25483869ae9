"""The game service's client of the web service, against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import re

from tests.unit.ws.harness import running_service

from partyquiz_core.ids import GameId
from partyquiz_ws.webclient import MAX_CONCURRENT_REQUESTS, WebClient


class _Web:
    """Answers every request with 204 (or 405 on the paths in ``missing``, as a web service
    without them does) and remembers how many connections were open at once."""

    def __init__(self, missing: tuple[bytes, ...] = ()) -> None:
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.bodies: list[bytes] = []
        self.missing = missing
        self.started: set[str] = set()  # games told started, by either call
        self.told = asyncio.Event()
        self.expected = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                path = head.split(b" ", 2)[1]
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                body = await reader.readexactly(int(length[1])) if length else b""
                self.requests.append(path)
                self.bodies.append(body)
                if path in self.missing:
                    writer.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                else:
                    if path == b"/internal/games/started":
                        self.started.update(json.loads(body)["game_ids"])
                    elif path.endswith(b"/started"):
                        self.started.add(path.split(b"/")[3].decode())
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                if self.expected and len(self.started) >= self.expected:
                    self.told.set()
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


async def test_many_games_starting_at_once_are_told_on_a_few_connections() -> None:
    web = _Web()
    server = await asyncio.start_server(web.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = WebClient(f"http://127.0.0.1:{port}", "s" * 40)
    try:
        games = [GameId(f"g{i}") for i in range(300)]
        await asyncio.gather(*(client.mark_started(g) for g in games))
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert sorted(web.requests) == sorted(f"/internal/games/{g}/started".encode() for g in games)
    assert web.most_open <= MAX_CONCURRENT_REQUESTS


async def _serving(web: _Web) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(web.serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _mark_many_started(web: _Web, games: list[GameId]) -> None:
    """Tell ``web`` (served on a port of its own for the call) that ``games`` started."""
    server, url = await _serving(web)
    client = WebClient(url, "s" * 40)
    try:
        await client.mark_many_started(games)
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


async def test_many_games_started_together_are_told_in_one_request() -> None:
    web = _Web()
    games = [GameId(f"g{i}") for i in range(300)]
    await _mark_many_started(web, games)
    assert web.requests == [b"/internal/games/started"]
    assert json.loads(web.bodies[0]) == {"game_ids": games}


async def test_a_web_service_without_the_call_for_many_is_told_one_game_at_a_time() -> None:
    web = _Web(missing=(b"/internal/games/started",))
    games = [GameId(f"g{i}") for i in range(20)]
    await _mark_many_started(web, games)
    assert web.started == set(games)


async def test_a_replica_tells_the_web_service_of_games_started_together_in_one_request() -> None:
    web = _Web()
    web.expected = 100
    server, url = await _serving(web)
    try:
        async with running_service(web_internal_url=url) as running:
            games = [GameId(f"g{i}") for i in range(100)]
            await asyncio.gather(*(running.service.game_started(g) for g in games))
            await asyncio.wait_for(web.told.wait(), 30)
    finally:
        server.close()
        await server.wait_closed()
    assert web.started == set(games)
    assert len(web.requests) <= 2  # the first game's request, and the rest together
