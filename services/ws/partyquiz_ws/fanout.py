"""Local fan-out: which connections of this replica belong to which game, and delivery.

Owns the per-game rooms of this replica and turns one published batch (see ``routing``) into
writes of pre-encoded frames, splitting the reveal's per-player results for local players
only. It never applies game rules and never awaits a single client.

``send_text`` is where frames leave: it builds the WebSocket frame ONCE and writes the same
bytes to every open connection's transport, which is what ``websockets.broadcast()`` does minus
serialising the frame again for each connection (a server frame is unmasked, and compression
is off, so the bytes are the same for everyone). Connections that are closing or that
negotiated an extension are skipped or left to websockets, exactly as ``broadcast()`` would.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.protocol import OPEN

from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_ws.backends import Batch, Payload, payload_bytes
from partyquiz_ws.metrics import WsMetrics

log = logging.getLogger(__name__)

# Close code sent to a kicked player's connections (application range 4000-4999).
CLOSE_KICKED = 4003
# Close code sent to a player's connection when the player resumed on a newer one.
CLOSE_REPLACED = 4009


def text_frame(payload: bytes) -> bytes:
    """Return ``payload`` (UTF-8 JSON) as one final, unmasked WebSocket text frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def send_text(conns: Iterable[ServerConnection], *payloads: bytes) -> int:
    """Send text messages to many connections without awaiting; return how many got them.

    Several payloads go out as consecutive frames in ONE write per connection. Like
    ``websockets.broadcast()``: no backpressure (a slow client's buffer grows until its
    keepalive times out), connections that are not open are skipped, and a failed write on
    one connection does not stop the others.
    """
    frames = b"".join(text_frame(payload) for payload in payloads)
    return sum(1 for conn in conns if _write(conn, frames, payloads))


def _write(conn: ServerConnection, frames: bytes, payloads: tuple[bytes, ...]) -> bool:
    """Write ``frames`` (``payloads``, framed) to ``conn`` if it is open; never raise."""
    protocol = conn.protocol
    if protocol.state is not OPEN or conn.send_in_progress is not None:
        return False
    try:
        if protocol.extensions:  # never with compression off; websockets frames them then
            for payload in payloads:
                broadcast([conn], payload, text=True)
        else:
            conn.transport.write(frames)
    except Exception as exc:
        log.warning("skipped a send: %s", type(exc).__name__)
        return False
    return True


@dataclass(eq=False, slots=True)
class Client:
    """One WebSocket connection and what it has proven about itself."""

    conn: ServerConnection
    conn_id: int
    ip: str
    role: str | None = None  # None until join/resume/host succeeded: "player" | "host"
    game_id: GameId | None = None
    player_id: PlayerId | None = None
    device_id: DeviceId | None = None
    pending: bool = False  # a join/resume is in flight
    address: str = ""  # what per-address limits count: the IP, an IPv6 address's /64
    tokens: float = 0.0  # rate limit: messages it may send now
    refilled: float = field(default_factory=time.monotonic)
    excess: float = 0.0  # frames over the rate limit, draining at the sustained rate
    hello_frames: int = 0  # frames sent before it had a role
    frame_at: float = 0.0  # perf_counter() when its latest frame was parsed
    busy: int = 0  # its frames being handled, or answers taken at the parser not yet durable


@dataclass(eq=False, slots=True)
class Room:
    game_id: GameId
    everyone: set[ServerConnection] = field(default_factory=set)
    hosts: set[ServerConnection] = field(default_factory=set)
    players: dict[PlayerId, Client] = field(default_factory=dict)
    clients: set[Client] = field(default_factory=set)


# A reveal's version and question index -> the encoder of each player's personal result.
PersonalFrames = Callable[[int, Any], Callable[[Sequence[Any]], bytes]]
# Told of every kick this replica delivers: the game, the player, and its nickname (None from
# older replicas); returns what records the kick's bans, if anything does, which the kicked
# player's connection is closed after.
KickedHook = Callable[[GameId, PlayerId, str | None], asyncio.Future[None] | None]
# How long a kicked player's close waits for its bans to be recorded: the close is what prompts
# a rejoin, which must find them; a Redis that does not answer does not keep the player on.
KICK_BANS_WAIT_S = 2.0


def _no_hook(game_id: GameId, player_id: PlayerId, nickname: str | None) -> None:
    return None


