"""Redis backend: the storage interfaces on Redis, so any number of replicas share games.

Owns key names and the Lua scripts that make ownership safe: the lease is ``SET NX PX``;
a commit (renew lease, save snapshot, trim the inbox stream, queue results, publish) runs as one
script that first checks the lease, so a replica that lost a game can never overwrite it.

And how this process talks to Redis, so that neither many players nor many games exhaust it:
every command goes through one ``Pipeliner`` (commands issued while a few pipelines are on their
way leave together in the next one: a burst of 10 000 answers or 5 000 players resuming at once
takes a few hundred round trips on a few connections), and the owner of many games waits for
their commands with ONE blocking ``XREAD`` of the stream on which appends name the games they
added to (``RedisInbox``) instead of holding a connection per game. The per-game scripts
(commit, lease renewal, append) asked for by many games before the next pipeline leaves run as
ONE command (``ForMany``), each game's run checking and writing only that game's keys, as the
one-game script does, and failing alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

import hiredis
import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.exceptions import NoScriptError, RedisError, ResponseError

from partyquiz_core.ids import GameId, JoinCode
from partyquiz_ws.backends import (
    START_ID,
    Admission,
    Backend,
    Payload,
    Publication,
    Snapshot,
    Stored,
    id_after,
    payload_bytes,
)

log = logging.getLogger(__name__)

KEY_TTL_SECONDS = 24 * 3600
# A save pushes the expiry of its game's keys back only when it has come this much closer.
TTL_SLACK_SECONDS = 3600
# Commands in flight at once: pipelines (each on a pooled connection) and commands per pipeline.
MAX_PIPELINES = 2
MAX_PIPELINE_COMMANDS = 512
# The shared read's wait for word of new entries blocks this long at most before it starts
# over (and looks for new games).
FEED_BLOCK_MS = 1000
# At least this often the shared read also reads every owned game's inbox, word of new entries
# or not: entries appended by a replica of a version that sends none (during a rolling
# upgrade), or whose word was lost (see ``_notify_key``), wait at most this long.
FEED_SCAN_SECONDS = 0.1
# Word of new entries kept for a replica before the oldest is dropped, and how long its stream
# of them lives past the replica's last refresh of it (every NOTIFY_REFRESH_SECONDS).
NOTIFY_MAXLEN = 4096
NOTIFY_TTL_MS = 30_000
NOTIFY_REFRESH_SECONDS = 5.0
# Entries one wake-up of the shared read fetches per game (the rest come with the next).
FEED_COUNT = 512
# A game whose owner has not read its inbox for this long is left out of the shared read.
FEED_IDLE_SECONDS = 10.0
# After a shared read that fetched entries, the next waits this long for more to gather,
# unless an owner waits with nothing fetched: in a burst the owners are busy applying what
# came, and a read per arriving entry would cost more than the entries.
FEED_GATHER_SECONDS = 0.002
# While commands keep coming (an append left under APPEND_BUSY_SECONDS ago), the appends made
# next gather this long before they leave, instead of leaving at the end of the loop turn in
# which a connection was free. In a burst of 10 000 answers in a second each replica sent one
# append script per few answers (up to 1 400 scripts in the burst), and every script costs a
# round trip of writes and replies in the replica and in Redis, on the one server core. An
# append after a quiet spell leaves at once.
APPEND_GATHER_SECONDS = 0.004
APPEND_BUSY_SECONDS = 0.05
PENDING_RESULTS = "pq:results:pending"


def _inbox_key(game_id: str) -> str:
    return f"pq:{{{game_id}}}:inbox"


def _snapshot_key(game_id: str) -> str:
    return f"pq:{{{game_id}}}:snap"


def _lease_key(game_id: str) -> str:
    return f"pq:{{{game_id}}}:lease"


def _results_key(game_id: str) -> str:
    return f"pq:results:{game_id}"


def _notify_key(replica: str) -> str:
    """The stream through which appends tell the owner ``replica`` which of its games have new
    entries. Only the owner creates it (appends never do), with an expiry it keeps renewing, so
    an owner that is gone leaves nothing behind; without it, word is lost and the owner's
    periodic read of every inbox (FEED_SCAN_SECONDS) finds the entries."""
    return f"pq:notify:{replica}"


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


# One join attempt, as the separate commands of earlier versions did it, on the same keys:
# the address's wrong codes (nothing more at the limit), the code's game (none: a wrong code
# counted), then the address's and the game's joins counted, the bans checked and the
# attempt's keys kept as its player's. The game's keys are known only from the code, so the
# script names them itself (as ``_window_key``, ``_bans_key`` and ``_player_keys_key`` do),
# which one Redis allows (the open-connection script does so too); tests pin the names.
# KEYS: wrong codes, the address's joins[, the code]; ARGV: wrong-code limit, wrong-code
# expiry ms, join expiry ms, join window number, key ttl, player id, '1' to count the join,
# then the ban keys. Returns {wrong codes[, game[, address joins, game joins, banned]]}.
_ADMIT_JOIN = """
local wrong = tonumber(redis.call('GET', KEYS[1]) or 0)
if wrong >= tonumber(ARGV[1]) then return {wrong} end
local game = KEYS[3] and redis.call('GET', KEYS[3])
if not game then
  redis.call('INCR', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {wrong}
end
if ARGV[7] ~= '1' then return {wrong, game} end
local address_joins = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local by_game = 'pq:limit:join-game:' .. game .. ':' .. ARGV[4]
local game_joins = redis.call('INCR', by_game)
redis.call('PEXPIRE', by_game, ARGV[3])
local keys = {}
for i = 8, #ARGV do keys[#keys + 1] = ARGV[i] end
local banned = 0
if #keys > 0 then
  for _, hit in ipairs(redis.call('SMISMEMBER', 'pq:{' .. game .. '}:bans', unpack(keys))) do
    if hit == 1 then banned = 1 end
  end
end
local kept = 'pq:{' .. game .. '}:player-keys'
redis.call('HSET', kept, ARGV[6], table.concat(keys, ' '))
redis.call('EXPIRE', kept, ARGV[5])
return {wrong, game, address_joins, game_joins, banned}
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


# Append a game's commands of one moment, each as an entry of its own (the format every
# version reads), in one command, and tell the game's owner (the lease's holder) that its
# inbox has new entries, on the owner's notify stream if the owner keeps one (NOMKSTREAM: an
# owner of an older version, which has none, reads its inboxes as before).
# KEYS: the inbox, the lease; ARGV: the game id, then the commands. Returns their ids.
_APPEND = f"""
local ids = {{}}
for i = 2, #ARGV do
  ids[i - 1] = redis.call('XADD', KEYS[1], '*', 'c', ARGV[i])
end
local owner = redis.call('GET', KEYS[2])
if owner then
  redis.call('XADD', '{_notify_key("")}' .. owner, 'NOMKSTREAM', 'MAXLEN', '~', {NOTIFY_MAXLEN},
    '*', 'g', ARGV[1])
end
return ids
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

# Delivered results leave the outbox in one step. KEYS: pending set, results, claim; ARGV: game
_REMOVE_RESULTS = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
return 1
"""

# KEYS: lease, snapshot, inbox, results, pending-results set
# ARGV: holder, ttl_ms, save ('1' = save the snapshot, else only record the published id),
#       state, last_id, published id, has_results, results, game_id, key_ttl,
#       expected last_id ('' = any), n log entries, commit id ('' = none), then n (field,
#       entry) pairs, then channel/payload pairs to publish
_COMMIT = (
    f"local TTL_SLACK = {TTL_SLACK_SECONDS}\n"
    + """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
if ARGV[11] ~= '' and redis.call('HGET', KEYS[2], 'last_id') ~= ARGV[11] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local n = tonumber(ARGV[12])
local i = 14
-- The snapshot's fields are written by one HSET (the same fields as ever).
local fields = {}
local function field(name, value)
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
if ARGV[13] ~= '' then field('commit', ARGV[13]) end
if ARGV[3] == '1' then
  field('state', ARGV[4])
  field('last_id', ARGV[5])
  -- Published up to the snapshot: what a missing published_id says too, to every version.
  field('published_id', ARGV[5])
  for _ = 1, n do
    field(ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  redis.call('HSET', KEYS[2], unpack(fields))
  if ARGV[5] == '0-0' then
    redis.call('EXPIRE', KEYS[2], ARGV[10])
  else
    redis.call('XTRIM', KEYS[3], 'MINID', ARGV[5])
    -- The game's keys live ARGV[10] s past its last save, give or take TTL_SLACK s: their
    -- expiry is pushed back when the inbox's has come within that of it, not at every save.
    if redis.call('TTL', KEYS[3]) < tonumber(ARGV[10]) - TTL_SLACK then
      redis.call('EXPIRE', KEYS[2], ARGV[10])
      redis.call('EXPIRE', KEYS[3], ARGV[10])
    end
  end
else
  if ARGV[6] ~= '' then field('published_id', ARGV[6]) end
  if #fields > 0 then redis.call('HSET', KEYS[2], unpack(fields)) end
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
)


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


Queued = Callable[[Pipeline], Any]
# A command queued with this option set gets Redis's reply as the parser gives it, without
# redis-py's reply callback (see ``_xread``).
RAW_REPLY = "partyquiz_raw_reply"


class Pipeliner:
    """Runs this process's Redis commands in pipelines on connections of its own.

    The commands issued in one turn of the event loop leave together at its end, in one
    pipeline, on a connection that no pipeline is using; the ones issued while every
    connection is busy wait and leave together in the next. So a quiet replica pays one round
    trip per command (or per handful issued together), and a busy one a few hundred round
    trips for thousands of commands, on its few connections instead of one pooled connection
    per command (which, beyond the pool's size, waited for a free one). Each command still
    returns its own reply or raises its own error.

    The connections are held for the process's life rather than taken from a pool for each
    pipeline: taking and returning a pooled connection (and redis-py's per-send socket
    timeout, a task each) cost more than the commands of a small pipeline. A pipeline whose
    replies are not all in after ``timeout`` seconds fails its commands with ``TimeoutError``
    and drops its connection, which connects again for the next pipeline.
    """

    def __init__(
        self, client: aioredis.Redis, connections: Sequence[Connection], timeout: float
    ) -> None:
        self._client = client
        self._connections = list(connections)
        self._idle = list(connections)
        self._timeout = timeout
        self._queue: list[tuple[Queued, asyncio.Future[Any]]] = []
        self._gatherers: list[Callable[[], None]] = []
        self._flushing = False  # a flush is scheduled for the end of this loop turn
        self._tasks: set[asyncio.Task[Any]] = set()
        self._scripts: dict[str, str] = {}

    def script(self, source: str) -> str:
        """Register a Lua script; return its SHA-1 for ``evalsha``."""
        sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts so
        self._scripts[sha] = source
        return sha

    async def call(self, queue: Queued) -> Any:
        """Queue one command (``queue`` adds exactly one to a pipeline); return its reply."""
        return await self.submit(queue)

    def submit(self, queue: Queued) -> asyncio.Future[Any]:
        """Queue one command; return the future of its reply."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((queue, future))
        self._schedule()
        return future

    def before_next(self, gather: Callable[[], None]) -> None:
        """Call ``gather`` once, right before the next pipeline leaves (at the end of this
        loop turn if a connection is free, or when one is): the commands it submits then
        leave in it, so a caller that merges its commands into one gathers for as long as
        every connection is busy."""
        self._gatherers.append(gather)
        self._schedule()

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold ``task`` (its commands' retry, say) until it ends, or until ``close``."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule(self) -> None:
        if not self._flushing and self._idle:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        # A gatherer may hand its commands to another that gathers (appends to the script
        # run for many games): those leave in this pipeline too.
        while self._gatherers and self._idle:
            gatherers, self._gatherers = self._gatherers, []
            for gather in gatherers:
                gather()
        while self._queue and self._idle:
            self._send_next()

    async def evalsha(self, sha: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run a registered script, loading it first if this Redis has not seen it."""
        try:
            return await self.call(lambda pipe: pipe.evalsha(sha, len(keys), *keys, *args))
        except NoScriptError:
            await self.call(lambda pipe: pipe.script_load(self._scripts[sha]))
            return await self.call(lambda pipe: pipe.evalsha(sha, len(keys), *keys, *args))

    def _send_next(self) -> None:
        if not self._queue or not self._idle:
            return
        batch = self._queue[:MAX_PIPELINE_COMMANDS]
        del self._queue[:MAX_PIPELINE_COMMANDS]
        connection = self._idle.pop()
        task = asyncio.get_running_loop().create_task(self._send(connection, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self, connection: Connection, batch: list[tuple[Queued, asyncio.Future[Any]]]
    ) -> None:
        # A pipeline object only records the commands (it is never executed): its command
        # methods are redis-py's, and so are the reply callbacks applied below.
        recorder = self._client.pipeline(transaction=False)
        results: list[Any] = []
        try:
            for queue, _ in batch:
                queue(recorder)
            commands = recorder.command_stack
            if connection.is_connected and await _stale(connection):
                await connection.disconnect(nowait=True)  # the send below connects again
            async with asyncio.timeout(self._timeout):
                await connection.send_packed_command(_packed(connection, commands))
                for args, options in commands:
                    try:
                        if options.get(RAW_REPLY):
                            reply = await connection.read_response()
                        else:
                            reply = await self._client.parse_response(
                                connection, args[0], **options
                            )
                    except ResponseError as exc:  # this command's error; the rest go on
                        reply = exc
                    results.append(reply)
        except Exception as exc:  # the connection failed: the commands not answered failed
            # Replies still on their way would answer the next pipeline's commands.
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)
            results.extend([exc] * (len(batch) - len(results)))
        finally:
            self._idle.append(connection)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
        self._flush()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        for connection in self._connections:
            with contextlib.suppress(Exception):
                await connection.disconnect()


def _packed(connection: Connection, commands: Iterable[tuple[Any, Any]]) -> list[bytes]:
    """The commands of a pipeline in Redis's protocol, each packed in C by hiredis.

    redis-py's own connections pack with hiredis when it is installed, but not its asyncio
    ones, which pack each argument in Python: for the scripts of many games or joins, with
    their hundreds of arguments, that cost a replica more than the rest of sending them. The
    bytes are the same; an argument hiredis does not take is left to redis-py's packing (which
    refuses what it refused before).
    """
    packed: list[bytes] = []
    for args, _ in commands:
        name = args[0]
        if isinstance(name, str) and " " in name:  # "SCRIPT LOAD": words of their own
            args = (*name.split(), *args[1:])
        try:
            packed.append(hiredis.pack_command(tuple(args)))
        except TypeError:
            packed.extend(connection.pack_command(*args))
    return packed


def _evalsha(sha: str, keys: Sequence[Any], args: Sequence[Any]) -> Queued:
    return lambda pipe: pipe.evalsha(sha, len(keys), *keys, *args)


def _for_many(source: str) -> str:
    """A script that runs ``source`` (a one-game script of KEYS and ARGV) once per game.

    ARGV: the number of runs n, then n (key count, argument count) pairs, then every run's
    arguments in turn; KEYS: every run's keys in turn. Returns each run's reply, in order (a
    nil reply as nil). Each run sees only its own keys and arguments, as the one-game script
    does, so its checks (lease, snapshot) and what it writes are exactly the one-game
    script's, on the same keys: a replica running the one-game script beside it is safe.

    A run that raises an error (a command refused: say WRONGTYPE, because one game's key was
    damaged or written by something else) returns that error as its reply, and the runs after
    it go on: Redis would otherwise end the whole script there, so the games before it would
    have written but heard of a failure, and those after it never run. What the failed run
    wrote before its error stays written, as it does when the one-game script fails.
    """
    return f"""
local function run(KEYS, ARGV)
{source}
end
local n = tonumber(ARGV[1])
local out = {{}}
local k, a = 0, 1 + 2 * n
for i = 1, n do
  local nk, na = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local keys, args = {{}}, {{}}
  for j = 1, nk do keys[j] = KEYS[k + j] end
  for j = 1, na do args[j] = ARGV[a + j] end
  k, a = k + nk, a + na
  local ok, reply = pcall(run, keys, args)
  if not ok then
    -- A command's error is raised as its message, or as an error reply (a table with err).
    if type(reply) == 'table' and reply.err then reply = reply.err end
    reply = redis.error_reply(tostring(reply))
  elseif reply == nil then
    reply = false
  end
  out[i] = reply
end
return out
"""


# A run's keys, arguments, the future of its reply, and the game it is for (named in the log
# if the run fails; None where the keys are not one game's).
_Run = tuple[Sequence[Any], Sequence[Any], "asyncio.Future[Any]", str | None]


class ForMany:
    """Runs a one-game script for many games in ONE command: the runs asked for until the
    next pipeline leaves go together (see ``_for_many``), each returning its own reply.

    The per-game fixed costs of a replica owning many games (a commit per batch, a snapshot
    save per interval, a lease renewal per lease third, an append per moment) were one
    ``EVALSHA`` each: with 500 games, thousands a second, each packed, sent, run, answered
    and parsed on its own. Together they cost one command per pipeline. Redis runs the one
    script atomically, so the runs are no less isolated than before; and a run whose script
    fails (a game's damaged key) fails its own future only, with Redis's error, while the
    others get their replies.
    """

    def __init__(self, pipeliner: Pipeliner, source: str, name: str) -> None:
        self._pipeliner = pipeliner
        self._sha = pipeliner.script(_for_many(source))
        self._name = name  # what a run does, for the log: "commit", "append", ...
        self._runs: list[_Run] = []

    def run(
        self, keys: Sequence[Any], args: Sequence[Any], game: str | None = None
    ) -> asyncio.Future[Any]:
        """Run the script for one game with the runs asked for before the next pipeline."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._runs:
            self._pipeliner.before_next(self._send)
        self._runs.append((keys, args, future, game))
        return future

    def _send(self) -> None:
        runs, self._runs = self._runs, []
        keys, args = self._command(runs)
        sent = self._pipeliner.submit(_evalsha(self._sha, keys, args))
        sent.add_done_callback(functools.partial(self._answered, runs))

    @staticmethod
    def _command(runs: list[_Run]) -> tuple[list[Any], list[Any]]:
        keys: list[Any] = []
        counts: list[Any] = [len(runs)]
        args: list[Any] = []
        for run_keys, run_args, _, _ in runs:
            counts.append(len(run_keys))
            counts.append(len(run_args))
            keys.extend(run_keys)
            args.extend(run_args)
        return keys, counts + args

    def _answered(self, runs: list[_Run], sent: asyncio.Future[Any]) -> None:
        failure = _failure(sent)
        if isinstance(failure, NoScriptError):
            # Redis lost its scripts (it restarted): load the script and run them again.
            task = asyncio.get_running_loop().create_task(self._again(runs))
            self._pipeliner.keep(task)
            return
        if failure is not None:
            _fail((future for _, _, future, _ in runs), failure)
            return
        _settle(self._name, runs, sent.result())

    async def _again(self, runs: list[_Run]) -> None:
        keys, args = self._command(runs)
        try:
            replies = await self._pipeliner.evalsha(self._sha, keys, args)
        except Exception as exc:
            _fail((future for _, _, future, _ in runs), exc)
            return
        _settle(self._name, runs, replies)


def _settle(name: str, runs: list[_Run], replies: Sequence[Any]) -> None:
    """Hand each run its reply; a run whose reply is an error (``ResponseError``, as the
    parser gives an error inside an array reply) fails with it, and is logged."""
    for (_, _, future, game), reply in zip(runs, replies, strict=True):
        if isinstance(reply, ResponseError):
            if game is None:
                log.warning("a %s failed in Redis (%s); the other runs went on", name, reply)
            else:
                log.warning(
                    "the %s of game %s failed in Redis (%s); the other games' runs went on",
                    name,
                    game,
                    reply,
                )
            if not future.done():
                future.set_exception(reply)
        elif not future.done():
            future.set_result(reply)


def _failure(sent: asyncio.Future[Any]) -> BaseException | None:
    """Why a pipeline's command failed (cancelled: its connection closed); None if it did not."""
    return ConnectionError("closed") if sent.cancelled() else sent.exception()


def _fail(futures: Iterable[asyncio.Future[Any]], failure: BaseException) -> None:
    """Fail those of ``futures`` still waiting (appends, a script's runs) with ``failure``."""
    for future in futures:
        if not future.done():
            future.set_exception(failure)


# Who waits for an append: ``append``'s future (of the entry's id), or ``submit``'s callback.
_Waiter: TypeAlias = "asyncio.Future[str] | Stored"


def _tell(waiter: _Waiter, failure: BaseException | None) -> None:
    """Tell ``waiter`` that its entry was stored (``failure`` None) or why it was not; a
    callback that raises is logged and does not keep the others from being told."""
    if isinstance(waiter, asyncio.Future):
        if failure is not None and not waiter.done():
            waiter.set_exception(failure)
        return
    try:
        waiter(failure)
    except Exception:
        log.exception("a submitted entry's callback failed")


async def _stale(connection: Connection) -> bool:
    """Whether an idle connection was closed by Redis (or holds a stray reply) since its last
    pipeline, as the pool checks a connection before lending it."""
    try:
        return await connection.can_read()
    except (RedisError, OSError):
        return True


@dataclass(eq=False)
class _Feed:
    """One game's share of the shared read: entries fetched for its owner, not yet taken."""

    key: str
    consumed: str  # the owner's position: entries up to here were returned to it
    tail: str  # the newest entry fetched or returned (the shared read goes on from here)
    buffer: deque[tuple[str, bytes]] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    used: float = field(default_factory=time.monotonic)
    epoch: int = 0  # bumped when the owner starts over from another position
    failure: BaseException | None = None  # why the shared read cannot read it (not a stream)

    def take(self, count: int) -> list[tuple[str, bytes]]:
        # Every buffered entry comes after the last one taken (``accept`` keeps only entries
        # past the newest it kept, and ``consumed`` never passes it), in id order.
        buffer = self.buffer
        if len(buffer) <= count:
            out = list(buffer)
            buffer.clear()
        else:
            out = [buffer.popleft() for _ in range(count)]
        if out:
            self.consumed = out[-1][0]
        return out

    def accept(self, entries: Sequence[tuple[str, bytes]]) -> None:
        # Entries come in id order: those past ``tail`` are the ones after the last one not.
        start = 0
        if entries and not id_after(entries[0][0], self.tail):
            start = len(entries)
            while start > 0 and id_after(entries[start - 1][0], self.tail):
                start -= 1
        if start < len(entries):
            self.buffer.extend(entries[start:] if start else entries)
            self.tail = entries[-1][0]
        if self.buffer:
            self.arrived.set()


def _xread(streams: dict[str, str], count: int = FEED_COUNT, block: int | None = None) -> Queued:
    """An ``XREAD`` of ``streams`` from their positions, blocking ``block`` ms (None: not),
    whose reply is read as the parser gives it (``_streams``): redis-py's reply callback made
    a dict of every entry's fields and tuples of the rest, thousands a second in a burst,
    only for them to be taken apart again."""
    args: list[Any] = ["XREAD", "COUNT", count]
    if block is not None:
        args += ["BLOCK", block]
    args += ["STREAMS", *streams, *streams.values()]
    return lambda pipe: pipe.execute_command(*args, **{RAW_REPLY: True})


def _key_type(key: str, pipe: Pipeline) -> Any:
    return pipe.type(key)


def _streams(reply: Any) -> Iterable[tuple[Any, Any]]:
    """An ``XREAD`` reply's streams, each with its entries ([id, [field, value, ...]]): a
    list of [stream, entries] pairs, or a map of them over RESP3; nil when nothing came."""
    if isinstance(reply, dict):
        return reply.items()
    return reply or ()


def _field(fields: Any, name: bytes) -> bytes | None:
    """The value of field ``name`` among an entry's fields (a flat list), if it has one."""
    if not fields:
        return None
    if fields[0] == name:  # the only field, as every version writes them
        return _bytes(fields[1])
    for index in range(2, len(fields) - 1, 2):
        if fields[index] == name:
            return _bytes(fields[index + 1])
    return None


def _entries(reply: Any) -> dict[str, list[tuple[str, bytes]]]:
    """An ``XREAD`` reply of inboxes as entries per stream key, each entry's id and command
    (its ``c`` field; entries without one are skipped)."""
    out: dict[str, list[tuple[str, bytes]]] = {}
    for stream, entries in _streams(reply):
        found = out.setdefault(_str(stream), [])
        for entry_id, fields in entries:
            payload = _field(fields, b"c")
            if payload is not None:
                found.append((_str(entry_id), payload))
    return out


class RedisInbox:
    """Appends go through the pipeliner, a game's appends made until the next pipeline leaves
    in one command (each returns its entry's id once Redis stored it), which also names the
    game on its owner's notify stream (``_notify_key``). Reads that must wait are served by
    ONE shared read for every game this replica owns: it waits, on a connection of its own,
    for names on this replica's notify stream, then reads the inboxes of the games named (and
    of every game it serves at least every FEED_SCAN_SECONDS) with one non-blocking
    ``XREAD`` on the same connection (not behind the commits' pipelines). A game that joins
    the shared read, or whose owner starts over from another position, is read next, and
    wakes the wait. A read that need not wait asks Redis directly. Entries are handed out in
    id order, each once per position.

    Earlier, the shared read blocked on every owned game's inbox at once: each time it
    returned (once per few answers), its next ``XREAD`` named every stream again, and a
    replica owning 500 games packed, sent and had Redis parse and block on 500 keys per
    answer or two. Now what one answer costs it does not grow with the games it owns."""

    def __init__(
        self,
        pipeliner: Pipeliner,
        reader: Pipeliner,
        gather: float = APPEND_GATHER_SECONDS,
        busy: float = APPEND_BUSY_SECONDS,
        replica: str | None = None,
        scan: float = FEED_SCAN_SECONDS,
    ) -> None:
        self._pipeliner = pipeliner
        self._scan = scan
        self._reader = reader
        self._gather = gather
        self._busy = busy
        self._sent_at = -busy  # monotonic time the last appends left
        self._gathering: asyncio.TimerHandle | None = None
        self._feeds: dict[GameId, _Feed] = {}
        self._task: asyncio.Task[None] | None = None
        # The lease holder's name of this process: appends to its games name them here.
        self._notify = _notify_key(replica or f"inbox-{uuid.uuid4().hex}")
        self._woken = START_ID  # the newest name on the notify stream the shared read has seen
        self._due: set[GameId] = set()  # games whose inbox the shared read reads next
        self._waking: set[asyncio.Task[None]] = set()
        self._hungry = asyncio.Event()  # an owner waits with nothing fetched for it
        self._appends: dict[GameId, list[tuple[bytes, _Waiter]]] = {}
        self._append = ForMany(pipeliner, _APPEND, "append")

    async def append(self, game_id: GameId, entry: Payload) -> str:
        stored: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._add(game_id, payload_bytes(entry), stored)
        return await stored

    def submit(self, game_id: GameId, entry: Payload, stored: Stored) -> None:
        self._add(game_id, payload_bytes(entry), stored)

    def _add(self, game_id: GameId, payload: bytes, waiter: _Waiter) -> None:
        # The commands of one game issued until the next pipeline leaves (the end of this
        # loop turn, or later while every connection is busy) are appended by one script, as
        # entries of their own, not one XADD each: in a burst, many answers leave together,
        # and each command sent costs more here and in Redis than each entry it adds.
        # While appends keep coming, they first gather for a few milliseconds.
        waiting = self._appends.get(game_id)
        if waiting is None:
            waiting = self._appends[game_id] = []
            if len(self._appends) == 1:
                if self._gather > 0 and time.monotonic() - self._sent_at < self._busy:
                    loop = asyncio.get_running_loop()
                    self._gathering = loop.call_later(self._gather, self._gathered)
                else:
                    self._pipeliner.before_next(self._send_appends)
        waiting.append((payload, waiter))

    def _gathered(self) -> None:
        self._gathering = None
        self._pipeliner.before_next(self._send_appends)

    def _send_appends(self) -> None:
        self._sent_at = time.monotonic()
        appends, self._appends = self._appends, {}
        # Every game's appends of this moment leave as one command (``ForMany``).
        for game_id, waiting in appends.items():
            keys = [_inbox_key(game_id), _lease_key(game_id)]
            args = [game_id, *(payload for payload, _ in waiting)]
            sent = self._append.run(keys, args, game_id)
            sent.add_done_callback(functools.partial(self._appended, waiting))

    @staticmethod
    def _appended(waiting: list[tuple[bytes, _Waiter]], sent: asyncio.Future[Any]) -> None:
        # Submitters are told here, in this one callback for the whole append, not through
        # a future (and a callback scheduled) per entry.
        failure = _failure(sent)
        if failure is not None:
            for _, waiter in waiting:
                _tell(waiter, failure)
            return
        for (_, waiter), entry_id in zip(waiting, sent.result(), strict=True):
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():
                    waiter.set_result(_str(entry_id))
            else:
                _tell(waiter, None)

    async def read(
        self, game_id: GameId, after: str, count: int, wait: float
    ) -> list[tuple[str, Payload]]:
        feed = self._feeds.get(game_id)
        if feed is None or feed.consumed != after:
            # New here, or its owner starts over (a snapshot of its own or someone else's).
            epoch = 0 if feed is None else feed.epoch + 1
            feed = self._feeds[game_id] = _Feed(_inbox_key(game_id), after, after, epoch=epoch)
            self._wake_shared_read(game_id)
        feed.used = time.monotonic()
        found = feed.take(count)
        if found:
            return list(found)
        self._refuse_if_failed(game_id, feed)
        if wait <= 0:
            key = feed.key
            reply = await self._pipeliner.call(_xread({key: after}, count))
            if feed.consumed == after:  # unless it started over meanwhile
                feed.accept(_entries(reply).get(key, []))
            return list(feed.take(count))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._read_for_everyone(), name="inbox-feed"
            )
        feed.arrived.clear()
        self._hungry.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await feed.arrived.wait()
        found = feed.take(count)
        if not found:
            self._refuse_if_failed(game_id, feed)
        return list(found)

    def _refuse_if_failed(self, game_id: GameId, feed: _Feed) -> None:
        """Raise why the shared read could not read ``feed``'s inbox, once: the feed is
        dropped, so the owner's next read (after its retry delay) is tried again."""
        if feed.failure is not None:
            if self._feeds.get(game_id) is feed:
                del self._feeds[game_id]
            raise feed.failure

    def _wake_shared_read(self, game_id: GameId) -> None:
        if self._task is None or self._task.done():
            return  # it starts by reading every game from its current position
        self._due.add(game_id)
        key = self._notify
        task = asyncio.get_running_loop().create_task(
            self._pipeliner.call(
                lambda pipe: pipe.xadd(key, {b"w": b"1"}, maxlen=NOTIFY_MAXLEN, nomkstream=True)
            )
        )
        self._waking.add(task)
        task.add_done_callback(self._woke)

    def _woke(self, task: asyncio.Task[Any]) -> None:
        self._waking.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not wake the shared inbox read (%s)", task.exception())

    async def _read_for_everyone(self) -> None:
        refreshed = scanned = -math.inf
        while True:
            now = time.monotonic()
            scan = now - scanned >= self._scan
            if scan:  # not at every turn: a turn reads a few games, this looks at them all
                for game_id in [
                    g for g, f in self._feeds.items() if now - f.used > FEED_IDLE_SECONDS
                ]:
                    del self._feeds[game_id]
            if not self._feeds:
                return  # started again by the next read that waits
            try:
                if now - refreshed >= NOTIFY_REFRESH_SECONDS:
                    await self._keep_notify_stream()
                    refreshed = now
                if scan:
                    # Every game, named or not (see FEED_SCAN_SECONDS); and the first time,
                    # whatever was appended before the notify stream was there.
                    self._due.clear()
                    due = [g for g, f in self._feeds.items() if f.failure is None]
                    scanned = now
                else:
                    feeds = self._feeds
                    due = [g for g in self._due if g in feeds and feeds[g].failure is None]
                    self._due.clear()
                if not due:
                    until_scan = int((scanned + self._scan - now) * 1000)
                    await self._wait_for_names(max(1, min(FEED_BLOCK_MS, until_scan)))
                    continue
                fetched = await self._fetch(due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reading the inbox of this replica's games failed (%s)", exc)
                await asyncio.sleep(0.5)
                continue
            if fetched:
                self._hungry.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FEED_GATHER_SECONDS):
                        await self._hungry.wait()

    async def _keep_notify_stream(self) -> None:
        """Create this process's notify stream if it is not there, and push its expiry back:
        appends never create it, so an owner that is gone leaves none behind."""
        key = self._notify
        await asyncio.gather(
            self._pipeliner.call(lambda pipe: pipe.xadd(key, {b"w": b"1"}, maxlen=NOTIFY_MAXLEN)),
            self._pipeliner.call(lambda pipe: pipe.pexpire(key, NOTIFY_TTL_MS)),
        )

    async def _wait_for_names(self, block: int) -> None:
        """Wait up to ``block`` ms for names on the notify stream; the games named are due."""
        reply: Any = await self._reader.call(_xread({self._notify: self._woken}, FEED_COUNT, block))
        for _, entries in _streams(reply):
            for entry_id, fields in entries:
                self._woken = _str(entry_id)
                named = _field(fields, b"g")
                if named is not None:
                    self._due.add(GameId(_str(named)))

    async def _fetch(self, due: Sequence[GameId]) -> bool:
        """Read the inboxes of ``due`` from where the shared read got to; whether any had
        entries. A game whose read came back full is due again."""
        feeds = [(game_id, self._feeds[game_id]) for game_id in due]
        epochs = [f.epoch for _, f in feeds]
        streams = {f.key: f.tail for _, f in feeds}
        # On the shared read's own connection (idle while it is not waiting), not behind the
        # commits' pipelines: when 500 games close their question at once, those are long.
        try:
            reply: Any = await self._reader.call(_xread(streams))
        except ResponseError as refused:
            # Redis refuses the whole read when one of its keys is not a stream (a damaged
            # inbox); the games whose inboxes are fine are read again without it at once.
            damaged = await self._damaged(feeds, refused)
            if not damaged:
                raise
            rest = [game_id for game_id, _ in feeds if game_id not in damaged]
            return bool(rest) and await self._fetch(rest)
        fetched = _entries(reply)
        for (game_id, feed), epoch in zip(feeds, epochs, strict=True):
            entries = fetched.get(feed.key)
            if entries and feed.epoch == epoch and self._feeds.get(game_id) is feed:
                feed.accept(entries)
                if len(entries) >= FEED_COUNT:
                    self._due.add(game_id)
        return bool(fetched)

    async def _damaged(
        self, feeds: Sequence[tuple[GameId, _Feed]], refused: ResponseError
    ) -> set[GameId]:
        """The games among ``feeds`` whose inbox key holds something other than a stream, each
        feed marked failed with Redis's refusal and its owner woken to hear of it."""
        types = await asyncio.gather(
            *(self._reader.call(functools.partial(_key_type, f.key)) for _, f in feeds)
        )
        damaged = set()
        for (game_id, feed), kind in zip(feeds, types, strict=True):
            if _str(kind) not in ("stream", "none"):
                log.warning("the inbox of game %s is not a stream (%s): not read", game_id, refused)
                feed.failure = refused
                feed.arrived.set()
                damaged.add(game_id)
        return damaged

    async def close(self) -> None:
        if self._gathering is not None:  # appends still gathering never leave: refuse them
            self._gathering.cancel()
            self._gathering = None
            appends, self._appends = self._appends, {}
            closed = ConnectionError("the Redis backend closed")
            for waiting in appends.values():
                for _, waiter in waiting:
                    _tell(waiter, closed)
        for task in [self._task, *self._waking]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        await self._reader.close()


class RedisLease:
    def __init__(self, pipeliner: Pipeliner) -> None:
        self._redis = pipeliner
        # Renewals of the games this replica owns that fall due together are one command.
        self._renew = ForMany(pipeliner, _RENEW, "lease renewal")
        self._release = pipeliner.script(_RELEASE)

    async def acquire(self, game_id: GameId, holder: str, ttl: float) -> bool:
        key = _lease_key(game_id)
        if await self._redis.call(lambda pipe: pipe.set(key, holder, nx=True, px=_ms(ttl))):
            return True
        return await self.renew(game_id, holder, ttl)

    async def renew(self, game_id: GameId, holder: str, ttl: float) -> bool:
        return bool(await self._renew.run([_lease_key(game_id)], [holder, _ms(ttl)], game_id))

    async def release(self, game_id: GameId, holder: str) -> None:
        await self._redis.evalsha(self._release, [_lease_key(game_id)], [holder])


class RedisSnapshots:
    def __init__(self, pipeliner: Pipeliner) -> None:
        self._redis = pipeliner
        self._create = pipeliner.script(_CREATE)
        # The commits (and snapshot saves) of every game this replica owns made until the
        # next pipeline leaves are one command; each is fenced by its own game's keys.
        self._commit = ForMany(pipeliner, _COMMIT, "commit")

    async def ping(self) -> bool:
        return bool(await self._redis.call(lambda pipe: pipe.ping()))

    async def load(self, game_id: GameId) -> Snapshot | None:
        key = _snapshot_key(game_id)
        fields: dict[Any, Any] = await self._redis.call(lambda pipe: pipe.hgetall(key))
        named = {_str(k): v for k, v in fields.items()}
        if "state" not in named:
            return None
        log = tuple(_bytes(named[k]) for k in sorted(k for k in named if k.startswith("log:")))
        published, commit_id = named.get("published_id"), named.get("commit")
        last_id = _str(named.get("last_id") or b"0-0")
        # A save records published_id as its own last_id (older versions deleted it): None.
        if published is not None and _str(published) == last_id:
            published = None
        return Snapshot(
            state=_bytes(named["state"]),
            last_id=last_id,
            log=log,
            published_id=None if published is None else _str(published),
            commit_id=None if commit_id is None else _str(commit_id),
        )

    async def exists(self, game_id: GameId) -> bool:
        key = _snapshot_key(game_id)
        return bool(await self._redis.call(lambda pipe: pipe.exists(key)))

    async def phase(self, game_id: GameId) -> str | None:
        key = _snapshot_key(game_id)
        state = await self._redis.call(lambda pipe: pipe.hget(key, "state"))
        return None if state is None else str(orjson.loads(state)["phase"])

    async def create(self, game_id: GameId, join_code: JoinCode, snapshot: Snapshot) -> bool:
        created = await self._redis.evalsha(
            self._create,
            [_snapshot_key(game_id), _code_key(join_code)],
            [snapshot.state, snapshot.last_id, game_id, KEY_TTL_SECONDS],
        )
        return bool(created)

    async def find_game(self, join_code: JoinCode) -> GameId | None:
        key = _code_key(join_code)
        value = await self._redis.call(lambda pipe: pipe.get(key))
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
        commit_id: str = "",
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
            commit_id,
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
        return bool(await self._commit.run(keys, args, game_id))


class RedisBus:
    def __init__(self, pipeliner: Pipeliner, client: aioredis.Redis) -> None:
        self._redis = pipeliner
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)

    async def publish(self, publication: Publication) -> None:
        channel, payload = publication.channel, payload_bytes(publication.payload)
        await self._redis.call(lambda pipe: pipe.publish(channel, payload))

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
    def __init__(self, pipeliner: Pipeliner) -> None:
        self._redis = pipeliner
        self._remove = pipeliner.script(_REMOVE_RESULTS)

    async def pending(self) -> list[GameId]:
        members = await self._redis.call(lambda pipe: pipe.smembers(PENDING_RESULTS))
        return [GameId(_str(m)) for m in members]

    async def get(self, game_id: GameId) -> bytes | None:
        key = _results_key(game_id)
        value = await self._redis.call(lambda pipe: pipe.get(key))
        return None if value is None else _bytes(value)

    async def claim(self, game_id: GameId, holder: str, ttl: float) -> bool:
        key = _results_key(game_id) + ":claim"
        if await self._redis.call(lambda pipe: pipe.set(key, holder, nx=True, px=_ms(ttl))):
            return True
        current = await self._redis.call(lambda pipe: pipe.get(key))
        return current is not None and _str(current) == holder

    async def remove(self, game_id: GameId) -> None:
        key = _results_key(game_id)
        await self._redis.evalsha(self._remove, [PENDING_RESULTS, key, key + ":claim"], [game_id])


class RedisLimits:
    def __init__(self, pipeliner: Pipeliner) -> None:
        self._redis = pipeliner
        self._ban = pipeliner.script(_BAN)
        # The connections opened and closed, and the joins attempted, until the next pipeline
        # leaves are one command each (``ForMany``): a ramp opens a connection and makes a
        # join attempt per player, and each command costs a replica more than its script
        # costs Redis.
        self._open = ForMany(pipeliner, _OPEN_CONNECTION, "connection count")
        self._close = ForMany(pipeliner, _CLOSE_CONNECTION, "connection count")
        self._admit = ForMany(pipeliner, _ADMIT_JOIN, "join admission")

    async def admit_join(
        self,
        join_code: JoinCode | None,
        address: str,
        player_id: str,
        ban_keys: Sequence[str] | None,
        wrong_code_limit: int,
        wrong_code_window: float,
        join_window: float,
        now: float,
    ) -> Admission:
        keys = [
            _window_key("wrong", address, wrong_code_window, now),
            _window_key("join-address", address, join_window, now),
        ]
        if join_code is not None:
            keys.append(_code_key(join_code))
        args: list[Any] = [
            wrong_code_limit,
            _ms(wrong_code_window + 1),
            _ms(join_window + 1),
            int(now // join_window),
            KEY_TTL_SECONDS,
            player_id,
            "0" if ban_keys is None else "1",
            *(ban_keys or ()),
        ]
        reply = await self._admit.run(keys, args)
        wrong = int(reply[0])
        if len(reply) < 2:
            return Admission(wrong, None)
        game_id = GameId(_str(reply[1]))
        if len(reply) < 5:
            return Admission(wrong, game_id)
        return Admission(wrong, game_id, int(reply[2]), int(reply[3]), bool(reply[4]))

    async def ban(self, game_id: GameId, player_id: str, keys: Sequence[str]) -> None:
        await self._redis.evalsha(
            self._ban,
            [_bans_key(game_id), _player_keys_key(game_id)],
            [player_id, KEY_TTL_SECONDS, *keys],
        )

    async def open_connection(self, address: str, replica: str, limit: int) -> bool:
        opened = await self._open.run(
            [_connections_key(address)],
            [replica, limit, KEY_TTL_SECONDS, _replica_key("")],
        )
        return bool(opened)

    async def close_connection(self, address: str, replica: str) -> None:
        await self._close.run([_connections_key(address)], [replica])

    async def heartbeat(self, replica: str, ttl: float, now: float) -> None:
        key = _replica_key(replica)
        await self._redis.call(lambda pipe: pipe.set(key, repr(now), px=_ms(ttl)))

    async def last_seen(self, replicas: Sequence[str]) -> dict[str, float]:
        if not replicas:
            return {}
        keys = [_replica_key(r) for r in replicas]
        values = await self._redis.call(lambda pipe: pipe.mget(keys))
        return {r: float(v) for r, v in zip(replicas, values, strict=True) if v is not None}


def redis_backend(
    url: str,
    max_connections: int = 200,
    pool_timeout: float = 5.0,
    append_gather: float = APPEND_GATHER_SECONDS,
    append_busy: float = APPEND_BUSY_SECONDS,
    replica_id: str | None = None,
    feed_scan: float = FEED_SCAN_SECONDS,
) -> Backend:
    """Build the Redis backend; connections open lazily on first use.

    Commands travel in pipelines on ``MAX_PIPELINES`` connections of their own (see
    ``Pipeliner``), the shared inbox read has one and pub/sub one; ``max_connections`` caps
    them all. A pipeline whose replies are not all in after ``pool_timeout`` seconds fails its
    commands (an answer is then refused as ``unavailable``). Appends made within
    ``append_busy`` seconds of the last ones that left gather for ``append_gather`` seconds.
    ``replica_id`` is the name this process holds leases by: appends to the games it owns
    name them on its notify stream, so its shared read learns of them at once (without it,
    or under another name, it learns of them within ``feed_scan`` seconds, when its shared
    read reads every inbox it serves).
    """
    options: dict[str, Any] = {"health_check_interval": 10, "socket_keepalive": True}
    # Pub/sub takes its connection from this pool; the pipelines' connections are made from
    # its settings (URL, credentials, TLS) without redis-py's per-send socket timeout, since
    # each pipeline has a timeout of its own.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max(1, max_connections - MAX_PIPELINES - 1),
        timeout=pool_timeout,
        **options,
    )
    client = aioredis.Redis(connection_pool=pool)
    dedicated = aioredis.ConnectionPool.from_url(url, socket_timeout=None, **options)
    connections = [
        cast(Connection, dedicated.make_connection())  # type: ignore[no-untyped-call]
        for _ in range(MAX_PIPELINES + 1)
    ]
    pipeliner = Pipeliner(client, connections[:MAX_PIPELINES], pool_timeout)
    # The shared read's wait for names blocks in Redis for up to FEED_BLOCK_MS before its reply.
    reader = Pipeliner(client, connections[MAX_PIPELINES:], FEED_BLOCK_MS / 1000 + pool_timeout)
    snapshots = RedisSnapshots(pipeliner)
    bus = RedisBus(pipeliner, client)
    inbox = RedisInbox(pipeliner, reader, append_gather, append_busy, replica_id, feed_scan)

    async def ping() -> bool:
        try:
            return await snapshots.ping()
        except (RedisError, OSError):
            return False

    async def close() -> None:
        await inbox.close()
        await bus.close()
        await pipeliner.close()
        with contextlib.suppress(RedisError, RuntimeError):
            await client.aclose()
            await pool.aclose()
            await dedicated.aclose()

    return Backend(
        inbox=inbox,
        lease=RedisLease(pipeliner),
        snapshots=snapshots,
        bus=bus,
        outbox=RedisOutbox(pipeliner),
        limits=RedisLimits(pipeliner),
        replicated=True,
        ping=ping,
        close=close,
    )
