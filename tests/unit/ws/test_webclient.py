"""The game service's client of the web service, against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio

from partyquiz_core.ids import GameId
from partyquiz_ws.webclient import MAX_CONCURRENT_REQUESTS, WebClient


class _Web:
    """Answers every request with 204 and remembers how many connections were open at once."""

    def __init__(self) -> None:
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.requests.append(head.split(b" ", 2)[1])
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
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