class Hub:
    """Rooms of this replica; ``deliver`` is the only place frames leave for many clients."""

    def __init__(
        self,
        metrics: WsMetrics,
        personal_frames: PersonalFrames,
        on_kicked: KickedHook = _no_hook,
        replica_id: str = "",
    ) -> None:
        self.rooms: dict[GameId, Room] = {}
        self.replica_id = replica_id
        self._on_kicked = on_kicked
        self.clients: dict[int, Client] = {}
        self._metrics = metrics
        self._personal_frames = personal_frames
        self._closing: set[asyncio.Task[None]] = set()
        # Messages sent per type during one ``deliver``, counted once at its end: a batch of a
        # burst holds hundreds of receipts, and each count takes the metric's lock.
        self._delivering: dict[str, int] | None = None

    def room(self, game_id: GameId) -> Room:
        room = self.rooms.get(game_id)
        if room is None:
            room = self.rooms[game_id] = Room(game_id)
            self._metrics.active_games.set(len(self.rooms))
        return room

    def enter(self, client: Client, game_id: GameId) -> Room:
        """Put a connection in a game's room (it receives the game's broadcasts)."""
        if client.game_id is not None and client.game_id != game_id:
            previous = self.rooms.get(client.game_id)
            if previous is not None:
                previous.clients.discard(client)
        room = self.room(game_id)
        client.game_id = game_id
        room.clients.add(client)
        if client.role == "host":
            room.hosts.add(client.conn)
            room.everyone.add(client.conn)
        elif client.role == "player" and client.player_id is not None:
            self.bind_player(room, client, client.player_id)
        return room

    def bind_player(self, room: Room, client: Client, player_id: PlayerId) -> None:
        previous = room.players.get(player_id)
        if previous is not None and previous is not client:
            # The same player on a newer connection (reload, or a token used elsewhere).
            self._replace(room, previous)
        client.role = "player"
        client.player_id = player_id
        client.pending = False
        room.players[player_id] = client
        room.everyone.add(client.conn)
        room.clients.add(client)
        self._metrics.active_players.set(self.player_count())

    def _replace(self, room: Room, client: Client) -> None:
        """Take a player's older connection out of the game and close it (4009): one
        identity plays on one connection."""
        room.everyone.discard(client.conn)
        if client.player_id is not None and room.players.get(client.player_id) is client:
            del room.players[client.player_id]
        client.role = None
        client.player_id = None
        self._close_soon(client.conn, CLOSE_REPLACED, "this player connected again elsewhere")

    def _close_soon(
        self,
        conn: ServerConnection,
        code: int,
        reason: str,
        after: asyncio.Future[None] | None = None,
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._close(conn, code, reason, after))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(
        conn: ServerConnection, code: int, reason: str, after: asyncio.Future[None] | None
    ) -> None:
        if after is not None:
            await asyncio.wait((after,), timeout=KICK_BANS_WAIT_S)
        await conn.close(code, reason)

    def leave(self, client: Client) -> Room | None:
        """Take a connection out of its room; return the room when it is now empty."""
        self.clients.pop(client.conn_id, None)
        if client.game_id is None:
            return None
        room = self.rooms.get(client.game_id)
        if room is None:
            return None
        room.clients.discard(client)
        room.everyone.discard(client.conn)
        room.hosts.discard(client.conn)
        if client.player_id is not None and room.players.get(client.player_id) is client:
            del room.players[client.player_id]
        self._metrics.active_players.set(self.player_count())
        if room.clients:
            return None
        del self.rooms[client.game_id]
        self._metrics.active_games.set(len(self.rooms))
        return room

    def player_count(self) -> int:
        return sum(len(r.players) for r in self.rooms.values())

    def deliver(self, payload: Payload) -> None:
        """Fan one published batch out to the local connections it concerns.

        A batch this replica published came to its connections straight from its runner
        (``Batch`` objects are handed over as they are); when the bus brings it back encoded,
        it is skipped."""
        started = time.perf_counter()
        if isinstance(payload, Batch):
            batch = payload
        else:
            data = payload_bytes(payload)
            if Batch.published_by(data, self.replica_id):
                return
            batch = Batch.decode(data)
        self._metrics.pubsub_lag.observe(max(0.0, time.time() - batch.ts))
        room = self.rooms.get(batch.game_id)
        counts: dict[str, int] = {}
        self._delivering = counts
        try:
            self._deliver_items(room, batch.items)
        finally:
            self._delivering = None
            for msg_type, count in counts.items():
                self._metrics.sent(msg_type, count)
        self._metrics.broadcast_duration.observe(time.perf_counter() - started)

    def _deliver_items(self, room: Room | None, items: list[list[Any]]) -> None:
        i = 0
        while i < len(items):
            item = items[i]
            following = items[i + 1] if i + 1 < len(items) else None
            if (
                room is not None
                and item[0] == "all"
                and item[1] == "reveal"
                and following is not None
                and following[0] == "results"
            ):
                # A reveal and its personal results: one write per player carries both.
                self._split_results(room, following, reveal=item)
                i += 2
            else:
                self._deliver_item(room, item)
                i += 1

    def send(self, conns: Iterable[ServerConnection], msg_type: str, frame: str) -> None:
        """Send one encoded message to ``conns`` and count it per recipient."""
        sent = send_text(conns, frame.encode())
        if sent:
            self._count(msg_type, sent)

    def send_one(self, conn: ServerConnection, msg_type: str, frame: str) -> None:
        """``send`` to one connection (a reply; a burst of answers makes thousands)."""
        payload = frame.encode()
        if _write(conn, text_frame(payload), (payload,)):
            self._count(msg_type, 1)

    def _count(self, msg_type: str, sent: int) -> None:
        counts = self._delivering
        if counts is None:
            self._metrics.sent(msg_type, sent)
        else:
            counts[msg_type] = counts.get(msg_type, 0) + sent

    def _deliver_item(self, room: Room | None, item: list[Any]) -> None:
        kind = item[0]
        if kind == "conn":  # [conn, type, conn_id, frame]: a reply (a receipt, say)
            client = self.clients.get(item[2])
            if client is not None:
                self.send_one(client.conn, item[1], item[3])
            return
        if kind == "refused":  # [refused, type, conn_id, frame]: a join/resume was refused
            client = self.clients.get(item[2])
            if client is not None:
                if client.role is None:
                    client.pending = False
                    client.player_id = None
                self.send_one(client.conn, item[1], item[3])
            return
        if kind == "joined":  # [joined, type, conn_id, player_id, frame]
            client = self.clients.get(item[2])
            if client is None or client.game_id is None:
                return
            self.bind_player(self.room(client.game_id), client, PlayerId(item[3]))
            self.send_one(client.conn, item[1], item[4])
            return
        if room is None:
            return
        if kind == "all":  # [all, type, frame] or [all, type, players' frame, hosts' frame]
            if len(item) > 3:
                self.send(room.hosts, item[1], item[3])
                self.send(room.everyone - room.hosts, item[1], item[2])
            else:
                self.send(room.everyone, item[1], item[2])
        elif kind == "host":  # [host, type, frame]
            self.send(room.hosts, item[1], item[2])
        elif kind == "player":  # [player, type, player_id, frame]
            client = room.players.get(item[2])
            if client is not None:
                self.send_one(client.conn, item[1], item[3])
        elif kind == "results":  # [results, type, version, question_index, {pid: row}]
            self._split_results(room, item)
        elif kind == "kicked":  # [kicked, player_id, nickname]
            client = room.players.get(item[1])
            nickname = item[2] if len(item) > 2 else None
            recorded = self._on_kicked(room.game_id, PlayerId(item[1]), nickname)
            if client is not None:  # closed once the bans are in: the close prompts rejoins
                self._close_soon(client.conn, CLOSE_KICKED, "kicked by the host", recorded)
        elif kind == "resumed":  # [resumed, player_id, replica, conn_id]: on that one only
            client = room.players.get(item[1])
            if client is not None and (item[2] != self.replica_id or client.conn_id != item[3]):
                self._replace(room, client)

    def _split_results(self, room: Room, item: list[Any], reveal: list[Any] | None = None) -> None:
        """Send each local player its own row of a reveal (the one per-player step of fan-out).

        With ``reveal`` (the public message that precedes the rows in the batch), each player
        gets both frames in one write, which halves the system calls of a reveal; connections
        without a row (hosts, screens, a player who joined after the close) get it alone.
        """
        msg_type, version, question_index, rows = item[1], item[2], item[3], item[4]
        if reveal is not None:
            # Screens first: the host's next command can be on its way while players receive.
            self.send(room.hosts, reveal[1], reveal[2])
        encode = self._personal_frames(version, question_index)
        public = () if reveal is None else (reveal[2].encode(),)
        prefix = b"".join(text_frame(p) for p in public)  # framed once for every player
        served: set[ServerConnection] = set()
        find = rows.get
        for player_id, client in room.players.items():
            row = find(player_id)
            if row is None:
                continue
            personal = encode(row)
            if _write(client.conn, prefix + text_frame(personal), (*public, personal)):
                served.add(client.conn)
        if served:
            self._count(msg_type, len(served))
        if reveal is not None:
            if served:
                self._count(reveal[1], len(served))
            self.send(room.everyone - served - room.hosts, reveal[1], reveal[2])
