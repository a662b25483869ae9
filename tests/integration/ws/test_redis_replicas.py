"""Two game-service replicas sharing one real Redis: any replica serves any player."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tests.unit.ws.harness import QUIZ, Peer, Running, create_game, host_token, running_service

from partyquiz_ws.backends import Backend
from partyquiz_ws.bots import BotConfig, run_bots
from partyquiz_ws.redis_backend import redis_backend


@contextlib.asynccontextmanager
async def two_replicas(
    redis_url: str, **overrides: Any
) -> AsyncIterator[tuple[Backend, Running, Running]]:
    """Replicas a and b on one Redis; yields a's backend (for looking inside) and both."""
    first, second = redis_backend(redis_url), redis_backend(redis_url)
    try:
        async with (
            running_service(first, replica_id="replica-a", **overrides) as a,
            running_service(second, replica_id="replica-b", **overrides) as b,
        ):
            yield first, a, b
    finally:
        await first.close()
        await second.close()


async def test_fifty_bots_split_over_two_replicas_finish_with_the_same_standings(
    fresh_redis_url: str,
) -> None:
    async with two_replicas(fresh_redis_url, message_burst=1000) as (first, a, b):
        game_id, code = await create_game(first)
        report = await run_bots(
            BotConfig(
                ws_urls=[a.url, b.url],
                join_code=code,
                players=50,
                host_token=host_token(game_id, code),
                min_delay=0.01,
                max_delay=0.3,
                seed=3,
                game_timeout=180,
            )
        )
        pending = await first.outbox.pending()
    assert report.host is not None
    assert report.host.ended
    questions = list(range(len(QUIZ.questions)))
    for player in report.players:
        assert player.error is None, player
        assert player.ended
        assert player.questions == questions
        assert player.final == report.host.podium
    assert report.summary()["answers_accepted"] == 50 * len(QUIZ.questions)
    # Results are queued in Redis until the (absent) web service acknowledges them.
    assert pending == [game_id]


async def test_a_player_on_one_replica_resumes_on_the_other(fresh_redis_url: str) -> None:
    async with two_replicas(fresh_redis_url) as (first, a, b):
        game_id, code = await create_game(first)
        host = await Peer.open(a.url)
        await host.send(type="host", host_token=host_token(game_id, code))
        await host.expect("host_welcome")
        player = await Peer.open(b.url)
        welcome = await player.join(code, "Roamer")
        await host.send(type="start")
        await player.expect("question")
        await player.close()
        again = await Peer.open(a.url)
        await again.send(type="resume", resume_token=welcome["resume_token"])
        back = await again.expect("welcome")
        assert back["player_id"] == welcome["player_id"]
        await again.send(type="answer", question_index=0, choices=[0])
        await again.expect("answer_receipt")
        result = await again.expect("personal_result")
        assert result["result"]["correct"] is True
        await host.close()
        await again.close()


async def test_a_new_owner_replays_answers_after_the_snapshot_without_a_second_receipt(
    fresh_redis_url: str,
) -> None:
    async with two_replicas(fresh_redis_url, snapshot_interval_seconds=10) as (first, a, b):
        game_id, code = await create_game(first)
        host = await Peer.open(a.url)  # the host's replica owns the game
        await host.send(type="host", host_token=host_token(game_id, code))
        await host.expect("host_welcome")
        player, idle = await Peer.open(b.url), await Peer.open(b.url)
        await player.join(code, "Keeper")
        await idle.join(code, "Idle")  # does not answer: the question stays open
        await host.send(type="start")  # a phase change: saved at once
        await player.expect("question")
        await player.send(type="answer", question_index=0, choices=[0])
        receipt = await player.expect("answer_receipt")
        saved = await first.snapshots.load(game_id)
        assert saved is not None
        assert saved.published_id is not None  # the answer is only in the inbox

        _, task = a.service.runners[game_id]
        task.cancel()  # the owner stops dead: nothing more is saved
        with contextlib.suppress(asyncio.CancelledError):
            await task

        await host.send(type="skip")  # b takes over, replays the answer, then closes
        result = (await player.expect("personal_result", within=20))["result"]
        assert result["answered"] is True
        assert result["correct"] is True
        receipts = [m for m in player.received if m["type"] == "answer_receipt"]
        assert receipts == [receipt]
        for peer in (host, player, idle):
            await peer.close()
