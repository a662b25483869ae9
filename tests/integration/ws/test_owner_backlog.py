"""The owner catching up on answers that wait in a real Redis inbox (real sockets)."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import redis.asyncio as aioredis
from tests.unit.ws.harness import QUIZ, WAIT, Peer, running_service

from partyquiz_core import game
from partyquiz_core.ids import DeviceId, GameId, JoinCode, PlayerId
from partyquiz_ws.backends import Batch, Snapshot, game_channel
from partyquiz_ws.engine import KIND_COMMAND, Envelope, encode_snapshot
from partyquiz_ws.redis_backend import redis_backend
from partyquiz_ws.runner import BACKLOG_COMMIT, BATCH_SIZE

PLAYERS = 3 * BATCH_SIZE - 36  # three reads of the inbox, the last one short


async def test_answers_waiting_in_the_inbox_reach_the_host_in_one_count(
    fresh_redis_url: str,
) -> None:
    assert BATCH_SIZE * 2 < PLAYERS < BACKLOG_COMMIT
    game_id, code = GameId(uuid.uuid4().hex), JoinCode("BKLOGS")
    now = time.time()
    state = game.new_game(game_id, QUIZ)
    for i in range(PLAYERS):
        join = game.Join(
            player_id=PlayerId(f"p{i:04d}"), device_id=DeviceId(f"d{i}"), nickname=f"P{i}"
        )
        state = game.apply(state, join, now).state
    state = game.apply(state, game.Start(), now).state
    base, log = encode_snapshot(state, 0)
    assert not log
    backend = redis_backend(fresh_redis_url)
    listener = aioredis.Redis.from_url(fresh_redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    try:
        await backend.snapshots.create(game_id, code, Snapshot(state=base))
        # Every player's answer is stored before the game has an owner (the host's replica
        # owns it once the host is back): the owner finds them all waiting at once.
        answers = [
            Envelope(
                KIND_COMMAND,
                game.Answer(player_id=PlayerId(f"p{i:04d}"), question_index=0, choices=[i % 3]),
                time.time(),
                "replica-gone",
                i + 1,
            )
            for i in range(PLAYERS)
        ]
        await asyncio.gather(*(backend.inbox.append(game_id, a) for a in answers))
        await pubsub.subscribe(game_channel(game_id))
        async with running_service(backend, replica_id="replica-a") as a:
            host = await Peer.hosting(a.url, game_id, code)
            counts: list[int] = []
            async with asyncio.timeout(WAIT):
                while not counts or counts[-1] < PLAYERS:
                    message = await pubsub.get_message(timeout=WAIT)
                    if message is None or message["type"] != "message":
                        continue
                    batch = Batch.decode(message["data"])
                    for item in batch.items:
                        if item[:2] == ["host", "answer_count"]:
                            counts.append(orjson.loads(item[2])["answered"])
            # Applied in reads of the inbox's batch size, then committed together: the
            # host's screen jumps to every answer once instead of in steps per read.
            assert counts == [PLAYERS]
            await host.close()
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await listener.aclose()
        await backend.close()
