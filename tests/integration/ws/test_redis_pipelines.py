"""The Redis backend's own connections: what happens when Redis drops them or stops answering."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from partyquiz_core.ids import GameId
from partyquiz_ws.backends import Backend
from partyquiz_ws.redis_backend import _packed, redis_backend

GAME = GameId("pipes")


async def test_appends_go_on_after_redis_closed_every_connection(
    backend: Backend, admin: aioredis.Redis
) -> None:
    before = [await backend.inbox.append(GAME, f"before{i}".encode()) for i in range(3)]
    killed = await admin.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1  # the backend's pipeline connection among them
    stored = list(before)
    for i in range(3):
        stored.append(await backend.inbox.append(GAME, f"after{i}".encode()))
    entries = await backend.inbox.read(GAME, "0-0", 100, 0)
    assert [entry_id for entry_id, _ in entries] == stored
    assert [payload for _, payload in entries] == [
        *(f"before{i}".encode() for i in range(3)),
        *(f"after{i}".encode() for i in range(3)),
    ]


async def test_a_pipeline_redis_does_not_answer_in_time_fails_and_later_ones_get_their_replies(
    fresh_redis_url: str, admin: aioredis.Redis
) -> None:
    backend = redis_backend(fresh_redis_url, pool_timeout=0.3)
    try:
        await backend.inbox.append(GAME, b"first")
        await admin.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
        try:
            with pytest.raises(TimeoutError):
                await backend.inbox.append(GAME, b"stalled")
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
        # The stalled append's late reply must not be taken for a later command's.
        later = [await backend.inbox.append(GAME, f"later{i}".encode()) for i in range(3)]
        entries = dict(await backend.inbox.read(GAME, "0-0", 100, 0))
        assert [entries[entry_id] for entry_id in later] == [f"later{i}".encode() for i in range(3)]
        assert await backend.ping()
    finally:
        await backend.close()


async def test_appends_made_while_every_connection_is_busy_leave_as_one_command(
    backend: Backend, admin: aioredis.Redis
) -> None:
    warm = await backend.inbox.append(GAME, b"warm")  # the script is loaded
    before = (await admin.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0)
    await admin.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
    try:
        appends = []
        for i in range(40):  # each in a loop turn of its own, the first ones stalled
            appends.append(asyncio.ensure_future(backend.inbox.append(GAME, b"%d" % i)))
            await asyncio.sleep(0)
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
    ids = await asyncio.gather(*appends)
    calls = (await admin.info("commandstats"))["cmdstat_evalsha"]["calls"] - before
    assert calls <= 3  # two stalled pipelines, then everything gathered meanwhile
    entries = await backend.inbox.read(GAME, warm, 100, 0)
    # Every append stored once, under the id it was given. The two stalled pipelines are on
    # connections of their own, so which of them Redis runs first is its choice (the second
    # may still be connecting when the first gets its reply); the rest left together, in order.
    assert dict(entries) == {entry_id: b"%d" % i for i, entry_id in enumerate(ids)}
    gathered = [entry_id for entry_id, _ in entries if entry_id not in ids[:2]]
    assert gathered == ids[2:]


async def test_appends_go_on_after_redis_forgot_its_scripts(
    backend: Backend, admin: aioredis.Redis
) -> None:
    first = await backend.inbox.append(GAME, b"first")
    await admin.script_flush()  # as a restarted Redis has none
    second = await backend.inbox.append(GAME, b"second")
    assert await backend.inbox.read(GAME, "0-0", 10, 0) == [
        (first, b"first"),
        (second, b"second"),
    ]


async def test_appends_made_while_commands_keep_coming_gather_and_leave_as_one_command(
    fresh_redis_url: str, admin: aioredis.Redis
) -> None:
    backend = redis_backend(fresh_redis_url, append_gather=0.5, append_busy=3600.0)
    try:
        # Nothing was appended before: the first append leaves at once (and loads the script).
        warm = await backend.inbox.append(GAME, b"warm")
        before = (await admin.info("commandstats"))["cmdstat_evalsha"]["calls"]
        appends = []
        for i in range(40):  # each in a loop turn of its own, every connection idle
            appends.append(asyncio.ensure_future(backend.inbox.append(GAME, b"%d" % i)))
            await asyncio.sleep(0)
        ids = await asyncio.gather(*appends)
        calls = (await admin.info("commandstats"))["cmdstat_evalsha"]["calls"] - before
        assert calls == 1
        # Each stored once, in the order of the calls, under the id it was given.
        entries = await backend.inbox.read(GAME, warm, 100, 0)
        assert entries == [(entry_id, b"%d" % i) for i, entry_id in enumerate(ids)]
    finally:
        await backend.close()


async def test_appends_still_gathering_when_the_backend_closes_are_refused_not_left_waiting(
    fresh_redis_url: str, admin: aioredis.Redis
) -> None:
    backend = redis_backend(fresh_redis_url, append_gather=3600.0, append_busy=3600.0)
    try:
        await backend.inbox.append(GAME, b"first")
        gathering = asyncio.ensure_future(backend.inbox.append(GAME, b"second"))
        await asyncio.sleep(0)
    finally:
        await backend.close()
    with pytest.raises(ConnectionError):
        await gathering
    entries = await admin.xrange(f"pq:{{{GAME}}}:inbox")
    assert [fields[b"c"] for _, fields in entries] == [b"first"]


def test_commands_are_packed_as_redis_py_packs_them() -> None:
    connection = Connection()
    commands = [
        (("EVALSHA", "a" * 40, 2, "pq:{g}:lease", "pq:{g}:snap", "holder", 5000, 1.25), {}),
        (("SCRIPT LOAD", "return redis.call('GET', KEYS[1])"), {}),
        (("PUBLISH", "pq:g:é", b"\x00\xff" * 5000, memoryview(b"view")), {}),
        (("SET", "k", 0.1, "PX", 10**12), {}),
    ]
    expected = b"".join(connection.pack_commands([args for args, _ in commands]))
    assert b"".join(_packed(connection, commands)) == expected


def test_an_argument_neither_packer_takes_is_refused_as_before() -> None:
    with pytest.raises(DataError):
        _packed(Connection(), [(("SET", "k", True), {})])
