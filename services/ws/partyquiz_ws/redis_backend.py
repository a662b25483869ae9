"""Redis backend: the storage interfaces on Redis, so any number of replicas share games.

Owns key names and the Lua scripts that make ownership safe: the lease is ``SET NX PX``;
a commit (renew lease, save snapshot, trim the inbox stream, queue results, publish) runs as one
script that first checks the lease, so a replica that lost a game can never overwrite it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from partyquiz_core.ids import GameId, JoinCode
from partyquiz_ws.backends import (
    START_ID,
    Backend,
    JoinTally,
    Payload,
    Publication,
    Snapshot,
    payload_bytes,
)

KEY_TTL_SECONDS = 24 * 3600
# Appends in flight at once: pipelines (each on a pooled connection) and entries per pipeline.
MAX_APPEND_PIPELINES = 4
MAX_APPEND_BATCH = 512
PENDING_RESULTS = "pq:results:pending"


def _inbox_key(game_id: str) -> str:
    return f"pq:{{{game_id}}}:inbox"


def _snapshot_key(game_id: str) -> str:
    return f"pq:{{{game_id}}}:snap"


def _lease_key(game_id: str) -> str:
    return f"pq:{{{game_id}}}:lease"


def _results_key(game_id: str) -> str:
    return f"pq:results:{game_id}"


def _code_key(join_code: str) -> str:
    return f"pq:code:{join_code}"


def _window_key(name: str, subject: str, window: float, now: float) -> str:
    return f"pq:limit:{name}:{subject}:{int(now // window)}"


def _bans_key(game_id: str) -> str:
    return f"pq:{{{game_id}}}:bans"


def _player_keys_key(game_id: str) -> str:
    return f"pq:{{{game_id}}}:player-keys"


# KEYS: bans set, player-keys hash; ARGV: player id, key ttl, then keys to ban
_BAN = """
local kept = redis.call('HGET', KEYS[2], ARGV[1])
local keys = {}
for i = 3, #ARGV do keys[#keys + 1] = ARGV[i] end
if kept then
  for key in string.gmatch(kept, '[^ ]+') do keys[#keys + 1] = key end
end
if #keys > 0 then
  redis.call('SADD', KEYS[1], unpack(keys))
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return #keys
"""


def _connections_key(address: str) -> str:
    return f"pq:conns:{address}"


def _replica_key(replica: str) -> str:
    return f"pq:replica:{replica}"


# Count a connection of an address on a replica unless the address already holds the limit on
# live replicas; a replica whose heartbeat key is gone (crashed) no longer counts.
# KEYS: the address's hash of counts per replica; ARGV: replica, limit, key ttl, heartbeat prefix
_OPEN_CONNECTION = """
local counts = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #counts, 2 do
  local replica = counts[i]
  if replica ~= ARGV[1] and redis.call('EXISTS', ARGV[4] .. replica) == 0 then
    redis.call('HDEL', KEYS[1], replica)
  else
    total = total + tonumber(counts[i + 1])
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

_CLOSE_CONNECTION = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
"""


# Renew, or take back a lapsed lease nobody else took (commits are fenced by last_id too).
_RENEW = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'last_id', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
return 1
"""

# KEYS: lease, snapshot, inbox, results, pending-results set
# ARGV: holder, ttl_ms, save ('1' = save the snapshot, else only record the published id),
#       state, last_id, published id, has_results, results, game_id, key_ttl,
#       expected last_id ('' = any), n log entries, then n (field, entry) pairs, then
#       channel/payload pairs to publish
_COMMIT = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
if ARGV[11] ~= '' and redis.call('HGET', KEYS[2], 'last_id') ~= ARGV[11] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local n = tonumber(ARGV[12])
local i = 13
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], 'state', ARGV[4], 'last_id', ARGV[5])
  redis.call('HDEL', KEYS[2], 'published_id')
  redis.call('EXPIRE', KEYS[2], ARGV[10])
  if ARGV[5] ~= '0-0' then
    redis.call('XTRIM', KEYS[3], 'MINID', ARGV[5])
    redis.call('EXPIRE', KEYS[3], ARGV[10])
  end
  for _ = 1, n do
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
else
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'published_id', ARGV[6]) end
  i = i + 2 * n
end
if ARGV[7] == '1' then
  redis.call('SET', KEYS[4], ARGV[8])
  redis.call('SADD', KEYS[5], ARGV[9])
end
while i < #ARGV do
  redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
  i = i + 2
