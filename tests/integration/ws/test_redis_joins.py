"""A join attempt on Redis: the code lookup and every count of it in one command, on the keys
and with the meanings the separate commands of earlier versions had (so that replicas of both
versions side by side share one set of limits)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
from tests.unit.ws.harness import Clock, Peer, create_game, running_service

from partyquiz_core.ids import GameId, JoinCode
from partyquiz_ws.backends import Admission, Backend, Snapshot
from partyquiz_ws.fanout import KICK_BANS_WAIT_S
from partyquiz_ws.redis_backend import redis_backend

GAME = GameId("game-joins")
CODE = JoinCode("JNJNJN")
WINDOW = 10.0
WRONG_WINDOW = 60.0
NOW = 1_800_000_000.0  # at the start of both windows
BUCKET = int(NOW // WINDOW)
KEYS = ["nickname:ada", "nickname-case:ada", "device:d-1"]


async def _calls(admin: aioredis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = await admin.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    changed = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in changed.items() if v and k not in ("info", "hello")}


async def _game(backend: Backend) -> None:
    assert await backend.snapshots.create(GAME, CODE, Snapshot(state=b"{}"))


async def _admit(
    backend: Backend,
    code: JoinCode | None = CODE,
    address: str = "198.51.100.1",
    player: str = "p-1",
    keys: list[str] | None = KEYS,
    wrong_limit: int = 20,
) -> Admission:
    return await backend.limits.admit_join(
        code, address, player, keys, wrong_limit, WRONG_WINDOW, WINDOW, NOW
    )


async def test_a_join_attempt_is_looked_up_and_counted_by_one_command(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await _game(backend)
    await _admit(backend, address="192.0.2.9", player="p-0")  # Redis learns the script
    before = await _calls(admin)
    admission = await _admit(backend)
    calls = _delta(before, await _calls(admin))
    assert admission == Admission(0, GAME, 1, 2, False)
    # One command from the replica; inside it, what ten commands in four round trips did.
    assert calls.pop("evalsha") == 1
    assert calls == {
        "get": 2,
        "incr": 2,
        "pexpire": 2,
        "smismember": 1,
        "hset": 1,
        "expire": 1,
    }


async def test_join_attempts_made_together_are_one_command(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await _game(backend)
    await _admit(backend, address="192.0.2.9", player="p-0")  # Redis learns the script
    before = await _calls(admin)
    admissions = await asyncio.gather(
        *(_admit(backend, player=f"p-{i}", keys=[f"device:d-{i}"]) for i in range(1, 21))
    )
    calls = _delta(before, await _calls(admin))
    assert calls["evalsha"] == 1
    assert sorted(a.game_joins for a in admissions) == list(range(2, 22))
    assert sorted(a.address_joins for a in admissions) == list(range(1, 21))
    assert {a.game_id for a in admissions} == {GAME}


async def test_join_counts_and_bans_are_the_keys_earlier_versions_read_and_write(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await _game(backend)
    # What replicas of an earlier version counted and banned, with their separate commands.
    by_game = f"pq:limit:join-game:{GAME}:{BUCKET}"
    by_address = f"pq:limit:join-address:198.51.100.1:{BUCKET}"
    await admin.set(by_game, 299)
    await admin.set(by_address, 29)
    await admin.sadd(f"pq:{{{GAME}}}:bans", "device:d-1")
    admission = await _admit(backend)
    assert admission == Admission(0, GAME, 30, 300, True)
    # And what they read: the same counts, expiring after their window, and the keys kept
    # for a kick of this player, space-separated.
    assert await admin.get(by_game) == b"300"
    assert 0 < await admin.pttl(by_game) <= (WINDOW + 1) * 1000
    assert 0 < await admin.pttl(by_address) <= (WINDOW + 1) * 1000
    kept = f"pq:{{{GAME}}}:player-keys"
    assert await admin.hget(kept, "p-1") == " ".join(KEYS).encode()
    assert await admin.ttl(kept) > 0


async def test_wrong_codes_are_counted_and_at_the_limit_nothing_is_looked_up_or_counted(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await _game(backend)
    wrong = f"pq:limit:wrong:198.51.100.1:{int(NOW // WRONG_WINDOW)}"
    assert await _admit(backend, code=JoinCode("ZZZZZZ"), wrong_limit=2) == Admission(0, None)
    assert await _admit(backend, code=None, wrong_limit=2) == Admission(1, None)  # not a code
    assert await admin.get(wrong) == b"2"
    assert 0 < await admin.pttl(wrong) <= (WRONG_WINDOW + 1) * 1000
    # At the limit, even the right code is not looked up, and nothing more is counted.
    assert await _admit(backend, wrong_limit=2) == Admission(2, None)
    assert await admin.get(wrong) == b"2"
    assert await admin.keys("pq:limit:join-*") == []
    # Another address is not limited.
    assert (await _admit(backend, address="198.51.100.2", wrong_limit=2)).game_id == GAME


async def test_an_attempt_refused_before_it_counts_finds_its_game_and_counts_no_join(
    backend: Backend, admin: aioredis.Redis
) -> None:
    await _game(backend)
    assert await _admit(backend, keys=None) == Admission(0, GAME)
    assert await admin.keys("pq:limit:*") == []
    assert await admin.exists(f"pq:{{{GAME}}}:player-keys") == 0


async def test_a_players_join_sends_no_lookup_or_counter_command_of_its_own(
    fresh_redis_url: str, admin: aioredis.Redis
) -> None:
    backend = redis_backend(fresh_redis_url)
    try:
        async with running_service(backend, clock=Clock.at_window_start(60)) as svc:
            game_id, code = await create_game(backend)
            host = await Peer.hosting(svc.url, game_id, code)
            async with admin.monitor() as monitor:
                player = await Peer.open(svc.url)
                assert (await player.join(code, "Watched"))["type"] == "welcome"
                marker = f"end-of-join-{time.time()}"
                await admin.echo(marker)
                sent: list[str] = []
                async with asyncio.timeout(10):
                    while True:
                        seen = await monitor.next_command()
                        if marker in seen["command"]:
                            break
                        if seen["client_type"] != "lua":
                            sent.append(seen["command"])
            await player.close()
            await host.close()
    finally:
        await backend.close()
    touching = [c for c in sent if "pq:code:" in c or "pq:limit:" in c or "pq:conns:" in c]
    # The connection counted by one command, the attempt looked up and counted by another.
    assert [c.split(" ", 1)[0] for c in touching] == ["EVALSHA", "EVALSHA"]
    assert "pq:conns:" in touching[0]
    assert f"pq:code:{code}" in touching[1]
    assert not any(c.startswith(("GET ", "INCR ", "SMISMEMBER ")) for c in sent)


def _later(call: Any, seconds: float) -> Any:
    """``call``, started ``seconds`` late."""

    async def later(*args: Any) -> Any:
        await asyncio.sleep(seconds)
        return await call(*args)

    return later


async def test_a_kick_on_one_replica_bans_the_players_keys_from_joins_on_the_other(
    fresh_redis_url: str,
) -> None:
    first, second = redis_backend(fresh_redis_url), redis_backend(fresh_redis_url)
    for backend in (first, second):  # bans that take a while to reach Redis, as under load
        backend.limits.ban = _later(backend.limits.ban, 0.3)  # type: ignore[method-assign]
    try:
        async with (
            running_service(first, replica_id="replica-a") as a,
            running_service(second, replica_id="replica-b") as b,
        ):
            game_id, code = await create_game(first)
            host = await Peer.hosting(a.url, game_id, code)  # a owns the game

            async def join_on_b(address: str, nickname: str, device: str) -> dict[str, Any]:
                peer = await Peer.open(b.url, additional_headers={"X-Forwarded-For": address})
                return await peer.join(code, nickname, device_id=device)

            victim = await Peer.open(b.url, additional_headers={"X-Forwarded-For": "198.51.100.7"})
            welcome = await victim.join(code, "Mallory", device_id="device-1")
            await host.send(type="kick", player_id=welcome["player_id"])
            # b closes the connection once the ban is recorded (it waits up to KICK_BANS_WAIT_S).
            _, closed_with = await victim.until_closed()
            assert closed_with == 4003
            assert (await join_on_b("198.51.100.7", "Someone", "device-2"))["code"] == "banned"
            assert (await join_on_b("192.0.2.1", "MALL0RY", "device-3"))["code"] == "banned"
            assert (await join_on_b("192.0.2.2", "Trudy", "device-1"))["code"] == "banned"
            assert (await join_on_b("192.0.2.3", "Walter", "device-4"))["type"] == "welcome"
            await host.close()
    finally:
        await first.close()
        await second.close()


async def test_a_kicked_player_is_closed_even_when_its_ban_never_gets_an_answer(
    fresh_redis_url: str,
) -> None:
    backend = redis_backend(fresh_redis_url)
    backend.limits.ban = _later(backend.limits.ban, 3600)  # type: ignore[method-assign]
    try:
        async with running_service(backend) as service:
            game_id, code = await create_game(backend)
            host = await Peer.hosting(service.url, game_id, code)
            victim = await Peer.open(service.url)
            welcome = await victim.join(code, "Mallory", device_id="device-1")
            started = time.monotonic()
            await host.send(type="kick", player_id=welcome["player_id"])
            _, closed_with = await victim.until_closed()
            assert closed_with == 4003
            assert time.monotonic() - started < KICK_BANS_WAIT_S + 2
            await host.close()
    finally:
        await backend.close()


async def test_connections_opened_together_are_one_command_and_keep_their_limit(
    backend: Backend, admin: aioredis.Redis
) -> None:
    limits = backend.limits
    await limits.heartbeat("replica-a", 60.0, time.time())
    assert await limits.open_connection("192.0.2.9", "replica-a", 5)  # Redis learns the script
    before = await _calls(admin)
    opened = await asyncio.gather(
        *(limits.open_connection("198.51.100.1", "replica-a", 3) for _ in range(5))
    )
    assert _delta(before, await _calls(admin))["evalsha"] == 1
    assert sorted(opened) == [False, False, True, True, True]
    before = await _calls(admin)
    await asyncio.gather(*(limits.close_connection("198.51.100.1", "replica-a") for _ in range(3)))
    assert _delta(before, await _calls(admin))["evalsha"] == 1
    assert await admin.hgetall("pq:conns:198.51.100.1") == {}


async def test_a_join_redis_does_not_answer_is_refused_as_unavailable(
    fresh_redis_url: str, admin: aioredis.Redis
) -> None:
    backend = redis_backend(fresh_redis_url, pool_timeout=0.3)
    try:
        async with running_service(backend) as svc:
            game_id, code = await create_game(backend)
            host = await Peer.hosting(svc.url, game_id, code)
            player = await Peer.open(svc.url)
            await player.send(type="ping", t=0)
            await player.expect("pong")  # its connection is counted
            await admin.execute_command("CLIENT", "PAUSE", "3000", "ALL")
            try:
                assert (await player.join(code, "Patient"))["code"] == "unavailable"
            finally:
                await admin.execute_command("CLIENT", "UNPAUSE")
            retry = await Peer.open(svc.url)
            assert (await retry.join(code, "Patient"))["type"] == "welcome"
            for peer in (host, player, retry):
                await peer.close()
    finally:
        await backend.close()
