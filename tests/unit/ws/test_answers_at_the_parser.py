"""A player's answer is handled where websockets parses its frame, without waking the
connection's handler; everything else still reaches the handler in order (real sockets)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import httpx
import pytest
from tests.unit.ws.harness import Peer, create_game, running_service
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from partyquiz_core import game
from partyquiz_core.protocol import ClientMessage
from partyquiz_ws.memory_backend import memory_backend
from partyquiz_ws.server import TRANSPORT_MAX_BYTES, GameConnection


async def test_frames_the_parser_takes_skip_the_handler_and_the_rest_arrive_in_order() -> None:
    taken: list[str] = []
    handled: list[str | bytes] = []
    finished = asyncio.Event()

    def take(text: str) -> bool:
        if text.startswith("take"):
            taken.append(text)
            return True
        return False

    async def handler(conn: GameConnection) -> None:
        conn.take_text = take
        await conn.send("ready")
        async for message in conn:
            handled.append(message)
            if message == "last":
                finished.set()

    async with serve(
        handler, "127.0.0.1", 0, compression=None, create_connection=GameConnection
    ) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as client:
            assert await client.recv() == "ready"  # the handler waits for frames now
            await client.send("take 1")
            await client.send(["take 2, ", "in two fragments"])
            await client.send(b"take 3, binary")
            await client.send("keep 4")
            await client.send("take 5")
            await client.ping()
            await client.send("last")
            await asyncio.wait_for(finished.wait(), 10)
            await client.ping()  # control frames are still answered

    sent = ["take 1", "take 2, in two fragments", b"take 3, binary", "keep 4", "take 5", "last"]
    # The first frame found the handler idle; fragments and binary frames always go to it.
    assert taken[0] == "take 1"
    assert "take 2, in two fragments" in handled
    assert b"take 3, binary" in handled
    assert "keep 4" in handled
    # Every frame arrived exactly once, and the handler's in the order they were sent.
    assert sorted(map(str, taken + handled)) == sorted(map(str, sent))
    assert handled == [frame for frame in sent if frame in handled]


async def test_answers_pings_and_duplicates_sent_at_once_get_their_replies_exactly_once() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        ann, bob = await Peer.open(svc.url), await Peer.open(svc.url)
        for peer, name in ((ann, "Ann"), (bob, "Bob")):
            assert (await peer.join(code, name))["type"] == "welcome"
        await host.send(type="start")
        for peer in (ann, bob):
            await peer.expect("question")

        # Sent back to back, so that the later ones reach the server while the first is handled.
        answer = '{"type":"answer","question_index":0,"choices":[0]}'
        await ann.send_raw(answer)
        await ann.send_raw(answer)
        await ann.send(type="ping", t=7.5)
        await ann.send_raw(['{"type":"answer",', '"question_index":0,"choices":[1]}'])
        replies = [await ann.expect("answer_receipt", "error", "pong") for _ in range(4)]
        receipts = [r for r in replies if r["type"] == "answer_receipt"]
        assert len(receipts) == 1
        assert receipts[0]["choices"] == [0]
        assert [r["code"] for r in replies if r["type"] == "error"] == ["duplicate"] * 2
        assert [r["t"] for r in replies if r["type"] == "pong"] == [7.5]

        # An answer in two fragments is handled like one in a single frame.
        await bob.send_raw(['{"type":"answer",', '"question_index":0,"choices":[1]}'])
        assert (await bob.expect("answer_receipt"))["choices"] == [1]
        reveal = await host.expect("reveal")
        assert reveal["correct"] == [0]
        assert (await ann.expect("personal_result"))["result"]["correct"] is True

        async with httpx.AsyncClient() as http:
            metrics = (await http.get(svc.http + "/metrics")).text
        assert 'partyquiz_ws_answers_total{result="accepted"} 2.0' in metrics
        # Every answer frame was stored once, the refused duplicates too (the game refuses them).
        assert "partyquiz_ws_answer_durable_seconds_count 4.0" in metrics
        for peer in (host, ann, bob):
            await peer.close()


async def test_an_answer_the_core_fails_on_unexpectedly_is_reported_as_internal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        ann = await Peer.open(svc.url)
        assert (await ann.join(code, "Ann"))["type"] == "welcome"
        await host.send(type="start")
        await ann.expect("question")

        command_from_message = game.command_from_message

        def failing(message: ClientMessage, player_id: game.PlayerId | None) -> game.Command:
            if message.type == "answer":
                raise RuntimeError("a bug in the core")
            return command_from_message(message, player_id)

        monkeypatch.setattr(game, "command_from_message", failing)
        await ann.send_raw('{"type":"answer","question_index":0,"choices":[0]}')
        error = await ann.expect("error")
        # A bug is the server's, not the game store's: the player is not told to try again.
        assert error["code"] == "internal"
        assert "a client message could not be handled" in caplog.text
        await ann.send(type="ping", t=1.5)
        assert (await ann.expect("pong"))["t"] == 1.5
        for peer in (host, ann):
            await peer.close()


def _frame(
    payload: bytes, opcode: int = 0x1, fin: bool = True, mask: bytes = b"\x0f\xa5\x3c\x71"
) -> bytes:
    """``payload`` as one masked client frame (lengths up to 64 KiB)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    else:
        head += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class _Served:
    """One real server connection whose reads a test makes itself (``data_received``), with
    a real client on the other end for what the server sends back."""

    def __init__(self) -> None:
        self.conn: GameConnection | None = None
        self.taken: list[str] = []
        self.handled: list[str | bytes] = []
        self.parsed = 0  # reads websockets' parser was given
        self.ready = asyncio.Event()

    def take(self, text: str) -> bool:
        if text.startswith("take"):
            self.taken.append(text)
            return True
        return False

    async def handler(self, conn: GameConnection) -> None:
        conn.take_text = self.take
        receive_data = conn.protocol.receive_data

        def counting(data: bytes | bytearray) -> None:
            self.parsed += 1
            receive_data(data)

        conn.protocol.receive_data = counting  # type: ignore[method-assign]
        self.conn = conn
        self.ready.set()
        with contextlib.suppress(ConnectionClosed):
            async for message in conn:
                self.handled.append(message)

    def read(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.data_received(data)


async def _served(test: Callable[[_Served], Awaitable[None]]) -> _Served:
    served = _Served()
    async with serve(
        served.handler,
        "127.0.0.1",
        0,
        compression=None,
        max_size=TRANSPORT_MAX_BYTES,
        create_connection=GameConnection,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None):
            await asyncio.wait_for(served.ready.wait(), 10)
            await test(served)
    return served


async def test_a_read_that_is_one_whole_answer_frame_is_taken_without_websockets_parser() -> None:
    long_text = "take " + "x" * 300  # a 16-bit length

    async def reads(served: _Served) -> None:
        served.read(_frame(b"take 1"))
        served.read(_frame(long_text.encode()))
        assert served.parsed == 0

    served = await _served(reads)
    assert served.taken == ["take 1", long_text]
    assert served.handled == []


async def test_reads_that_are_not_one_whole_text_frame_go_through_websockets_in_order() -> None:
    async def reads(served: _Served) -> None:
        one, two = _frame(b"take 1"), _frame(b"take 2")
        served.read(one[:3])  # a frame split over two reads
        served.read(one[3:])
        served.read(two + _frame(b"keep 3"))  # two frames in one read
        served.read(_frame(b"keep 4"))  # declined: the handler gets it
        served.read(_frame(b"take 5", opcode=0x2))  # binary
        served.read(_frame(b"take 6, ", fin=False))  # a fragmented message...
        served.read(_frame(b"in two", opcode=0x0))
        served.read(_frame(b"last"))
        for _ in range(100):
            if served.handled and served.handled[-1] == "last":
                break
            await asyncio.sleep(0.01)
        assert served.parsed == 8

    served = await _served(reads)
    # Whole frames websockets parsed are still offered where it parsed them.
    assert served.taken == ["take 1", "take 2"]
    assert served.handled == ["keep 3", "keep 4", b"take 5", "take 6, in two", "last"]


@pytest.mark.parametrize(
    ("reads", "code"),
    [
        # A text frame in the middle of a fragmented message.
        ([_frame(b"keep ", fin=False), _frame(b"take 1")], 1002),
        ([_frame(b"take \xff\xfe")], 1007),  # not UTF-8
        ([_frame(b"take " + b"x" * TRANSPORT_MAX_BYTES)], 1009),  # over the size limit
        ([b"\x81\x06take 1"], 1002),  # not masked
    ],
)
async def test_a_frame_the_protocol_refuses_is_refused_by_websockets_not_taken(
    reads: list[bytes], code: int
) -> None:
    async def send(served: _Served) -> None:
        for data in reads:
            served.read(data)
        assert served.conn is not None
        await asyncio.wait_for(served.conn.wait_closed(), 10)

    served = await _served(send)
    assert served.taken == []
    assert served.conn is not None
    close = served.conn.protocol.close_sent
    assert close is not None
    assert close.code == code
