"""One replica owning many games on a real Redis: their per-game commands share commands.

Commits (with or without a snapshot), lease renewals and appends of different games made
together leave as one command, and each game is still fenced on its own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from tests.unit.ws.harness import QUIZ

from partyquiz_core import game
from partyquiz_core.ids import DeviceId, GameId, JoinCode, PlayerId
from partyquiz_ws.backends import Backend, Publication, Snapshot
from partyquiz_ws.engine import KIND_COMMAND, Engine, Envelope, encode_snapshot
from partyquiz_ws.metrics import WsMetrics
from partyquiz_ws.redis_backend import (
    KEY_TTL_SECONDS,
    TTL_SLACK_SECONDS,
    RedisInbox,
    redis_backend,
)
from partyquiz_ws.runner import GameRunner

GAMES = [GameId(f"many{i:02d}") for i in range(20)]
TTL = 30.0


async def _calls(admin: aioredis.Redis) -> dict[str, int]:
    stats = await admin.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {c: n - before.get(c, 0) for c, n in after.items() if n > before.get(c, 0)}


async def _owned(backend: Backend, games: list[GameId], holder: str = "a") -> None:
    for i, game_id in enumerate(games):
        created = await backend.snapshots.create(
            game_id, JoinCode(f"MANY{i:02d}"), Snapshot(state=b"s0")
        )
        assert created
        assert await backend.lease.acquire(game_id, holder, TTL)


async def _commit_all(
    backend: Backend, games: list[GameId], save: bool, round_: int = 1
) -> list[Any]:
    """Each game's commit of round ``round_`` made together, as its reply or its error."""
    done = await asyncio.gather(
        *(
            backend.snapshots.commit(
                game_id,
                "a",
                TTL,
                Snapshot(state=f"s{round_}-{game_id}".encode(), last_id="0-0") if save else None,
                [Publication(f"pq:g:{game_id}", b"frame")],
                expected_last_id="0-0",
                published_id=f"{4 + round_}-0",
                commit_id=f"a:{game_id}:{round_}",
            )
            for game_id in games
        ),
        return_exceptions=True,
    )
    return list(done)


