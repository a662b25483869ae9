"""Two game-service replicas sharing one real Redis: any replica serves any player."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.unit.ws.harness import (
    QUIZ,
    Clock,
    Peer,
    Running,
    create_game,
    host_token,
    running_service,
)
from websockets.exceptions import ConnectionClosed

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
    async with two_replicas(fresh_redis_url, message_burst=1000, join_rate_per_address=1000) as (
        first,
        a,
        b,
    ):
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
        host = await Peer.hosting(a.url, game_id, code)
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
        host = await Peer.hosting(a.url, game_id, code)  # the host's replica owns the game
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


async def test_wrong_codes_connections_and_joins_are_counted_across_replicas(
    fresh_redis_url: str,
) -> None:
    async with two_replicas(
        fresh_redis_url,
        clock=Clock.at_window_start(60),
        wrong_code_limit=2,
        max_connections_per_address=2,
        join_rate_per_game=3,
        join_rate_window_seconds=60,
    ) as (first, a, b):
        _, code = await create_game(first)
        guesser = {"X-Forwarded-For": "2001:db8:5:5::1"}
        on_a = await Peer.open(a.url, additional_headers=guesser)
        assert (await on_a.join("QQQQQQ", "Guess"))["code"] == "unknown_code"
        # The same /64 on the other replica: the second guess is the limit...
        same_net = {"X-Forwarded-For": "2001:db8:5:5::2"}
        on_b = await Peer.open(b.url, additional_headers=same_net)
        assert (await on_b.join("WWWWWW", "Guess"))["code"] == "unknown_code"
        assert (await on_b.join(code, "Guess"))["code"] == "too_many_attempts"
        # ... and it holds two connections, one per replica: a third is refused on either.
        third = await Peer.open(a.url, additional_headers=guesser)
        with pytest.raises(ConnectionClosed) as closed:
            await third.next()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4029
        # Joins into one game are counted over both replicas.
        joined = []
        for i, url in enumerate((a.url, b.url, a.url, b.url)):
            peer = await Peer.open(url, additional_headers={"X-Forwarded-For": f"192.0.2.{i}"})
            joined.append((await peer.join(code, f"Player {i}")).get("code", "welcome"))
        assert joined == ["welcome", "welcome", "welcome", "too_many_joins"]


async def test_a_crashed_replicas_connections_stop_counting_against_an_address(
    fresh_redis_url: str,
) -> None:
    backend = redis_backend(fresh_redis_url)
    client = aioredis.Redis.from_url(fresh_redis_url)
    try:
        limits = backend.limits
        await limits.heartbeat("crashing", 60.0, time.time())
        assert await limits.open_connection("198.51.100.1", "crashing", 1)
        assert not await limits.open_connection("198.51.100.1", "alive", 1)
        # The crashed replica's heartbeat lapses (its key expires): its count no longer holds.
        await client.delete("pq:replica:crashing")
        assert await limits.open_connection("198.51.100.1", "alive", 1)
        assert not await limits.open_connection("198.51.100.1", "alive", 1)
        await limits.close_connection("198.51.100.1", "alive")
        assert await limits.open_connection("198.51.100.1", "alive", 1)
    finally:
        await client.aclose()
        await backend.close()


async def test_resuming_on_one_replica_closes_the_players_connection_on_the_other(
    fresh_redis_url: str,
) -> None:
    async with two_replicas(fresh_redis_url) as (first, a, b):
        game_id, code = await create_game(first)
        host = await Peer.hosting(a.url, game_id, code)
        old = await Peer.open(a.url)
        welcome = await old.join(code, "Roamer")
        new = await Peer.open(b.url)
        await new.send(type="resume", resume_token=welcome["resume_token"])
        assert (await new.expect("welcome"))["player_id"] == welcome["player_id"]
        _, code_seen = await old.until_closed()
        assert code_seen == 4009
        await host.close()
        await new.close()


async def test_players_on_the_owners_replica_and_on_the_other_get_every_frame_once(
    fresh_redis_url: str,
) -> None:
    async with two_replicas(fresh_redis_url) as (first, a, b):
        game_id, code = await create_game(first)
        host = await Peer.hosting(a.url, game_id, code)  # the host's replica owns the game
        near, far, idle = await Peer.open(a.url), await Peer.open(b.url), await Peer.open(b.url)
        for peer, name in ((near, "Near"), (far, "Far"), (idle, "Idle")):
            assert (await peer.join(code, name))["type"] == "welcome"
        await host.send(type="start")
        for peer in (near, far):
            await peer.expect("question")
            await peer.send(type="answer", question_index=0, choices=[0])
            await peer.expect("answer_receipt")
        await host.send(type="skip")
        for peer in (near, far):
            assert (await peer.expect("personal_result"))["result"]["correct"] is True

        # The owner's batches also come back to it through Redis, in publication order on
        # one subscription: once a later frame published by the other replica has reached
        # ``near`` through it, every copy that could come back has come.
        other_id, other_code = await create_game(first, join_code="BCDEFG")
        other_host = await Peer.hosting(b.url, other_id, other_code)
        barrier = await Peer.open(a.url)
        assert (await barrier.join(other_code, "Later"))["type"] == "welcome"
        await other_host.send(type="start")
        await barrier.expect("question")
        await near.send(type="ping", t=1)
        await near.expect("pong")

        for peer in (near, far):
            kinds = [m["type"] for m in peer.received]
            for kind in ("question", "answer_receipt", "personal_result"):
                assert kinds.count(kind) == 1, (kind, kinds)
        for peer in (host, near, far, idle, other_host, barrier):
            await peer.close()


async def test_every_player_on_either_replica_gets_its_own_result_and_the_leaderboards_rank(
    fresh_redis_url: str,
) -> None:
    async with two_replicas(fresh_redis_url) as (first, a, b):
        game_id, code = await create_game(first)
        host = await Peer.hosting(a.url, game_id, code)  # the host's replica owns the game
        # As many players as the leaderboard shows (5 by default), alternating replicas.
        players = [await Peer.open((a, b)[i % 2].url) for i in range(5)]
        for i, peer in enumerate(players):
            assert (await peer.join(code, f"Player {i}"))["type"] == "welcome"
        await host.send(type="start")
        # Players 0, 1 and 3 pick Paris (right), 2 picks Lyon (wrong), 4 does not answer.
        picks = {0: 0, 1: 0, 2: 1, 3: 0}
        for i, peer in enumerate(players):
            await peer.expect("question")
            if i in picks:
                await peer.send(type="answer", question_index=0, choices=[picks[i]])
                await peer.expect("answer_receipt")
        await host.send(type="skip")
        results = [(await peer.expect("personal_result"))["result"] for peer in players]
        await host.send(type="next")
        board = await host.expect("leaderboard")
        by_name = {entry["nickname"]: entry for entry in board["entries"]}
        assert len(by_name) == len(players)
        for i, result in enumerate(results):
            entry = by_name[f"Player {i}"]
            assert result["answered"] is (i in picks), (i, result)
            assert result["correct"] is (picks.get(i) == 0), (i, result)
            assert (result["score"], result["rank"]) == (entry["score"], entry["rank"]), (i, result)
            assert result["points"] == result["score"]  # the game's first question
            assert (result["points"] > 0) is (picks.get(i) == 0), (i, result)
        for peer in (host, *players):
            await peer.close()


async def test_an_answer_redis_holds_back_is_refused_as_unavailable_and_counted_once(
    fresh_redis_url: str,
) -> None:
    admin = aioredis.Redis.from_url(fresh_redis_url)
    first, second = redis_backend(fresh_redis_url), redis_backend(fresh_redis_url, pool_timeout=0.3)
    try:
        async with (
            running_service(first, replica_id="replica-a") as a,
            running_service(second, replica_id="replica-b") as b,
        ):
            game_id, code = await create_game(first)
            host = await Peer.hosting(a.url, game_id, code)
            far, idle = await Peer.open(b.url), await Peer.open(b.url)
            for peer, name in ((far, "Far"), (idle, "Idle")):  # the question stays open
                assert (await peer.join(code, name))["type"] == "welcome"
            await host.send(type="start")
            await far.expect("question")
            await admin.execute_command("CLIENT", "PAUSE", "2000", "WRITE")
            try:
                await far.send(type="answer", question_index=0, choices=[0])
                refused = await far.expect("error")
                assert refused["code"] == "unavailable"
            finally:
                await admin.execute_command("CLIENT", "UNPAUSE")
            # Whether Redis still stored the held-back append once it wrote again or not, the
            # answer sent again is stored once or refused as a duplicate: it counts once.
            await far.send(type="answer", question_index=0, choices=[0])
            await far.expect("answer_receipt")
            count = await host.expect("answer_count")
            assert count["answered"] == 1
            await far.send(type="ping", t=2)
            await far.expect("pong")
            kinds = [m["type"] for m in far.received]
            assert kinds.count("answer_receipt") == 1
            later = [
                m["code"]
                for m in far.received[kinds.index("answer_receipt") :]
                if m["type"] == "error"
            ]
            assert later in ([], ["duplicate"])
            for peer in (host, far, idle):
                await peer.close()
    finally:
        await admin.aclose()
        await first.close()
        await second.close()
