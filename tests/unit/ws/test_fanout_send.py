"""``fanout``: pre-built frames written to real WebSocket connections, from either batch form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import uvloop
from tests.servers import free_port
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from partyquiz_core.ids import GameId, PlayerId
from partyquiz_core.protocol import ResultRow
from partyquiz_ws.backends import Batch
from partyquiz_ws.engine import personal_frames
from partyquiz_ws.fanout import Client, Hub, send_text, text_frame
from partyquiz_ws.metrics import WsMetrics


@pytest.mark.parametrize("size", [0, 1, 125, 126, 4_000, 65_535, 65_536, 200_000])
def test_the_frame_is_byte_for_byte_what_websockets_sends(size: int) -> None:
    payload = b'"' + b"x" * max(size - 2, 0) + b'"' if size >= 2 else b"7" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])


@asynccontextmanager
async def _connected(
    count: int,
) -> AsyncIterator[tuple[list[ServerConnection], list[ClientConnection]]]:
    """Serve on a free port and open ``count`` clients; yield the server's side of each
    connection (in the clients' order) and the clients, which are closed on the way out."""
    conns: list[ServerConnection] = []
    entered = asyncio.Event()

    async def handler(conn: ServerConnection) -> None:
        conns.append(conn)
        if len(conns) == count:
            entered.set()
        await conn.wait_closed()

    port = free_port()
    async with serve(handler, "127.0.0.1", port, compression=None):
        clients = [await connect(f"ws://127.0.0.1:{port}", compression=None) for _ in range(count)]
        await asyncio.wait_for(entered.wait(), 5)
        try:
            yield conns, clients
        finally:
            for client in clients:
                await client.close()


LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def _on(loop: str, test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``test`` on asyncio's event loop or on uvloop's (which ``partyquiz-ws`` runs on)."""
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(test())


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_every_open_connection_gets_the_message_and_closed_ones_are_skipped(loop: str) -> None:
    _on(loop, _every_open_connection_gets_the_message_and_closed_ones_are_skipped)


async def _every_open_connection_gets_the_message_and_closed_ones_are_skipped() -> None:
    async with _connected(3) as (conns, clients):
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


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_connection_whose_socket_went_away_mid_fan_out_is_skipped_without_raising(
    loop: str,
) -> None:
    _on(loop, _a_connection_whose_socket_went_away_mid_fan_out_is_skipped_without_raising)


async def _a_connection_whose_socket_went_away_mid_fan_out_is_skipped_without_raising() -> None:
    async with _connected(3) as (conns, clients):
        # The socket is gone but the connection has not heard yet: it still says it is open.
        conns[1].transport.abort()
        assert send_text(conns, b'{"type":"hello"}') >= 2
        for client in (clients[0], clients[2]):
            assert await asyncio.wait_for(client.recv(), 5) == '{"type":"hello"}'
        await asyncio.wait_for(conns[1].wait_closed(), 5)
        assert send_text(conns, b'{"type":"again"}') == 2


async def test_a_batch_object_and_its_encoded_bytes_deliver_the_same_frames() -> None:
    # The embedded bus hands the listener the runner's Batch; Redis hands it the JSON.
    game_id = GameId("g")
    rows = {"p1": ResultRow(True, True, 900, 1900, 1, 2)}
    reveal = '{"type":"reveal","version":7}'
    items: list[list[Any]] = [
        ["conn", "answer_receipt", 1, '{"type":"answer_receipt"}'],
        ["all", "reveal", reveal],
        ["results", "personal_result", 7, 0, rows],
    ]
    async with _connected(2) as (conns, (player, host)):
        metrics = WsMetrics()
        hub = Hub(metrics, personal_frames)
        for conn_id, (conn, role) in enumerate(zip(conns, ("player", "host"), strict=True), 1):
            client = Client(conn=conn, conn_id=conn_id, ip="127.0.0.1", role=role)
            client.player_id = PlayerId("p1") if role == "player" else None
            hub.clients[conn_id] = client
            hub.enter(client, game_id)
        received = []
        for payload in (Batch(game_id, 0.0, items), Batch(game_id, 0.0, items).encode()):
            hub.deliver(payload)
            got = [await asyncio.wait_for(player.recv(), 5) for _ in range(3)]
            got.append(await asyncio.wait_for(host.recv(), 5))
            received.append(got)
        assert received[0] == received[1]
        # Counted once per delivery, per recipient: the player's receipt, result and reveal,
        # and the host's reveal.
        sent = {
            msg_type: metrics.registry.get_sample_value(
                "partyquiz_ws_messages_sent_total", {"type": msg_type}
            )
            for msg_type in ("answer_receipt", "personal_result", "reveal")
        }
        assert sent == {"answer_receipt": 2, "personal_result": 2, "reveal": 4}
        assert received[0][1] == reveal
        result = orjson.loads(received[0][2])
        assert (result["type"], result["result"]["score"], result["result"]["streak"]) == (
            "personal_result",
            1900,
            2,
        )
