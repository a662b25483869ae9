"""The small storage interfaces the game runner is written against, once.

Owns the Protocols for the durable command inbox, the snapshot store, the owner lease, the
publish bus, the results outbox and the limits every replica shares (per-address and per-game
counters, connections per address, kick bans), plus the records they exchange. Two
implementations exist: ``memory_backend`` (embedded, one replica) and ``redis_backend`` (any
number of replicas).
Nothing here knows game rules or WebSockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeAlias

import orjson

from partyquiz_core.ids import GameId, JoinCode

START_ID = "0-0"


class Encodable(Protocol):
    """A record that a backend keeping objects (in process) passes on as it is, and any other
    backend stores or sends as ``encode()``'s bytes."""

    def encode(self) -> bytes: ...


# An inbox entry or a publication: bytes, or a record that a backend may keep as an object.
Payload: TypeAlias = "bytes | Encodable"


def payload_bytes(payload: Payload) -> bytes:
    """The bytes of ``payload``, for a backend that stores or sends bytes."""
    return payload if isinstance(payload, bytes) else payload.encode()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A game state as saved by its owner; ``last_id`` is the last inbox entry it includes.

    ``log`` holds the closed questions' answer logs, each written once when its question
    closed (they never change), so a commit does not rewrite them; ``state`` is the rest.
    A backend that ``keeps_objects`` (in process) is given the immutable state object itself
    as ``live`` instead, so nothing is encoded or decoded per batch. ``published_id`` (None:
    ``last_id``) is the last inbox entry whose outcome the owner has published: entries after
    ``last_id`` up to it are still in the inbox, and a new owner replays them without
    publishing again. ``commit_id`` names the commit that last wrote the game (as its owner
    named it), so that an owner whose commit failed on its way back can tell, once it has
    read the game again, whether that commit was made.
    """

    state: bytes
    last_id: str = START_ID
    log: tuple[bytes, ...] = ()
    live: object | None = None
    published_id: str | None = None
    commit_id: str | None = None


@dataclass(frozen=True, slots=True)
class Publication:
    """One message for one pub/sub channel."""

    channel: str
    payload: Payload


def _tuple_as_array(obj: Any) -> Any:
    if isinstance(obj, tuple):  # named tuples (a reveal's ResultRow): orjson takes plain ones
        return tuple(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


@dataclass(frozen=True, slots=True)
class Batch:
    """What one commit publishes on one channel: the game, the owner's clock when it
    published, and the routed items ``fanout.Hub.deliver`` sends (lists of JSON values, each
    frame already encoded). The embedded bus hands the object itself to the listener; Redis
    carries ``encode()``'s JSON and the listener ``decode``s it, with the same result.

    ``src`` names the replica that published it (empty from older replicas): that replica
    delivered it to its own connections already and skips it when Redis brings it back."""

    game_id: GameId
    ts: float
    items: list[list[Any]]
    src: str = ""

    def encode(self) -> bytes:
        # ``src`` leads, so that its publisher recognises a batch by its first bytes.
        data: dict[str, Any] = {"src": self.src} if self.src else {}
        data.update(g=self.game_id, ts=self.ts, items=self.items)
        return orjson.dumps(data, default=_tuple_as_array)

    @staticmethod
    def published_by(payload: bytes, replica: str) -> bool:
        """Whether ``payload`` is an encoded batch that ``replica`` published, read from its
        first bytes without decoding the rest."""
        return bool(replica) and payload.startswith(b'{"src":' + orjson.dumps(replica) + b",")

    @classmethod
    def decode(cls, payload: bytes) -> Batch:
        """Read a published batch; raises ``ValueError`` or ``KeyError`` when it is not one."""
        data = orjson.loads(payload)
        src = data.get("src")
        return cls(
            GameId(data["g"]), float(data["ts"]), list(data["items"]), "" if src is None else src
        )


def game_channel(game_id: GameId) -> str:
    return f"pq:g:{game_id}"


def replica_channel(replica_id: str) -> str:
    return f"pq:r:{replica_id}"


def stream_id_seq(entry_id: str) -> int:
    """The first part of a ``<ms>-<seq>`` id: the whole order of the embedded inbox's ids."""
    return int(entry_id.partition("-")[0])


def id_after(a: str, b: str) -> bool:
    """Whether stream id ``a`` comes strictly after ``b`` (``<ms>-<seq>`` ids)."""
    a_ms, _, a_seq = a.partition("-")
    b_ms, _, b_seq = b.partition("-")
    return (int(a_ms), int(a_seq or 0)) > (int(b_ms), int(b_seq or 0))


# Told whether a submitted entry was stored: None once it is durable, else why it was not.
Stored: TypeAlias = Callable[[BaseException | None], None]


class Inbox(Protocol):
    """Per-game durable command log; any replica appends, only the owner reads."""

    async def append(self, game_id: GameId, entry: Payload) -> str:
        """Append one command envelope; return its id once it is durable."""
        ...

    def submit(self, game_id: GameId, entry: Payload, stored: Stored) -> None:
        """Start appending one command envelope, in the order of the calls; ``stored`` is
        called with None once it is durable (at once, where storing it takes no wait), or
        with the error that kept it from being stored. No future per entry: a burst appends
        thousands a second, and each future cost a scheduled callback of its own."""
        ...

    async def read(
        self, game_id: GameId, after: str, count: int, wait: float
    ) -> list[tuple[str, Payload]]:
        """Return up to ``count`` entries after ``after``, waiting ``wait`` s for one."""
        ...