end
return 1
"""


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisInbox:
    """Appends go out as they come, in pipelines: every append made while the previous
    pipeline was on its way leaves in the next one, so a burst of 10 000 answers takes a few
    hundred round trips instead of 10 000 (each of which waited for a pooled connection).
    An append returns once Redis has stored its entry, as before."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._queue: list[tuple[str, bytes, asyncio.Future[str]]] = []
        self._sending = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def append(self, game_id: GameId, entry: Payload) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append((_inbox_key(game_id), payload_bytes(entry), future))
        if self._sending < MAX_APPEND_PIPELINES:
            self._send_next()
        return await future

    def _send_next(self) -> None:
        if not self._queue:
            return
        batch, self._queue = self._queue[:MAX_APPEND_BATCH], self._queue[MAX_APPEND_BATCH:]
        self._sending += 1
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[str, bytes, asyncio.Future[str]]]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, payload, _ in batch:
                    pipe.xadd(key, {b"c": payload})
                results = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection failed: every append of it failed
            results = [exc] * len(batch)
        finally:
            self._sending -= 1
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(_str(result))
        self._send_next()

    async def read(
        self, game_id: GameId, after: str, count: int, wait: float
    ) -> list[tuple[str, Payload]]:
        block = _ms(wait) if wait > 0 else None
        reply: Any = await self._client.xread(
            {_inbox_key(game_id): after}, count=count, block=block
        )
        out: list[tuple[str, Payload]] = []
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                out.append((_str(entry_id), _bytes(fields[b"c"])))
        return out


class RedisLease:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def acquire(self, game_id: GameId, holder: str, ttl: float) -> bool:
        if await self._client.set(_lease_key(game_id), holder, nx=True, px=_ms(ttl)):
            return True
        return await self.renew(game_id, holder, ttl)

    async def renew(self, game_id: GameId, holder: str, ttl: float) -> bool:
        return bool(await self._renew(keys=[_lease_key(game_id)], args=[holder, _ms(ttl)]))

    async def release(self, game_id: GameId, holder: str) -> None:
        await self._release(keys=[_lease_key(game_id)], args=[holder])


class RedisSnapshots:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._create = client.register_script(_CREATE)
        self._commit = client.register_script(_COMMIT)

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def load(self, game_id: GameId) -> Snapshot | None:
        fields: dict[Any, Any] = await self._client.hgetall(_snapshot_key(game_id))
        named = {_str(k): v for k, v in fields.items()}
        if "state" not in named:
            return None
        log = tuple(_bytes(named[k]) for k in sorted(k for k in named if k.startswith("log:")))
        published = named.get("published_id")
        return Snapshot(
            state=_bytes(named["state"]),
            last_id=_str(named.get("last_id") or b"0-0"),
            log=log,
            published_id=None if published is None else _str(published),
        )

    async def exists(self, game_id: GameId) -> bool:
        return bool(await self._client.exists(_snapshot_key(game_id)))

    async def phase(self, game_id: GameId) -> str | None:
        state = await self._client.hget(_snapshot_key(game_id), "state")
        return None if state is None else str(orjson.loads(state)["phase"])

    async def create(self, game_id: GameId, join_code: JoinCode, snapshot: Snapshot) -> bool:
        created = await self._create(
            keys=[_snapshot_key(game_id), _code_key(join_code)],
            args=[snapshot.state, snapshot.last_id, game_id, KEY_TTL_SECONDS],
        )
        return bool(created)

    async def find_game(self, join_code: JoinCode) -> GameId | None:
        value = await self._client.get(_code_key(join_code))
        return None if value is None else GameId(_str(value))

    async def commit(
        self,
        game_id: GameId,
        holder: str,
        ttl: float,
        snapshot: Snapshot | None,
        publications: list[Publication],
        results: bytes | None = None,
        expected_last_id: str | None = None,
        new_log: Sequence[tuple[int, bytes]] = (),
        published_id: str | None = None,
    ) -> bool:
        if snapshot is None:
            new_log = ()
        args: list[Any] = [
            holder,
            _ms(ttl),
            "0" if snapshot is None else "1",
            b"" if snapshot is None else snapshot.state,
            START_ID if snapshot is None else snapshot.last_id or START_ID,
            published_id or "",
            "1" if results is not None else "0",
            results or b"",
            game_id,
            KEY_TTL_SECONDS,
            expected_last_id or "",
            len(new_log),
        ]
        for index, entry in new_log:
            args.append(f"log:{index:04d}")
            args.append(entry)
        for publication in publications:
            args.append(publication.channel)
            args.append(payload_bytes(publication.payload))
        keys = [
            _lease_key(game_id),
            _snapshot_key(game_id),
            _inbox_key(game_id),
            _results_key(game_id),
            PENDING_RESULTS,
        ]
        return bool(await self._commit(keys=keys, args=args))


