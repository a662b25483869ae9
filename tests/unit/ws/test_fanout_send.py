"""``fanout.send_text``: one pre-built frame written to many real WebSocket connections."""

from __future__ import annotations

import asyncio

import pytest
from tests.servers import free_port
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from partyquiz_ws.fanout import send_text, text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 4_000, 65_535, 65_536, 200_000])
def test_the_frame_is_byte_for_byte_what_websockets_sends(size: int) -> None:
    payload = b'"' + b"x" * max(size - 2, 0) + b'"' if size >= 2 else b"7" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])


async def test_every_open_connection_gets_the_message_and_closed_ones_are_skipped() -> None:
    conns: list[ServerConnection] = []
    entered = asyncio.Event()

    async def handler(conn: ServerConnection) -> None:
        conns.append(conn)
        if len(conns) == 3:
            entered.set()
        await conn.wait_closed()

    port = free_port()
    async with serve(handler, "127.0.0.1", port, compression=None):
        clients = [await connect(f"ws://127.0.0.1:{port}", compression=None) for _ in range(3)]
        await asyncio.wait_for(entered.wait(), 5)
        await clients[2].close()
        await asyncio.wait_for(conns[-1].wait_closed(), 5)
        big = '{"text":"' + "é" * 40_000 + '"}'
        assert send_text(conns, b'{"type":"hello"}') == 2
        assert send_text(conns, big.encode()) == 2
        assert send_text(conns[:1], b"[1]", b"[2]") == 1  # two messages, one write
        for client in clients[:2]:
            assert await asyncio.wait_for(client.recv(), 5) == '{"type":"hello"}'
            assert await asyncio.wait_for(client.recv(), 5) == big
        assert await asyncio.wait_for(clients[0].recv(), 5) == "[1]"
        assert await asyncio.wait_for(clients[0].recv(), 5) == "[2]"
        for client in clients[:2]:
            await client.close()