class Lease(Protocol):
    """Renewable per-game ownership: at most one replica applies commands at a time."""

    async def acquire(self, game_id: GameId, holder: str, ttl: float) -> bool:
        """Take the lease if it is free (or already ours, renewing it); return whether held."""
        ...

    async def renew(self, game_id: GameId, holder: str, ttl: float) -> bool:
        """Extend our lease, or take it back if it lapsed and nobody took it; False when
        another holder has it. Commits are fenced by the snapshot too, so a lapse that another
        replica used in between is still caught."""
        ...

    async def release(self, game_id: GameId, holder: str) -> None:
        """Give the lease up if we hold it, so another replica can take over at once."""
        ...


class SnapshotStore(Protocol):
    """Game snapshots and the join-code directory."""

    async def load(self, game_id: GameId) -> Snapshot | None: ...

    async def exists(self, game_id: GameId) -> bool: ...

    async def phase(self, game_id: GameId) -> str | None:
        """The phase of the game's last saved snapshot, or None when there is no game."""
        ...

    async def create(self, game_id: GameId, join_code: JoinCode, snapshot: Snapshot) -> bool:
        """Store the first snapshot of a game unless one exists; return whether created."""
        ...

    async def find_game(self, join_code: JoinCode) -> GameId | None: ...

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
        """Atomically, only while ``holder`` owns the lease and the stored snapshot is still
        the one at ``expected_last_id`` (when given): renew the lease, save the snapshot (its
        ``state``, plus ``new_log`` entries at their positions) and trim the inbox up to
        ``snapshot.last_id`` -- or, with no snapshot, record ``published_id`` --, record
        ``commit_id`` (when given) as the game's last commit, queue ``results`` in the outbox
        and publish.

        Return False (and change nothing) when the lease or the snapshot is not ours any more.
        """
        ...


class Bus(Protocol):
    """Publish/subscribe between replicas; messages of subscribed channels come out of
    ``messages()`` in publication order."""

    async def publish(self, publication: Publication) -> None: ...

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    def messages(self) -> AsyncIterator[tuple[str, Payload]]: ...


class ResultsOutbox(Protocol):
    """Final results waiting for the web service to acknowledge them."""

    async def pending(self) -> list[GameId]: ...

    async def get(self, game_id: GameId) -> bytes | None: ...

    async def claim(self, game_id: GameId, holder: str, ttl: float) -> bool:
        """Take (or keep) the right to deliver one game's results for ``ttl`` seconds."""
        ...

    async def remove(self, game_id: GameId) -> None: ...


class Admission(NamedTuple):
    """What the code directory and the shared limits say about one join attempt."""

    wrong_codes: int  # wrong join codes counted for the address before this attempt
    # The code's game; None when the code names none (counted as a wrong code) or was not
    # looked up (``wrong_codes`` was at the limit already).
    game_id: GameId | None
    address_joins: int = 0  # joins from the address in the current window, this one counted
    game_joins: int = 0  # joins to the game in the current window, this one counted
    banned: bool = False  # one of the attempt's ban keys was banned from the game


class Limits(Protocol):
    """Limits shared by every replica: fixed-window counters, connections held per address,
    and the keys (device, nickname, address) kicked from a game. Windows start at multiples
    of their length on the caller's clock (``now``, epoch seconds).

    A join reads the snapshot store's code directory here, with its counts, so that a
    backend can do both in one step (Redis: one command, where a join took ten commands in
    four round trips before its append)."""

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
        """Look a join attempt up and count it, as one step.

        Nothing more when ``address`` tried ``wrong_code_limit`` wrong codes in the current
        ``wrong_code_window`` already; else find the game of ``join_code`` (None: a code
        that is not one), counting a wrong code for the address when there is none; else,
        unless ``ban_keys`` is None (the attempt is refused before it counts), count a join
        for the address and the game in the current ``join_window``, tell whether one of
        ``ban_keys`` is banned from the game and keep them as ``player_id``'s, for a kick."""
        ...

    async def ban(self, game_id: GameId, player_id: str, keys: Sequence[str]) -> None:
        """Refuse joins to ``game_id`` that carry any of ``keys`` or of the keys kept for
        ``player_id`` when it joined (for the game's lifetime)."""
        ...

    async def open_connection(self, address: str, replica: str, limit: int) -> bool:
        """Count a connection of ``address`` on ``replica`` unless ``limit`` are open already
        (on live replicas); return whether it was counted."""
        ...

    async def close_connection(self, address: str, replica: str) -> None: ...

    async def heartbeat(self, replica: str, ttl: float, now: float) -> None:
        """Say that ``replica`` is alive at ``now`` (its clock), for ``ttl`` seconds; a
        replica that stops saying so stops counting against any address's connections."""
        ...

    async def last_seen(self, replicas: Sequence[str]) -> dict[str, float]:
        """When each of ``replicas`` last said it was alive (those whose word lapsed, or that
        never said it, are left out)."""
        ...


@dataclass(frozen=True, slots=True)
class Backend:
    """The set of interfaces one process runs on, with its health check and shutdown."""

    inbox: Inbox
    lease: Lease
    snapshots: SnapshotStore
    bus: Bus
    outbox: ResultsOutbox
    limits: Limits
    replicated: bool
    ping: Callable[[], Awaitable[bool]]
    close: Callable[[], Awaitable[None]]
    keeps_objects: bool = False
    """Whether the backend lives in this process and keeps objects as they are: snapshots
    carry the live (immutable) state object, inbox entries and publications the records
    given to it (``Encodable``), so nothing is encoded and decoded on the way."""