class RedisBus:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)

    async def publish(self, publication: Publication) -> None:
        await self._client.publish(publication.channel, payload_bytes(publication.payload))

    async def subscribe(self, channel: str) -> None:
        await self._pubsub.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._pubsub.unsubscribe(channel)

    async def messages(self) -> AsyncIterator[tuple[str, bytes]]:
        while True:
            if not self._pubsub.subscribed:
                # get_message returns at once while nothing is subscribed yet.
                message = None
                await asyncio.sleep(0.05)
            else:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            yield (
                channel.decode() if isinstance(channel, bytes) else str(channel),
                cast(bytes, message["data"]),
            )

    async def close(self) -> None:
        with contextlib.suppress(RedisError, RuntimeError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]


class RedisOutbox:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def pending(self) -> list[GameId]:
        members = await self._client.smembers(PENDING_RESULTS)
        return [GameId(_str(m)) for m in members]

    async def get(self, game_id: GameId) -> bytes | None:
        value = await self._client.get(_results_key(game_id))
        return None if value is None else _bytes(value)

    async def claim(self, game_id: GameId, holder: str, ttl: float) -> bool:
        key = _results_key(game_id) + ":claim"
        if await self._client.set(key, holder, nx=True, px=_ms(ttl)):
            return True
        current = await self._client.get(key)
        return current is not None and _str(current) == holder

    async def remove(self, game_id: GameId) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.srem(PENDING_RESULTS, game_id)
            pipe.delete(_results_key(game_id), _results_key(game_id) + ":claim")
            await pipe.execute()


class RedisLimits:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._open = client.register_script(_OPEN_CONNECTION)
        self._ban = client.register_script(_BAN)
        self._close = client.register_script(_CLOSE_CONNECTION)

    async def wrong_codes(self, address: str, window: float, now: float) -> int:
        value = await self._client.get(_window_key("wrong", address, window, now))
        return 0 if value is None else int(value)

    async def count_wrong_code(self, address: str, window: float, now: float) -> None:
        key = _window_key("wrong", address, window, now)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, _ms(window + 1))
            await pipe.execute()

    async def count_join(
        self,
        game_id: GameId,
        player_id: str,
        address: str,
        ban_keys: Sequence[str],
        window: float,
        now: float,
    ) -> JoinTally:
        by_address = _window_key("join-address", address, window, now)
        by_game = _window_key("join-game", game_id, window, now)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.incr(by_address)
            pipe.pexpire(by_address, _ms(window + 1))
            pipe.incr(by_game)
            pipe.pexpire(by_game, _ms(window + 1))
            pipe.smismember(_bans_key(game_id), list(ban_keys))
            pipe.hset(_player_keys_key(game_id), player_id, " ".join(ban_keys))
            pipe.expire(_player_keys_key(game_id), KEY_TTL_SECONDS)
            address_joins, _, game_joins, _, banned, _, _ = await pipe.execute()
        return JoinTally(int(address_joins), int(game_joins), any(banned))

    async def ban(self, game_id: GameId, player_id: str, keys: Sequence[str]) -> None:
        await self._ban(
            keys=[_bans_key(game_id), _player_keys_key(game_id)],
            args=[player_id, KEY_TTL_SECONDS, *keys],
        )

    async def open_connection(self, address: str, replica: str, limit: int) -> bool:
        opened = await self._open(
            keys=[_connections_key(address)],
            args=[replica, limit, KEY_TTL_SECONDS, _replica_key("")],
        )
        return bool(opened)

    async def close_connection(self, address: str, replica: str) -> None:
        await self._close(keys=[_connections_key(address)], args=[replica])

    async def heartbeat(self, replica: str, ttl: float, now: float) -> None:
        await self._client.set(_replica_key(replica), repr(now), px=_ms(ttl))

    async def last_seen(self, replicas: Sequence[str]) -> dict[str, float]:
        if not replicas:
            return {}
        values = await self._client.mget([_replica_key(r) for r in replicas])
        return {r: float(v) for r, v in zip(replicas, values, strict=True) if v is not None}


def redis_backend(url: str, max_connections: int = 200, pool_timeout: float = 5.0) -> Backend:
    """Build the Redis backend; connections open lazily on first use.

    The pool blocks: with all ``max_connections`` busy a command waits up to ``pool_timeout``
    seconds for one (then raises ``ConnectionError``) rather than failing at once.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        health_check_interval=10,
        socket_keepalive=True,
    )
    client = aioredis.Redis(connection_pool=pool)
    snapshots = RedisSnapshots(client)
    bus = RedisBus(client)

    async def ping() -> bool:
        try:
            return await snapshots.ping()
        except (RedisError, OSError):
            return False

    async def close() -> None:
        await bus.close()
        with contextlib.suppress(RedisError, RuntimeError):
            await client.aclose()
            await pool.aclose()

    return Backend(
        inbox=RedisInbox(client),
        lease=RedisLease(client),
        snapshots=snapshots,
        bus=bus,
        outbox=RedisOutbox(client),
        limits=RedisLimits(client),
        replicated=True,
        ping=ping,
        close=close,
    )
