"""Embedded backend: the storage interfaces in this process, for a single replica.

Owns in-memory inbox, lease, snapshots, bus and results outbox with the same semantics as the
Redis backend (ids, fencing, trimming), so the game runner cannot tell them apart. Snapshots hold
the runner's immutable state object itself (``Snapshot.live``), inbox entries and publications
the records they were given, never their JSON. State is lost when the process exits; that is
the documented trade-off of the embedded mode.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from operator import itemgetter

import orjson

from partyquiz_core.ids import GameId, JoinCode
from partyquiz_ws.backends import (
    START_ID,
    Admission,
    Backend,
    Payload,
    Publication,
    Snapshot,
    Stored,
    stream_id_seq,
)


class MemoryInbox:
    """Entries per game in id order; ids are ``<seq>-0`` with one sequence for the process."""

    def __init__(self) -> None:
        self._entries: dict[GameId, list[tuple[int, str, Payload]]] = defaultdict(list)
        self._seq = 0
        self._changed: dict[GameId, asyncio.Event] = defaultdict(asyncio.Event)

    async def append(self, game_id: GameId, entry: Payload) -> str:
        return self._store(game_id, entry)

    def submit(self, game_id: GameId, entry: Payload, stored: Stored) -> None:
        self._store(game_id, entry)
        stored(None)

    def _store(self, game_id: GameId, entry: Payload) -> str:
        self._seq += 1
        entry_id = f"{self._seq}-0"
        self._entries[game_id].append((self._seq, entry_id, entry))
        self._changed[game_id].set()
        return entry_id

    def _first_after(self, entries: list[tuple[int, str, Payload]], after: str) -> int:
        """Index of the first entry whose id comes after ``after`` (ids sort like their seq;
        ``0-0``, before every entry, gives 0)."""
        return bisect_right(entries, stream_id_seq(after), key=itemgetter(0))

    def _after(self, game_id: GameId, after: str, count: int) -> list[tuple[str, Payload]]:
        entries = self._entries.get(game_id, [])
        start = self._first_after(entries, after)
        return [(entry_id, entry) for _seq, entry_id, entry in entries[start : start + count]]

    async def read(
        self, game_id: GameId, after: str, count: int, wait: float
    ) -> list[tuple[str, Payload]]:
        found = self._after(game_id, after, count)
        if found or wait <= 0:
            return found
        event = self._changed[game_id]
        event.clear()
        try:
            async with asyncio.timeout(wait):
                await event.wait()
        except TimeoutError:
            return []
        return self._after(game_id, after, count)

    def trim(self, game_id: GameId, upto: str) -> None:
        entries = self._entries.get(game_id)
        if entries:
            del entries[: self._first_after(entries, upto)]


class MemoryLease:
    def __init__(self) -> None:
        self._held: dict[GameId, tuple[str, float]] = {}

    def holder(self, game_id: GameId) -> str | None:
        held = self._held.get(game_id)
        if held is None or held[1] <= time.monotonic():
            return None
        return held[0]

    async def acquire(self, game_id: GameId, holder: str, ttl: float) -> bool:
        current = self.holder(game_id)
        if current not in (None, holder):
            return False
        self._held[game_id] = (holder, time.monotonic() + ttl)
        return True

    async def renew(self, game_id: GameId, holder: str, ttl: float) -> bool:
        if self.holder(game_id) not in (None, holder):
            return False
        self._held[game_id] = (holder, time.monotonic() + ttl)
        return True

    async def release(self, game_id: GameId, holder: str) -> None:
        if self.holder(game_id) == holder:
            del self._held[game_id]


class MemoryBus:
    def __init__(self) -> None:
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[tuple[str, Payload]] = asyncio.Queue()

    async def publish(self, publication: Publication) -> None:
        if publication.channel in self._channels:
            self._queue.put_nowait((publication.channel, publication.payload))

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def messages(self) -> AsyncIterator[tuple[str, Payload]]:
        while True:
            yield await self._queue.get()


class MemoryOutbox:
    def __init__(self) -> None:
        self.results: dict[GameId, bytes] = {}
        self._claims: dict[GameId, tuple[str, float]] = {}

    async def pending(self) -> list[GameId]:
        return list(self.results)

    async def get(self, game_id: GameId) -> bytes | None:
        return self.results.get(game_id)

    async def claim(self, game_id: GameId, holder: str, ttl: float) -> bool:
        now = time.monotonic()
        current, until = self._claims.get(game_id, (holder, 0.0))
        if current != holder and until > now:
            return False
        self._claims[game_id] = (holder, now + ttl)
        return True

    async def remove(self, game_id: GameId) -> None:
        self.results.pop(game_id, None)
        self._claims.pop(game_id, None)


class MemoryLimits:
    """Counters and bans of one process (the embedded mode has one replica)."""

    MAX_KEYS = 100_000

    def __init__(self, codes: dict[JoinCode, GameId]) -> None:
        self._codes = codes  # the snapshot store's code directory
        self._counts: dict[tuple[str, int], int] = {}
        self._bans: dict[GameId, set[str]] = defaultdict(set)
        self._player_keys: dict[tuple[GameId, str], tuple[str, ...]] = {}
        self._connections: dict[str, int] = {}
        self._seen: dict[str, float] = {}

    def _hit(self, key: str, window: float, now: float, add: int = 1) -> int:
        start = int(now // window)
        if len(self._counts) >= self.MAX_KEYS:
            # Drop passed windows so memory stays bounded under many addresses.
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= start - 1}
        count = self._counts.get((key, start), 0) + add
        if add:
            self._counts[(key, start)] = count
        return count

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
        wrong = self._hit("wrong:" + address, wrong_code_window, now, add=0)
        if wrong >= wrong_code_limit:
            return Admission(wrong, None)
        game_id = None if join_code is None else self._codes.get(join_code)
        if game_id is None:
            self._hit("wrong:" + address, wrong_code_window, now)
            return Admission(wrong, None)
        if ban_keys is None:
            return Admission(wrong, game_id)
        if len(self._player_keys) >= self.MAX_KEYS:
            self._player_keys.clear()  # bounded; a kick after that bans only what it sees
        self._player_keys[(game_id, player_id)] = tuple(ban_keys)
        bans = self._bans.get(game_id, ())
        return Admission(
            wrong,
            game_id,
            self._hit("join-address:" + address, join_window, now),
            self._hit("join-game:" + game_id, join_window, now),
            any(key in bans for key in ban_keys),
        )

    async def ban(self, game_id: GameId, player_id: str, keys: Sequence[str]) -> None:
        self._bans[game_id].update(keys)
        self._bans[game_id].update(self._player_keys.get((game_id, player_id), ()))

    async def open_connection(self, address: str, replica: str, limit: int) -> bool:
        count = self._connections.get(address, 0)
        if count >= limit:
            return False
        self._connections[address] = count + 1
        return True

    async def close_connection(self, address: str, replica: str) -> None:
        count = self._connections.get(address, 0) - 1
        if count > 0:
            self._connections[address] = count
        else:
            self._connections.pop(address, None)

    async def heartbeat(self, replica: str, ttl: float, now: float) -> None:
        self._seen[replica] = now

    async def last_seen(self, replicas: Sequence[str]) -> dict[str, float]:
        return {r: self._seen[r] for r in replicas if r in self._seen}


class MemorySnapshots:
    def __init__(
        self, inbox: MemoryInbox, lease: MemoryLease, bus: MemoryBus, outbox: MemoryOutbox
    ) -> None:
        self._inbox, self._lease, self._bus, self._outbox = inbox, lease, bus, outbox
        self._snapshots: dict[GameId, Snapshot] = {}
        self.codes: dict[JoinCode, GameId] = {}

    async def load(self, game_id: GameId) -> Snapshot | None:
        return self._snapshots.get(game_id)

    async def exists(self, game_id: GameId) -> bool:
        return game_id in self._snapshots

    async def phase(self, game_id: GameId) -> str | None:
        snapshot = self._snapshots.get(game_id)
        if snapshot is None:
            return None
        live = getattr(snapshot.live, "phase", None)
        return str(live) if live is not None else str(orjson.loads(snapshot.state)["phase"])

    async def create(self, game_id: GameId, join_code: JoinCode, snapshot: Snapshot) -> bool:
        if game_id in self._snapshots:
            return False
        self._snapshots[game_id] = snapshot
        self.codes[join_code] = game_id
        return True

    async def find_game(self, join_code: JoinCode) -> GameId | None:
        return self.codes.get(join_code)

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
        current = self._snapshots.get(game_id)
        if expected_last_id is not None and (
            current is None or current.last_id != expected_last_id
        ):
            return False
        if not await self._lease.renew(game_id, holder, ttl):
            return False
        if snapshot is None:
            if current is not None and published_id is not None:
                self._snapshots[game_id] = replace(current, published_id=published_id)
        else:
            if snapshot.live is not None:
                # Immutable: kept as given, logs included.
                self._snapshots[game_id] = replace(snapshot, published_id=None)
            else:
                log = list(current.log) if current is not None else []
                for index, entry in new_log:
                    log[index:] = [entry]
                self._snapshots[game_id] = Snapshot(snapshot.state, snapshot.last_id, tuple(log))
            if snapshot.last_id != START_ID:
                self._inbox.trim(game_id, snapshot.last_id)
        if commit_id and game_id in self._snapshots:
            self._snapshots[game_id] = replace(self._snapshots[game_id], commit_id=commit_id)
        if results is not None:
            self._outbox.results[game_id] = results
        for publication in publications:
            await self._bus.publish(publication)
        return True


def memory_backend() -> Backend:
    """Build the embedded backend (one replica, state in this process)."""
    inbox, lease, bus, outbox = MemoryInbox(), MemoryLease(), MemoryBus(), MemoryOutbox()
    snapshots = MemorySnapshots(inbox, lease, bus, outbox)

    async def ping() -> bool:
        return True

    async def close() -> None:
        return None

    return Backend(
        inbox=inbox,
        lease=lease,
        snapshots=snapshots,
        bus=bus,
        outbox=outbox,
        limits=MemoryLimits(snapshots.codes),
        replicated=False,
        ping=ping,
        close=close,
        keeps_objects=True,
    )
