"""The storage contract both backends keep: inbox order, lease fencing, outbox, pub/sub."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator

import pytest

from partyquiz_core.ids import GameId, JoinCode
from partyquiz_ws.backends import Backend, Batch, Publication, Snapshot
from partyquiz_ws.memory_backend import memory_backend
from partyquiz_ws.redis_backend import redis_backend

GAME = GameId("g1")


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        chosen = memory_backend()
    else:
        chosen = redis_backend(request.getfixturevalue("fresh_redis_url"))
    yield chosen
    await chosen.close()


async def _lease_free(backend: Backend, holder: str, ttl: float) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if await backend.lease.acquire(GAME, holder, ttl):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_inbox_returns_entries_in_order_after_an_id(backend: Backend) -> None:
    ids = [await backend.inbox.append(GAME, f"e{i}".encode()) for i in range(5)]
    entries = await backend.inbox.read(GAME, "0-0", 3, 0)
    assert [e[1] for e in entries] == [b"e0", b"e1", b"e2"]
    later = await backend.inbox.read(GAME, ids[2], 10, 0)
    assert [e[0] for e in later] == ids[3:]
    assert await backend.inbox.read(GAME, ids[4], 10, 0.05) == []


async def test_submitted_entries_are_stored_in_order_and_each_submitter_told_once(
    backend: Backend,
) -> None:
    told: list[tuple[int, BaseException | None]] = []
    everyone = asyncio.Event()

    def stored(index: int, failure: BaseException | None) -> None:
        told.append((index, failure))
        if len(told) == 4:
            everyone.set()

    for index in range(3):
        backend.inbox.submit(GAME, f"e{index}".encode(), functools.partial(stored, index))
    appended = await backend.inbox.append(GAME, b"e3")
    backend.inbox.submit(GAME, b"e4", functools.partial(stored, 4))
    await asyncio.wait_for(everyone.wait(), 5)
    await asyncio.sleep(0.05)  # nobody is told twice
    assert told == [(0, None), (1, None), (2, None), (4, None)]
    entries = await backend.inbox.read(GAME, "0-0", 10, 0)
    assert [e[1] for e in entries] == [f"e{i}".encode() for i in range(5)]
    assert entries[3][0] == appended


async def test_a_blocked_read_wakes_on_append(backend: Backend) -> None:
    reader = asyncio.create_task(backend.inbox.read(GAME, "0-0", 10, 5.0))
    await asyncio.sleep(0)  # let the reader block first
    await backend.inbox.append(GAME, b"wake")
    entries = await asyncio.wait_for(reader, 5)
    assert [e[1] for e in entries] == [b"wake"]


async def test_only_one_holder_and_a_lapsed_lease_moves_on(backend: Backend) -> None:
    assert await backend.lease.acquire(GAME, "a", 0.3)
    assert not await backend.lease.acquire(GAME, "b", 0.3)
    assert await backend.lease.renew(GAME, "a", 0.3)
    assert await _lease_free(backend, "b", 5.0)  # a stopped renewing: b takes over
    assert not await backend.lease.renew(GAME, "a", 0.3)
    await backend.lease.release(GAME, "b")
    assert await backend.lease.renew(GAME, "a", 0.3)  # lapsed and untaken: a has it back
    assert not await backend.lease.acquire(GAME, "b", 0.3)
    assert await _lease_free(backend, "b", 5.0)
    await backend.lease.release(GAME, "a")  # not a's any more: nothing happens
    assert not await backend.lease.acquire(GAME, "a", 0.3)
    await backend.lease.release(GAME, "b")
    assert await backend.lease.acquire(GAME, "a", 0.3)


async def test_a_commit_is_fenced_by_the_lease(backend: Backend) -> None:
    assert await backend.snapshots.create(GAME, JoinCode("ABCDEF"), Snapshot(b"v0"))
    assert not await backend.snapshots.create(GAME, JoinCode("ABCDEF"), Snapshot(b"other"))
    assert await backend.snapshots.find_game(JoinCode("ABCDEF")) == GAME
    first = await backend.inbox.append(GAME, b"c1")
    await backend.inbox.append(GAME, b"c2")
    assert await backend.lease.acquire(GAME, "owner", 0.3)
    assert await backend.snapshots.commit(GAME, "owner", 0.3, Snapshot(b"v1", first), [])
    saved = await backend.snapshots.load(GAME)
    assert saved == Snapshot(b"v1", first)
    assert [e[1] for e in await backend.inbox.read(GAME, first, 10, 0)] == [b"c2"]

    assert await _lease_free(backend, "usurper", 5.0)
    refused = await backend.snapshots.commit(
        GAME, "owner", 0.3, Snapshot(b"stale", first), [], b"results"
    )
    assert not refused
    assert await backend.snapshots.load(GAME) == Snapshot(b"v1", first)
    assert await backend.outbox.pending() == []


async def test_a_commit_without_a_snapshot_keeps_the_inbox_for_replay(backend: Backend) -> None:
    await backend.bus.subscribe("pq:g:g1")
    await backend.snapshots.create(GAME, JoinCode("ABCDEF"), Snapshot(b"v0"))
    first = await backend.inbox.append(GAME, b"c1")
    second = await backend.inbox.append(GAME, b"c2")
    assert await backend.lease.acquire(GAME, "owner", 5)
    messages = backend.bus.messages()
    assert await backend.snapshots.commit(
        GAME,
        "owner",
        5,
        None,
        [Publication("pq:g:g1", b"receipt")],
        expected_last_id="0-0",
        published_id=second,
    )
    assert await asyncio.wait_for(anext(messages), 5) == ("pq:g:g1", b"receipt")
    # The state and the inbox are as the last snapshot left them; only the progress moved.
    assert await backend.snapshots.load(GAME) == Snapshot(b"v0", published_id=second)
    assert [e[1] for e in await backend.inbox.read(GAME, "0-0", 10, 0)] == [b"c1", b"c2"]
    # The next snapshot trims up to itself and clears the progress mark.
    assert await backend.snapshots.commit(
        GAME, "owner", 5, Snapshot(b"v1", first), [], expected_last_id="0-0"
    )
    assert await backend.snapshots.load(GAME) == Snapshot(b"v1", first)
    assert [e[1] for e in await backend.inbox.read(GAME, first, 10, 0)] == [b"c2"]
    # A commit without a snapshot is fenced like any other.
    assert not await backend.snapshots.commit(
        GAME, "owner", 5, None, [], expected_last_id="0-0", published_id=second
    )
    assert await backend.snapshots.load(GAME) == Snapshot(b"v1", first)


async def test_committed_results_wait_in_the_outbox_until_removed(backend: Backend) -> None:
    await backend.snapshots.create(GAME, JoinCode("ABCDEF"), Snapshot(b"v0"))
    assert await backend.lease.acquire(GAME, "owner", 5)
    assert await backend.snapshots.commit(GAME, "owner", 5, Snapshot(b"v1"), [], b"{}")
    assert await backend.outbox.pending() == [GAME]
    assert await backend.outbox.get(GAME) == b"{}"
    assert await backend.outbox.claim(GAME, "r1", 5)
    assert await backend.outbox.claim(GAME, "r1", 5)  # the holder keeps it
    assert not await backend.outbox.claim(GAME, "r2", 5)
    await backend.outbox.remove(GAME)
    assert await backend.outbox.pending() == []


async def test_a_commit_publishes_to_subscribers(backend: Backend) -> None:
    await backend.bus.subscribe("pq:g:g1")
    await backend.snapshots.create(GAME, JoinCode("ABCDEF"), Snapshot(b"v0"))
    assert await backend.lease.acquire(GAME, "owner", 5)
    messages = backend.bus.messages()
    publications = [Publication("pq:g:g1", b"one"), Publication("pq:g:other", b"nobody")]
    assert await backend.snapshots.commit(GAME, "owner", 5, Snapshot(b"v1"), publications)
    channel, payload = await asyncio.wait_for(anext(messages), 5)
    assert (channel, payload) == ("pq:g:g1", b"one")


async def test_a_commit_over_a_snapshot_someone_else_wrote_is_refused(backend: Backend) -> None:
    await backend.snapshots.create(GAME, JoinCode("ABCDEF"), Snapshot(b"v0"))
    first = await backend.inbox.append(GAME, b"c1")
    assert await backend.lease.acquire(GAME, "a", 5)
    assert await backend.snapshots.commit(
        GAME, "a", 5, Snapshot(b"v1", first), [], expected_last_id="0-0"
    )
    await backend.lease.release(GAME, "a")
    # b owned the game for a moment and committed; a comes back with what it had in memory.
    assert await backend.lease.acquire(GAME, "b", 5)
    second = await backend.inbox.append(GAME, b"c2")
    assert await backend.snapshots.commit(
        GAME, "b", 5, Snapshot(b"v2", second), [], expected_last_id=first
    )
    await backend.lease.release(GAME, "b")
    assert await backend.lease.renew(GAME, "a", 5)
    stale = await backend.snapshots.commit(
        GAME, "a", 5, Snapshot(b"stale", first), [], expected_last_id=first
    )
    assert not stale
    assert await backend.snapshots.load(GAME) == Snapshot(b"v2", second)


async def test_closed_question_logs_are_stored_once_and_loaded_in_order(
    backend: Backend,
) -> None:
    await backend.snapshots.create(GAME, JoinCode("ABCDEF"), Snapshot(b"v0"))
    assert await backend.lease.acquire(GAME, "owner", 5)
    assert await backend.snapshots.commit(
        GAME, "owner", 5, Snapshot(b"v1"), [], new_log=[(0, b"q0")]
    )
    assert await backend.snapshots.commit(GAME, "owner", 5, Snapshot(b"v2"), [])
    logs = [(i, f"q{i}".encode()) for i in range(1, 12)]
    assert await backend.snapshots.commit(GAME, "owner", 5, Snapshot(b"v3"), [], new_log=logs)
    saved = await backend.snapshots.load(GAME)
    assert saved is not None
    assert saved.state == b"v3"
    assert saved.log == tuple(f"q{i}".encode() for i in range(12))


async def test_a_burst_of_appends_waits_for_connections_instead_of_failing(
    fresh_redis_url: str,
) -> None:
    backend = redis_backend(fresh_redis_url, max_connections=4, pool_timeout=10.0)
    try:
        ids = await asyncio.gather(
            *(backend.inbox.append(GAME, f"leave{i}".encode()) for i in range(500))
        )
        assert len(set(ids)) == 500
        entries = await backend.inbox.read(GAME, "0-0", 1000, 0)
        assert sorted(e[1] for e in entries) == sorted(f"leave{i}".encode() for i in range(500))
    finally:
        await backend.close()


async def test_appends_of_several_games_at_once_keep_each_games_order(backend: Backend) -> None:
    games = [GameId(f"{GAME}-{n}") for n in range(3)]
    sent = [(game, f"{game}:{i}".encode()) for i in range(50) for game in games]
    ids = await asyncio.gather(*(backend.inbox.append(game, entry) for game, entry in sent))
    for game in games:
        entries = await backend.inbox.read(game, "0-0", 1000, 0)
        assert [entry for _, entry in entries] == [e for g, e in sent if g == game]
        assert [entry_id for entry_id, _ in entries] == [
            entry_id for (g, _), entry_id in zip(sent, ids, strict=True) if g == game
        ]


async def test_an_owner_starting_over_reads_again_from_its_new_position(backend: Backend) -> None:
    ids = [await backend.inbox.append(GAME, f"e{i}".encode()) for i in range(4)]
    assert [e[0] for e in await backend.inbox.read(GAME, ids[1], 10, 0)] == ids[2:]
    # A new owner loads an older snapshot: it replays from there, entries it saw included.
    assert [e[0] for e in await backend.inbox.read(GAME, ids[0], 10, 0.05)] == ids[1:]
    waiting = asyncio.create_task(backend.inbox.read(GAME, ids[3], 10, 5.0))
    await asyncio.sleep(0.05)
    later = await backend.inbox.append(GAME, b"later")
    assert [e[0] for e in await asyncio.wait_for(waiting, 5)] == [later]


async def test_an_owner_of_many_games_waits_for_all_of_them_on_few_connections(
    fresh_redis_url: str,
) -> None:
    # Each waiting game used to hold a pooled connection: more games than connections
    # stalled every other command until the pool timed out.
    backend = redis_backend(fresh_redis_url, max_connections=8, pool_timeout=2.0)
    games = [GameId(f"many-{i}") for i in range(60)]
    try:
        readers = [asyncio.create_task(backend.inbox.read(g, "0-0", 10, 10.0)) for g in games]
        await asyncio.sleep(0.2)  # every reader is waiting
        assert await backend.lease.acquire(games[0], "owner", 5.0)
        sent = await asyncio.gather(*(backend.inbox.append(g, f"to {g}".encode()) for g in games))
        got = await asyncio.wait_for(asyncio.gather(*readers), 5)
        assert [[e for e in entries] for entries in got] == [
            [(entry_id, f"to {g}".encode())] for g, entry_id in zip(games, sent, strict=True)
        ]
    finally:
        await backend.close()


def test_a_batch_names_its_publisher_and_one_from_an_older_replica_reads_the_same() -> None:
    items = [["question", "{}"]]
    own = Batch(GAME, 1.5, items, "replica-a").encode()
    assert Batch.published_by(own, "replica-a")
    assert not Batch.published_by(own, "replica-b")
    assert not Batch.published_by(own, "")
    assert Batch.decode(own) == Batch(GAME, 1.5, items, "replica-a")
    older = b'{"g":"g1","ts":1.5,"items":[["question","{}"]]}'
    assert not Batch.published_by(older, "replica-a")
    assert Batch.decode(older) == Batch(GAME, 1.5, items)