async def test_commits_of_many_games_made_together_are_one_command(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await _owned(backend, GAMES)
    await _commit_all(backend, GAMES[:1], save=False)  # the script is loaded
    before = await _calls(admin)
    assert await _commit_all(backend, GAMES, save=False) == [True] * len(GAMES)
    assert await _commit_all(backend, GAMES, save=True) == [True] * len(GAMES)
    spent = _spent(before, await _calls(admin))
    assert spent["evalsha"] == 2
    # Each commit writes its game's fields with one HSET, whatever it records.
    assert spent["hset"] == 2 * len(GAMES)
    assert "hdel" not in spent
    assert spent["publish"] == 2 * len(GAMES)
    for game_id in GAMES:
        snapshot = await backend.snapshots.load(game_id)
        assert snapshot is not None
        assert snapshot.state == b"s1-" + game_id.encode()
        assert snapshot.commit_id == f"a:{game_id}:1"
        assert snapshot.published_id is None  # a saved snapshot includes what it published


async def test_a_lost_lease_refuses_only_its_own_games_commit_among_many(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await _owned(backend, GAMES)
    lost = GAMES[3]
    await admin.set(f"pq:{{{lost}}}:lease", "b")  # another replica took this one over
    before = await _calls(admin)
    done = await _commit_all(backend, GAMES, save=True)
    assert _spent(before, await _calls(admin))["evalsha"] == 1
    assert done == [game_id != lost for game_id in GAMES]
    kept = await backend.snapshots.load(lost)
    assert kept is not None
    assert kept.state == b"s0"  # the fenced commit wrote nothing
    assert kept.commit_id is None
    assert await admin.get(f"pq:{{{lost}}}:lease") == b"b"
    renewed = await asyncio.gather(*(backend.lease.renew(g, "a", TTL) for g in GAMES))
    assert renewed == [game_id != lost for game_id in GAMES]


async def test_renewals_of_many_games_made_together_are_one_command(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await _owned(backend, GAMES)
    await backend.lease.renew(GAMES[0], "a", TTL)  # the script is loaded
    before = await _calls(admin)
    renewed = await asyncio.gather(*(backend.lease.renew(g, "a", TTL) for g in GAMES))
    assert renewed == [True] * len(GAMES)
    assert _spent(before, await _calls(admin))["evalsha"] == 1


async def test_appends_of_many_games_made_together_are_one_command(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await backend.inbox.append(GAMES[0], b"warm")  # the script is loaded
    before = await _calls(admin)
    ids = await asyncio.gather(*(backend.inbox.append(g, g.encode()) for g in GAMES))
    assert _spent(before, await _calls(admin))["evalsha"] == 1
    for game_id, entry_id in zip(GAMES, ids, strict=True):
        entries = await backend.inbox.read(game_id, "0-0", 10, 0)
        assert entries[-1] == (entry_id, game_id.encode())


async def test_commands_for_many_games_go_on_after_redis_forgot_its_scripts(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await _owned(backend, GAMES)
    assert await _commit_all(backend, GAMES, save=False) == [True] * len(GAMES)
    await admin.script_flush()
    assert await _commit_all(backend, GAMES, save=True) == [True] * len(GAMES)
    renewed = await asyncio.gather(*(backend.lease.renew(g, "a", TTL) for g in GAMES))
    assert renewed == [True] * len(GAMES)


async def test_idle_games_of_one_replica_renew_their_leases_together(
    backend: Backend, admin: aioredis.Redis
) -> None:
    # Owners started at different moments, with nothing to commit: each renews every lease
    # third, and they renew at the same moments, so the renewals are few commands.
    ttl = 0.6
    base, _ = encode_snapshot(game.new_game(GAMES[0], QUIZ), 0)
    engine = Engine(lambda *_: "token")
    metrics = WsMetrics()
    runners: list[GameRunner] = []
    tasks: list[asyncio.Task[None]] = []

    async def nothing(_: GameId) -> None:
        return None

    try:
        for i, game_id in enumerate(GAMES):
            await backend.snapshots.create(game_id, JoinCode(f"IDLE{i:02d}"), Snapshot(state=base))
            runner = GameRunner(
                game_id, backend, engine, "a", ttl, 0.05, metrics, nothing, lambda: None
            )
            runners.append(runner)
            tasks.append(asyncio.create_task(runner.run()))
            await asyncio.sleep(ttl / 3 / len(GAMES))  # spread over a lease third
        for _ in range(1000):  # each owner loads its game
            if all(r.owning for r in runners):
                break
            await asyncio.sleep(0.01)
        assert all(r.owning for r in runners)
        before = await _calls(admin)
        started = time.monotonic()
        await asyncio.sleep(5 * ttl / 3)
        spent = _spent(before, await _calls(admin))
        thirds = (time.monotonic() - started) / (ttl / 3)
        # Every game renewed at least once per lease third ...
        assert spent["pexpire"] >= len(GAMES) * (int(thirds) - 1)
        # ... in two commands per lease third (games renewed on either half of the shared
        # grid), not one per game.
        assert spent["evalsha"] <= 3 * (thirds + 1)
        assert all(r.owning for r in runners)
    finally:
        for runner in runners:
            runner.stop()
        await asyncio.gather(*tasks)


async def test_a_quiet_game_saves_with_a_commit_it_makes_anyway_once_the_save_is_near(
    backend: Backend,
) -> None:
    # A game answered now and then saves its snapshot with the commit of an answer once the
    # save is due within half an interval, not in a commit of its own when it falls due.
    game_id, every = GAMES[0], 2.0
    base, _ = encode_snapshot(game.new_game(game_id, QUIZ), 0)
    await backend.snapshots.create(game_id, JoinCode("QUIET1"), Snapshot(state=base))

    async def nothing(_: GameId) -> None:
        return None

    runner = GameRunner(
        game_id,
        backend,
        Engine(lambda *_: "token"),
        "a",
        3.0,
        0.05,
        WsMetrics(),
        nothing,
        lambda: None,
        snapshot_every=every,
    )
    task = asyncio.create_task(runner.run())

    async def join(i: int) -> str:
        command = game.Join(
            player_id=PlayerId(f"p{i}"), device_id=DeviceId(f"d{i}"), nickname=f"P{i}"
        )
        entry_id = await backend.inbox.append(
            game_id, Envelope(KIND_COMMAND, command, time.time(), "elsewhere", i)
        )
        for _ in range(1000):  # until its commit is in
            snapshot = await backend.snapshots.load(game_id)
            assert snapshot is not None
            if entry_id in (snapshot.published_id, snapshot.last_id):
                return entry_id
            await asyncio.sleep(0.01)
        raise AssertionError("the join was not committed")

    try:
        first = await join(1)
        saved = await backend.snapshots.load(game_id)
        assert saved is not None
        assert saved.last_id == first  # the first change saves at once
        await asyncio.sleep(0.6 * every)  # the next save is due within half an interval
        second = await join(2)
        saved = await backend.snapshots.load(game_id)
        assert saved is not None
        assert saved.last_id == second
        assert saved.published_id is None
    finally:
        runner.stop()
        await task


async def test_saves_push_the_expiry_of_their_games_keys_back_only_when_it_came_closer(
    backend: Backend, admin: aioredis.Redis
) -> None:
    game_id = GAMES[0]
    await _owned(backend, [game_id])
    snap, inbox = f"pq:{{{game_id}}}:snap", f"pq:{{{game_id}}}:inbox"
    ids = [await backend.inbox.append(game_id, b"c%d" % i) for i in range(3)]

    async def save(last_id: str, expected: str) -> None:
        snapshot = Snapshot(state=last_id.encode(), last_id=last_id)
        assert await backend.snapshots.commit(
            game_id, "a", TTL, snapshot, [], expected_last_id=expected
        )

    before = await _calls(admin)
    await save(ids[0], "0-0")  # the inbox had no expiry yet
    assert 0 < await admin.ttl(inbox) <= KEY_TTL_SECONDS
    await save(ids[1], ids[0])
    assert _spent(before, await _calls(admin))["expire"] == 2  # the first save's only
    # Once the expiry has come within the slack, the next save pushes it back.
    await admin.expire(snap, KEY_TTL_SECONDS - TTL_SLACK_SECONDS - 5)
    await admin.expire(inbox, KEY_TTL_SECONDS - TTL_SLACK_SECONDS - 5)
    await save(ids[2], ids[1])
    assert await admin.ttl(snap) > KEY_TTL_SECONDS - TTL_SLACK_SECONDS
    assert await admin.ttl(inbox) > KEY_TTL_SECONDS - TTL_SLACK_SECONDS
    assert [e[0] for e in await backend.inbox.read(game_id, "0-0", 10, 0)] == ids[2:]


WAITING = [GameId(f"wait{i:03d}") for i in range(200)]


async def _waiting_reads(backend: Backend, after: dict[GameId, str]) -> dict[GameId, Any]:
    return {
        game_id: asyncio.ensure_future(backend.inbox.read(game_id, after[game_id], 512, 30.0))
        for game_id in WAITING
    }


async def test_an_answer_to_one_of_many_waiting_games_costs_no_read_naming_them_all(
    fresh_redis_url: str, admin: aioredis.Redis
) -> None:
    # The owner "a" of 200 games waits for each one's commands; no periodic read of every
    # inbox in this test (feed_scan), only word from the appends.
    backend = redis_backend(fresh_redis_url, replica_id="a", feed_scan=3600.0)
    try:
        for game_id in WAITING:
            assert await backend.lease.acquire(game_id, "a", TTL)
        # Every game's owner waits; each gets a first command, so all are in the shared read.
        reads = await _waiting_reads(backend, dict.fromkeys(WAITING, "0-0"))
        firsts = await asyncio.gather(*(backend.inbox.append(g, b"first") for g in WAITING))
        after = {}
        for (game_id, read), first in zip(reads.items(), firsts, strict=True):
            assert await read == [(first, b"first")]
            after[game_id] = first
        reads = await _waiting_reads(backend, after)
        before = (await admin.info("stats"))["total_net_input_bytes"]
        for game_id in WAITING[:20]:  # one answer at a time, each read by its waiting owner
            entry_id = await backend.inbox.append(game_id, b"answer")
            assert await reads[game_id] == [(entry_id, b"answer")]
        received = (await admin.info("stats"))["total_net_input_bytes"] - before
        # Appending and reading an answer takes a few hundred bytes; a read naming the 200
        # streams (as the shared read did after every answer) alone takes over 7,000.
        assert received / 20 < 2000
        for read in reads.values():
            read.cancel()
    finally:
        await backend.close()


async def test_commands_appended_without_word_still_reach_their_waiting_owner(
    fresh_redis_url: str, admin: aioredis.Redis
) -> None:
    # A replica of an earlier version appends with a plain XADD and names no game.
    backend = redis_backend(fresh_redis_url, replica_id="a")
    try:
        game_id = WAITING[0]
        assert await backend.lease.acquire(game_id, "a", TTL)
        read = asyncio.ensure_future(backend.inbox.read(game_id, "0-0", 512, 30.0))
        entry_id = await admin.xadd(f"pq:{{{game_id}}}:inbox", {b"c": b"old"})
        assert await read == [(entry_id.decode(), b"old")]
    finally:
        await backend.close()


async def test_appends_name_their_game_only_where_its_owner_keeps_a_notify_stream(
    fresh_redis_url: str, admin: aioredis.Redis
) -> None:
    backend = redis_backend(fresh_redis_url, replica_id="a")
    try:
        kept, gone = WAITING[0], WAITING[1]
        assert await backend.lease.acquire(kept, "a", TTL)
        assert await backend.lease.acquire(gone, "gone", TTL)
        # The owner's shared read makes its stream before it first reads.
        first = await backend.inbox.append(kept, b"first")
        assert await backend.inbox.read(kept, "0-0", 512, 30.0) == [(first, b"first")]
        read = asyncio.ensure_future(backend.inbox.read(kept, first, 512, 30.0))
        entry_id = await backend.inbox.append(kept, b"kept")
        assert await read == [(entry_id, b"kept")]
        await backend.inbox.append(gone, b"nobody reads")
        # The owner's stream expires unless the owner keeps it; nobody keeps "gone"'s.
        assert 0 < await admin.pttl("pq:notify:a") <= 30_000
        named = [f.get(b"g") for _, f in await admin.xrange("pq:notify:a")]
        assert kept.encode() in named
        assert gone.encode() not in named
        assert not await admin.exists("pq:notify:gone")
    finally:
        await backend.close()


async def test_the_shared_read_fetches_on_its_own_connection_not_behind_other_commands(
    fresh_redis_url: str,
) -> None:
    owner = redis_backend(fresh_redis_url, replica_id="a", feed_scan=3600.0)
    other = redis_backend(fresh_redis_url, replica_id="b")  # a replica its players are on
    try:
        game_id = WAITING[0]
        assert await owner.lease.acquire(game_id, "a", TTL)
        first = await owner.inbox.append(game_id, b"first")
        assert await owner.inbox.read(game_id, "0-0", 512, 30.0) == [(first, b"first")]
        read = asyncio.ensure_future(owner.inbox.read(game_id, first, 512, 30.0))
        # Both connections of the owner's pipelines busy with a command Redis holds (as with
        # the long commits of many games at once): one pipeline each, in turns of their own.
        pipeliner = cast(RedisInbox, owner.inbox)._pipeliner
        busy = []
        for _ in range(2):
            busy.append(
                asyncio.ensure_future(pipeliner.call(lambda pipe: pipe.blpop(["none"], 20)))
            )
            await asyncio.sleep(0)
        entry_id = await other.inbox.append(game_id, b"answer")
        assert await read == [(entry_id, b"answer")]
        assert not any(command.done() for command in busy)
    finally:
        await owner.close()
        await other.close()


async def test_a_game_whose_key_is_damaged_fails_alone_among_many_commits(
    backend: Backend, admin: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # One game's snapshot is not a hash any more (a damaged key): its run of the commands
    # made for many games together fails with Redis's error, and only its run; the games
    # before and after it in the same command are committed and told so.
    await _owned(backend, GAMES)
    await _commit_all(backend, GAMES[:1], save=False)  # the script is loaded
    damaged = GAMES[7]
    await admin.set(f"pq:{{{damaged}}}:snap", b"not a hash")
    for attempt in range(3):
        if attempt == 2:
            await admin.script_flush()  # the command is run again once the script is loaded
        caplog.clear()
        before = await _calls(admin)
        done = await _commit_all(backend, GAMES, save=attempt != 1, round_=2)
        if attempt < 2:
            assert _spent(before, await _calls(admin))["evalsha"] == 1
        for game_id, reply in zip(GAMES, done, strict=True):
            if game_id == damaged:
                assert isinstance(reply, ResponseError)
                assert str(reply).startswith("WRONGTYPE")
            else:
                assert reply is True, (game_id, reply)
        failed = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.getMessage().count(damaged) for r in failed] == [1]
    assert await admin.get(f"pq:{{{damaged}}}:snap") == b"not a hash"
    for game_id in GAMES:
        if game_id != damaged:
            snapshot = await backend.snapshots.load(game_id)
            assert snapshot is not None
            assert snapshot.state == b"s2-" + game_id.encode()
            assert snapshot.commit_id == f"a:{game_id}:2"
    # The damaged game's lease still renews (its key is fine) and the others' do too.
    renewed = await asyncio.gather(*(backend.lease.renew(g, "a", TTL) for g in GAMES))
    assert renewed == [True] * len(GAMES)


async def test_a_game_whose_lease_key_is_damaged_fails_alone_among_many_renewals(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await _owned(backend, GAMES)
    await backend.lease.renew(GAMES[0], "a", TTL)  # the script is loaded
    damaged = GAMES[0]
    await admin.delete(f"pq:{{{damaged}}}:lease")
    await admin.hset(f"pq:{{{damaged}}}:lease", "holder", "a")
    renewed = await asyncio.gather(
        *(backend.lease.renew(g, "a", TTL) for g in GAMES), return_exceptions=True
    )
    assert isinstance(renewed[0], ResponseError)
    assert renewed[1:] == [True] * (len(GAMES) - 1)


async def test_submitters_of_a_refused_append_are_each_told_why(
    backend: Backend, admin: aioredis.Redis
) -> None:
    # The entries submitted for a damaged inbox are refused together; each submitter hears
    # Redis's error once, and the other game's submitters of the same command hear success.
    await backend.inbox.append(GAMES[0], b"warm")  # the script is loaded
    damaged = GAMES[1]
    await admin.set(f"pq:{{{damaged}}}:inbox", b"not a stream")
    told: dict[tuple[str, int], list[BaseException | None]] = {}
    everyone = asyncio.Event()

    def stored(key: tuple[str, int], failure: BaseException | None) -> None:
        told.setdefault(key, []).append(failure)
        if len(told) == 6:
            everyone.set()

    for game_id in (GAMES[0], damaged):
        for index in range(3):
            key = (game_id, index)
            backend.inbox.submit(game_id, b"e%d" % index, functools.partial(stored, key))
    await asyncio.wait_for(everyone.wait(), 5)
    await asyncio.sleep(0.05)  # nobody is told twice
    for (game_id, _), failures in told.items():
        assert len(failures) == 1
        if game_id == damaged:
            assert isinstance(failures[0], ResponseError)
        else:
            assert failures[0] is None
    entries = await backend.inbox.read(GAMES[0], "0-0", 10, 0)
    assert [e[1] for e in entries] == [b"warm", b"e0", b"e1", b"e2"]


async def test_the_inbox_reads_entries_over_resp3_too(fresh_redis_url: str) -> None:
    # Redis's RESP3 replies of XREAD are a map of streams, not a list of pairs.
    backend = redis_backend(fresh_redis_url + "?protocol=3")
    try:
        ids = [await backend.inbox.append(GAMES[0], b"e%d" % i) for i in range(3)]
        entries = await backend.inbox.read(GAMES[0], "0-0", 10, 0)
        assert entries == [(ids[i], b"e%d" % i) for i in range(3)]
        waiting = asyncio.ensure_future(backend.inbox.read(GAMES[0], ids[2], 10, 5.0))
        await asyncio.sleep(0.05)  # the shared read waits
        later = await backend.inbox.append(GAMES[0], b"later")
        assert await asyncio.wait_for(waiting, 5) == [(later, b"later")]
    finally:
        await backend.close()


async def test_a_game_whose_inbox_is_damaged_has_its_appends_refused_alone(
    backend: Backend, admin: aioredis.Redis
) -> None:
    # Its answers are refused (a player is told ``unavailable``); the other games' appends
    # of the same command are stored and their ids returned, now and in later commands.
    await backend.inbox.append(GAMES[0], b"warm")  # the script is loaded
    damaged = GAMES[11]
    await admin.set(f"pq:{{{damaged}}}:inbox", b"not a stream")
    for attempt in range(3):
        if attempt == 2:
            await admin.script_flush()
        before = await _calls(admin)
        ids = await asyncio.gather(
            *(backend.inbox.append(g, f"{g}-{attempt}".encode()) for g in GAMES),
            return_exceptions=True,
        )
        if attempt < 2:
            assert _spent(before, await _calls(admin))["evalsha"] == 1
        for game_id, entry_id in zip(GAMES, ids, strict=True):
            if game_id == damaged:
                assert isinstance(entry_id, ResponseError)
                continue
            assert isinstance(entry_id, str), (game_id, entry_id)
            entries = await backend.inbox.read(game_id, "0-0", 10, 0)
            assert entries[-1] == (entry_id, f"{game_id}-{attempt}".encode())
            assert len(entries) == attempt + 1 + (game_id == GAMES[0])  # each stored once
    assert await admin.get(f"pq:{{{damaged}}}:inbox") == b"not a stream"


async def test_a_damaged_inbox_does_not_hold_up_the_reads_of_the_other_owned_games(
    fresh_redis_url: str, admin: aioredis.Redis
) -> None:
    # One of the 200 inboxes "a" owns and waits on is not a stream: Redis refuses any read
    # naming it, the periodic read of every inbox included. Its owner hears why; the other
    # owners get their commands as before.
    backend = redis_backend(fresh_redis_url, replica_id="a", feed_scan=0.05)
    damaged = WAITING[17]
    try:
        for game_id in WAITING:
            assert await backend.lease.acquire(game_id, "a", TTL)
        await admin.set(f"pq:{{{damaged}}}:inbox", b"not a stream")
        reads = await _waiting_reads(backend, dict.fromkeys(WAITING, "0-0"))
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await asyncio.wait_for(reads.pop(damaged), 5)
        for _ in range(3):  # read again and again, as the shared read goes on
            for game_id in WAITING[:10]:
                entry_id = await backend.inbox.append(game_id, b"answer")
                assert await asyncio.wait_for(reads[game_id], 5) == [(entry_id, b"answer")]
                reads[game_id] = asyncio.ensure_future(
                    backend.inbox.read(game_id, entry_id, 512, 30.0)
                )
        # Its owner's next read is tried again, and refused again while the key stays so.
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await asyncio.wait_for(backend.inbox.read(damaged, "0-0", 512, 30.0), 5)
        await admin.delete(f"pq:{{{damaged}}}:inbox")
        retried = asyncio.ensure_future(backend.inbox.read(damaged, "0-0", 512, 30.0))
        entry_id = await backend.inbox.append(damaged, b"repaired")
        assert await asyncio.wait_for(retried, 5) == [(entry_id, b"repaired")]
        for read in reads.values():
            read.cancel()
    finally:
        await backend.close()
