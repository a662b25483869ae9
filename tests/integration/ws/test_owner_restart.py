"""An owner whose commit fails in the middle of a burst of answers starts over from its
snapshot on real Redis, and every answer still counts exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.integration.ws.test_redis_replicas import two_replicas
from tests.unit.ws.harness import Peer, create_game

from partyquiz_ws.backends import Backend

PLAYERS = 16  # half on the owner's replica, half on the other


def _fail_one_commit(backend: Backend, *, after_redis: bool) -> asyncio.Event:
    """Make the first commit that publishes answer receipts fail, as a connection dropped in
    the middle of it would: before Redis ran it, or after (its reply lost). Redis itself is
    real; only the one reply is taken away. Returns an event set once it failed."""
    commit = backend.snapshots.commit
    failed = asyncio.Event()

    async def failing_commit(*args: Any, **kwargs: Any) -> bool:
        publications = args[4] if len(args) > 4 else kwargs.get("publications", [])
        receipts = any(b"answer_receipt" in p.payload.encode() for p in publications)
        if failed.is_set() or not receipts:
            return await commit(*args, **kwargs)
        failed.set()
        if after_redis:
            await commit(*args, **kwargs)
        raise ConnectionError("the connection to Redis was lost mid-commit")

    backend.snapshots.commit = failing_commit  # type: ignore[method-assign]
    return failed


@pytest.mark.parametrize("after_redis", [False, True], ids=["before-redis-ran-it", "reply-lost"])
async def test_an_owner_restarting_mid_batch_counts_every_answer_once_and_receipts_it_once(
    fresh_redis_url: str, after_redis: bool
) -> None:
    async with two_replicas(fresh_redis_url, snapshot_interval_seconds=10) as (first, a, b):
        game_id, code = await create_game(first)
        # The host's replica owns the game; the host reads none of its answer counts, so it
        # queues them all rather than stop reading (and miss the close) after sixteen.
        host = await Peer.hosting(a.url, game_id, code, max_queue=None)
        players = [await Peer.open((a if i % 2 else b).url) for i in range(PLAYERS)]
        for i, peer in enumerate(players):
            assert (await peer.join(code, f"P{i}"))["type"] == "welcome"
        idle = await Peer.open(b.url)  # does not answer: the question stays open
        assert (await idle.join(code, "Idle"))["type"] == "welcome"
        await host.send(type="start")
        for peer in players:
            await peer.expect("question")

        failed = _fail_one_commit(a.service.backend, after_redis=after_redis)
        await asyncio.gather(
            *(peer.send(type="answer", question_index=0, choices=[0]) for peer in players)
        )
        receipts = await asyncio.gather(*(peer.expect("answer_receipt") for peer in players))
        assert failed.is_set()  # the owner did start over in the middle of these answers

        await host.send(type="skip")
        for peer, receipt in zip(players, receipts, strict=True):
            result = (await peer.expect("personal_result"))["result"]
            assert result["answered"] is True
            assert result["correct"] is True
            assert result["score"] == result["points"] > 0  # counted once, not twice
            assert [m for m in peer.received if m["type"] == "answer_receipt"] == [receipt]
        for peer in (host, idle, *players):
            await peer.close()
