"""A player's answer is handled where websockets parses its frame, without waking the
connection's handler; everything else still reaches the handler in order (real sockets)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tests.unit.ws.harness import Peer, create_game, running_service
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from partyquiz_core import game
from partyquiz_core.protocol import ClientMessage
from partyquiz_ws.memory_backend import memory_backend
from partyquiz_ws.server import GameConnection


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
