"""The game service process: WebSocket handler, HTTP probes, runners and drain.

Owns connection life (credentials in the first frame, rate limits, error frames), which games
this replica tries to own, the bus listener feeding ``fanout``, and the SIGTERM drain. Game
rules live in ``partyquiz_core.game`` (applied by ``runner``); storage in ``backends``.
Every bad frame becomes an ``error`` frame; nothing a client sends can end the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import time
import uuid
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import OPEN, Event

try:  # what websockets unmasks frames with: its C extension, where it was built
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

from partyquiz_core import game
from partyquiz_core.codes import normalize_join_code
from partyquiz_core.errors import (
    ConflictError,
    ForbiddenError,
    GameStateError,
    NotFoundError,
    PartyQuizError,
    ValidationError,
)
from partyquiz_core.ids import DeviceId, GameId, JoinCode, PlayerId
from partyquiz_core.nicknames import NicknameFilter, nickname_keys, normalize_nickname
from partyquiz_core.protocol import (
    HOST_MESSAGE_TYPES,
    ClientMessage,
    ErrorMsg,
    HostMsg,
    JoinMsg,
    Phase,
    PongMsg,
    ResumeMsg,
    parse_client_message,
)
from partyquiz_ws.backends import (
    Admission,
    Backend,
    Batch,
    Snapshot,
    game_channel,
    replica_channel,
)
from partyquiz_ws.collector import CollectorPolicy
from partyquiz_ws.engine import (
    KIND_COMMAND,
    KIND_HOST,
    KIND_JOIN,
    KIND_RESUME,
    Engine,
    Envelope,
    personal_frames,
)
from partyquiz_ws.fanout import Client, Hub
from partyquiz_ws.metrics import WsMetrics
from partyquiz_ws.results import ResultsCourier
from partyquiz_ws.runner import GameRunner
from partyquiz_ws.settings import WsSettings
from partyquiz_ws.tokens import ResumeSigner, verify_host_token, verify_resume_token
from partyquiz_ws.webclient import WebClient

log = logging.getLogger(__name__)

WS_PATH = "/ws"
# Frames over the protocol's 4 KiB limit get a `too_large` error frame and the connection
# lives on; only a frame over this transport cap (a broken or hostile client) closes it with
# 1009. The cap bounds what one connection can buffer: max_queue frames of this size.
TRANSPORT_MAX_BYTES = 16 * 1024
# The listening socket's accept queue. After a replica drains, every one of its players
# reconnects to the others at once; with asyncio's default of 100 the kernel drops the SYNs
# beyond it and the clients retry after 1, 3, 7, 15 and 31 s (the last of 5,000 players
# resumed 30 s after a drain). The kernel caps it at net.core.somaxconn (4096 by default).
LISTEN_BACKLOG = 4096
# The first byte of a final, uncompressed text frame (FIN, no RSV bits, opcode 1).
_FIN_TEXT = 0x81
CLOSE_NO_CREDENTIALS = 4001
CLOSE_FLOODING = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4029
# Every replica says it is alive this often; one silent for FAILED_AFTER_SECONDS has failed
# (or stalls so badly that its players could not answer either), and its word lapses after
# HEARTBEAT_TTL_SECONDS (its connections stop counting against addresses).
HEARTBEAT_SECONDS = 0.5
FAILED_AFTER_SECONDS = 2.0
HEARTBEAT_TTL_SECONDS = 10.0


def address_of(ip: str) -> str:
    """What per-address limits count for ``ip``: the address, or an IPv6 address's /64 (one
    household or phone gets a whole /64)."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return ip


class GameConnection(ServerConnection):
    """A connection whose complete text frames are first offered to ``take_text``, where the
    frame is parsed, while nothing else of the connection is waiting to be handled.

    A player's answers are handled there, without a wake-up of the connection's handler per
    frame; whatever ``take_text`` declines (and every fragment, binary frame, control frame,
    or frame with invalid UTF-8) goes to the handler in order, as websockets delivers it. A
    read that holds exactly one such frame (an answer, nearly always) is offered before
    websockets parses it, and parsed by websockets only if declined.
    """

    take_text: Callable[[str], bool] | None = None

    def data_received(self, data: bytes) -> None:
        # A read that is exactly one small, complete, masked text frame, at a frame boundary
        # of an open connection with no fragmented message and no frame queued for the
        # handler, is offered to ``take_text`` here, without websockets' parser: its Python
        # path per frame (the reader, the parser's generators, the frame and event objects)
        # cost more than taking an answer does. What ``take_text`` declines, and every other
        # read, goes to websockets untouched: nothing of it was consumed here.
        take = self.take_text
        if take is not None and len(data) > 6 and data[0] == _FIN_TEXT and data[1] & 0x80:
            length, start = data[1] & 0x7F, 6
            if length == 126:
                length, start = int.from_bytes(data[2:4], "big"), 8
            elif length == 127:
                length = -1  # a 64-bit length: websockets' own path
            if len(data) == start + length and self._between_frames(length):
                try:
                    text = str(apply_mask(data[start:], data[start - 4 : start]), "utf-8")
                except UnicodeDecodeError:
                    pass  # websockets fails the connection (1007), as ever
                else:
                    if take(text):
                        return
        super().data_received(data)

    def _between_frames(self, length: int) -> bool:
        """Whether a text frame of ``length`` bytes read now would reach the handler as one
        message, as websockets would deliver it: the connection is open, nothing of another
        frame is buffered, no fragmented message is in progress, no extension transforms
        frames, the frame is within the size limit and no earlier frame waits for the
        handler."""
        protocol = self.protocol
        return (
            protocol.state is OPEN
            and not protocol.reader.buffer
            and protocol.current_size is None
            and not protocol.extensions
            and (protocol.max_message_size is None or length <= protocol.max_message_size)
            and (protocol.max_fragment_size is None or length <= protocol.max_fragment_size)
            and not self.recv_messages.frames.queue
        )

    def process_event(self, event: Event) -> None:
        take = self.take_text
        if (
            take is not None
            and isinstance(event, Frame)
            and event.opcode is Opcode.TEXT
            and event.fin
            and not self.recv_messages.frames.queue
        ):
            try:
                text = str(event.data, "utf-8")
            except UnicodeDecodeError:
                pass  # the handler's read fails the connection as websockets does
            else:
                if take(text):
                    return
        super().process_event(event)


def _text_response(status: HTTPStatus, text: str, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Cache-Control", "no-store")])
    return Response(status.value, status.phrase, headers, text.encode())


class GameService:
    """Everything one replica runs; build it, then ``serve()``."""

    def __init__(
        self,
        settings: WsSettings,
        backend: Backend,
        metrics: WsMetrics,
        web: WebClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics
        self.web = web
        self.clock = clock
        self.hub = Hub(metrics, personal_frames, self._kicked, settings.replica_id)
        self.secret = settings.jwt_secret.get_secret_value()
        self._resume_signer = ResumeSigner(self.secret)
        # Bans keep a keyed hash of an address, so Redis never holds players' addresses.
        self._address_salt = hmac.new(
            self.secret.encode(), b"partyquiz-ws:address", "sha256"
        ).digest()
        self.nickname_filter = NicknameFilter(settings.nickname_words())
        self.engine = Engine(self._sign_resume)
        self.courier = ResultsCourier(
            backend.outbox, web, metrics, settings.replica_id, settings.results_retry_max_seconds
        )
        self.runners: dict[GameId, tuple[GameRunner, asyncio.Task[None]]] = {}
        self.collector = CollectorPolicy(
            lambda: bool(self.hub.rooms),
            settings.gc_freeze_seconds,
            settings.gc_full_every_seconds,
            settings.gc_full_max_seconds,
        )
        self._stopping_runners: dict[GameId, asyncio.TimerHandle] = {}
        self._retiring: set[asyncio.Task[None]] = set()  # stopped runners still finishing
        self._started: list[GameId] = []  # games started, the web service not told yet
        self._telling: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._next_conn = 0
        self.draining = False
        self._gone = asyncio.Event()  # set whenever a connection ends

    # ---------------------------------------------------------------------- life cycle

    def _spawn(self, coro: object, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def start(self) -> None:
        """Subscribe to this replica's reply channel and start the background loops."""
        await self.backend.bus.subscribe(replica_channel(self.settings.replica_id))
        self._spawn(self._listen(), "bus-listener")
        self._spawn(self._heartbeat(), "heartbeat")
        self._spawn(self.courier.run(), "results-courier")
        self._spawn(self.collector.run(), "garbage-collector")

    async def _listen(self) -> None:
        while True:
            try:
                async for _channel, payload in self.backend.bus.messages():
                    try:
                        self.hub.deliver(payload)
                    except Exception:
                        log.exception("could not deliver a published batch")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("bus listener failed; reconnecting")
                await asyncio.sleep(0.5)

    def _deliver_here(self, batch: Batch) -> None:
        try:
            self.hub.deliver(batch)
        except Exception:
            log.exception("could not deliver a batch of this replica's own")

    async def _heartbeat(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.backend.limits.heartbeat(
                    self.settings.replica_id, HEARTBEAT_TTL_SECONDS, self.clock()
                )
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _stop_runners(self) -> None:
        # Runners are asked, not cancelled: a blocking inbox read ends within a lease third,
        # and the lease is released for the next owner right away.
        runners = list(self.runners.values())
        self.runners.clear()
        for runner, _task in runners:
            runner.stop()
        tasks = [task for _runner, task in runners] + list(self._retiring)
        if not tasks:
            return
        _done, late = await asyncio.wait(tasks, timeout=self.settings.lease_ttl_seconds + 1)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self) -> None:
        await self._stop_runners()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # ---------------------------------------------------------------------- runners

    def _ensure_runner(self, game_id: GameId) -> None:
        pending_stop = self._stopping_runners.pop(game_id, None)
        if pending_stop is not None:
            pending_stop.cancel()
        if game_id in self.runners or self.draining:
            return
        runner = GameRunner(
            game_id,
            self.backend,
            self.engine,
            self.settings.replica_id,
            self.settings.lease_ttl_seconds,
            self.settings.tick_grace_seconds,
            self.metrics,
            on_started=self.game_started,
            on_results=self.courier.wake,
            clock=self.clock,
            snapshot_every=self.settings.snapshot_interval_seconds,
            deliver_here=self._deliver_here,
        )
        task = asyncio.get_running_loop().create_task(runner.run(), name=f"runner-{game_id}")
        self.runners[game_id] = (runner, task)

    def _room_empty(self, game_id: GameId) -> None:
        # Keep owning for a lease period: a reloading page comes back within it.
        loop = asyncio.get_running_loop()
        self._stopping_runners[game_id] = loop.call_later(
            self.settings.lease_ttl_seconds, self._stop_runner, game_id
        )

    def _stop_runner(self, game_id: GameId) -> None:
        self._stopping_runners.pop(game_id, None)
        if game_id in self.hub.rooms:
            return
        entry = self.runners.pop(game_id, None)
        if entry is not None:
            entry[0].stop()
            self._retiring.add(entry[1])
            entry[1].add_done_callback(self._retiring.discard)
        self._spawn(self.backend.bus.unsubscribe(game_channel(game_id)), "unsubscribe")

    async def game_started(self, game_id: GameId) -> None:
        """Tell the web service (soon) that this game left its lobby."""
        # The games that start while the web service is being told are told together next,
        # in one request: a replica whose 500 games started at once spent most of a core for
        # a second on 500 requests, while their players answered.
        self._started.append(game_id)
        if self._telling is None or self._telling.done():
            self._telling = self._spawn(self._tell_web_started(), "started")

    async def _tell_web_started(self) -> None:
        # Each batch gets its attempts (as each game did before); games that start meanwhile
        # wait for the next.
        while self._started:
            games, self._started = self._started, []
            delay = 0.5
            for _attempt in range(8):
                try:
                    await self.web.mark_many_started(games)
                    break
                except PartyQuizError as exc:
                    log.warning("could not mark %d games started in web (%s)", len(games), exc.code)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)

    def _sign_resume(
        self, player_id: PlayerId, game_id: GameId, device_id: DeviceId, now: float, replica: str
    ) -> str:
        return self._resume_signer.sign(player_id, game_id, device_id, now, replica)

    # ---------------------------------------------------------------------- HTTP

    def _origin_allowed(self, request: Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser (bots, native apps); credentials still required
        allowed = self.settings.origins
        if allowed:
            return origin.rstrip("/") in allowed or "*" in allowed
        if self.settings.environment == "development":
            return True
        host = request.headers.get("Host", "")
        return urlsplit(origin).netloc.lower() == host.lower()

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return _text_response(HTTPStatus.OK, "ok\n", "text/plain")
        if path == "/readyz":
            if self.draining:
                return _text_response(HTTPStatus.SERVICE_UNAVAILABLE, "draining\n", "text/plain")
            try:
                async with asyncio.timeout(2.0):
                    ok = await self.backend.ping()
            except (TimeoutError, OSError):
                ok = False
            if not ok:
                return _text_response(
                    HTTPStatus.SERVICE_UNAVAILABLE, "redis unreachable\n", "text/plain"
                )
            return _text_response(HTTPStatus.OK, "ready\n", "text/plain")
        if path == "/metrics":
            return _text_response(
                HTTPStatus.OK, self.metrics.render().decode(), CONTENT_TYPE_LATEST
            )
        if path != WS_PATH:
            return _text_response(HTTPStatus.NOT_FOUND, "not found\n", "text/plain")
        if self.draining:
            self.metrics.connections_opened.labels("draining").inc()
            return _text_response(HTTPStatus.SERVICE_UNAVAILABLE, "draining\n", "text/plain")
        if not self._origin_allowed(request):
            self.metrics.connections_opened.labels("rejected_origin").inc()
            return _text_response(HTTPStatus.FORBIDDEN, "origin not allowed\n", "text/plain")
        self.metrics.connections_opened.labels("accepted").inc()
        return None

    # ---------------------------------------------------------------------- connections

    async def handler(self, conn: ServerConnection) -> None:
        self._next_conn += 1
        ip = self._client_ip(conn)
        client = Client(conn=conn, conn_id=self._next_conn, ip=ip, address=address_of(ip))
        # The handshake's request and response stay on the connection for its whole life and
        # nothing reads their headers after this point: about 3 KiB of the ~16 KiB an idle
        # player costs. Release them (websockets only checks that the request is there).
        for message in (conn.request, conn.response):
            if message is not None:
                message.headers.clear()
        client.tokens = float(self.settings.message_burst)
        if not await self._open_connection(client):
            self.metrics.limited("connections_per_address")
            self.metrics.connections_closed.labels(str(CLOSE_TOO_MANY_CONNECTIONS)).inc()
            await conn.close(CLOSE_TOO_MANY_CONNECTIONS, "too many connections from this address")
            return
        self.hub.clients[client.conn_id] = client
        self.metrics.connections.inc()
        # The whole time without a role is bounded, whatever the connection sends meanwhile.
        hello = asyncio.get_running_loop().call_later(
            self.settings.hello_timeout_seconds, self._hello_expired, client
        )
        if isinstance(conn, GameConnection):
            conn.take_text = partial(self._take_answer, client)
        try:
            async for frame in conn:
                client.busy += 1
                try:
                    await self._on_frame(client, frame)
                finally:
                    client.busy -= 1
        except ConnectionClosed:
            pass
        finally:
            if isinstance(conn, GameConnection):
                conn.take_text = None
            hello.cancel()
            self.metrics.connections.dec()
            self.metrics.connections_closed.labels(str(conn.close_code or 1006)).inc()
            await self._forget(client)
            with contextlib.suppress(Exception):
                await self.backend.limits.close_connection(client.address, self.settings.replica_id)
            self._gone.set()

    async def _open_connection(self, client: Client) -> bool:
        try:
            return await self.backend.limits.open_connection(
                client.address,
                self.settings.replica_id,
                self.settings.max_connections_per_address,
            )
        except Exception as exc:  # the limit fails open: Redis trouble is not the client's
            log.warning("connection limit not checked: %s", type(exc).__name__)
            return True

    def _hello_expired(self, client: Client) -> None:
        if client.role is None:
            self.metrics.limited("hello_timeout")
            self._close(client, CLOSE_NO_CREDENTIALS, "send join, resume or host first")

    def _close(self, client: Client, code: int, reason: str) -> None:
        self._spawn(client.conn.close(code, reason), "close")

    def _client_ip(self, conn: ServerConnection) -> str:
        """The client's address, through trusted proxies' X-Forwarded-For (for per-IP limits)."""
        remote = conn.remote_address
        ip = str(remote[0]) if isinstance(remote, tuple) and remote else "unknown"
        forwarded = conn.request.headers.get("X-Forwarded-For") if conn.request else None
        if not forwarded or not self.settings.trusts_proxy(ip):
            return ip
        # The right-most hop that is not one of our proxies is the client.
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            if not self.settings.trusts_proxy(hop):
                return hop
        return ip

    async def _forget(self, client: Client) -> None:
        game_id = client.game_id
        room = self.hub.rooms.get(game_id) if game_id is not None else None
        # A join or resume still in flight counts too: its Disconnect follows it in the inbox.
        was_current = client.pending or (
            room is not None
            and client.player_id is not None
            and room.players.get(client.player_id) is client
        )
        emptied = self.hub.leave(client)
        if game_id is None:
            return
        if was_current and not self.draining and client.player_id is not None:
            with contextlib.suppress(Exception):
                await self._append(
                    client, KIND_COMMAND, game.Disconnect(player_id=client.player_id)
                )
        if client.role == "host":
            # Even while draining: the host's screen reconnects elsewhere and counts again.
            with contextlib.suppress(Exception):
                await self._append(client, KIND_COMMAND, game.HostPresence(connected=False))
        if emptied is not None:
            self._room_empty(game_id)

    def _allow(self, client: Client) -> bool:
        now = time.monotonic()
        rate, burst = self.settings.message_rate_per_second, self.settings.message_burst
        refill = (now - client.refilled) * rate
        client.tokens = min(float(burst), client.tokens + refill)
        client.excess = max(0.0, client.excess - refill)
        client.refilled = now
        if client.tokens < 1.0:
            return False
        client.tokens -= 1.0
        return True

    def _refuse_flood(self, client: Client) -> None:
        """One notice when a connection starts flooding; close it if it keeps on."""
        self.metrics.received("rate_limited")
        noticed = client.excess > 0.0
        client.excess += 1.0
        if client.excess > self.settings.flood_close_frames:
            if client.excess - 1.0 <= self.settings.flood_close_frames:
                self.metrics.limited("flood_closed")
                self._close(client, CLOSE_FLOODING, "too many messages")
            return
        if not noticed:
            self.metrics.limited("flood_notice")
            self._error(client, ForbiddenError("slow down", code="rate_limited"))

    def _reply(self, client: Client, msg_type: str, frame: str) -> None:
        # Frames to one client are queued without awaiting; a slow client cannot block us.
        self.hub.send_one(client.conn, msg_type, frame)

    def _error(self, client: Client, exc: PartyQuizError) -> None:
        self.metrics.messages_rejected.labels(exc.code).inc()
        self._reply(client, "error", ErrorMsg(code=exc.code, message=exc.message).model_dump_json())

    async def _on_frame(self, client: Client, frame: str | bytes) -> None:
        client.frame_at = time.perf_counter()
        if not self._allow(client):
            self._refuse_flood(client)
            return
        if client.role is None:
            client.hello_frames += 1
            if client.hello_frames > self.settings.hello_max_frames:
                if client.hello_frames == self.settings.hello_max_frames + 1:
                    self.metrics.limited("hello_frames")
                    self._close(client, CLOSE_NO_CREDENTIALS, "send join, resume or host first")
                return
        try:
            if not isinstance(frame, str):
                raise ValidationError("frames are JSON text, not binary", code="bad_frame")
            message = parse_client_message(frame)
        except ValidationError as exc:
            self.metrics.received("invalid")
            self._error(client, exc)
            return
        self.metrics.received(message.type)
        try:
            await self._dispatch(client, message)
        except PartyQuizError as exc:
            self._error(client, exc)
        except Exception:
            log.exception("a client message could not be handled")
            self._error(client, _internal())

    def _take_answer(self, client: Client, frame: str) -> bool:
        """Handle a joined player's answer where its frame was parsed, when nothing else of
        its connection is being handled; False leaves the frame to the connection's handler.

        Appending starts here in the frames' order; the connection's next frames go to the
        handler until the answer is durable, so that one connection holds at most one answer
        in flight here, and its reads pause behind the handler as they would without this."""
        if client.busy or client.role != "player" or client.pending or client.game_id is None:
            return False
        try:
            message = parse_client_message(frame)
        except ValidationError:
            return False  # the handler answers it with its error
        if message.type != "answer":
            return False
        client.frame_at = time.perf_counter()
        if not self._allow(client):
            self._refuse_flood(client)
            return True
        self.metrics.received("answer")
        try:
            command = game.command_from_message(message, client.player_id)
        except PartyQuizError as exc:
            self._error(client, exc)
            return True
        except Exception:
            log.exception("a client message could not be handled")
            self._error(client, _internal())
            return True
        # Busy until the answer is durable (told at once where storing takes no wait).
        client.busy += 1
        try:
            self.backend.inbox.submit(
                client.game_id,
                self._envelope(client, KIND_COMMAND, command),
                partial(self._answer_stored, client),
            )
        except Exception as exc:
            client.busy -= 1
            log.warning("inbox append failed: %s", type(exc).__name__)
            self._error(client, _unavailable())
        return True

    def _answer_stored(self, client: Client, failure: BaseException | None) -> None:
        client.busy -= 1
        if failure is not None:
            log.warning("inbox append failed: %s", type(failure).__name__)
            self._error(client, _unavailable())
            return
        # The window in which a crash of this replica loses the answer.
        self.metrics.answer_durable.observe(time.perf_counter() - client.frame_at)

    def _envelope(
        self,
        client: Client,
        kind: str,
        command: game.Command | None,
        code: str | None = None,
        since: float | None = None,
    ) -> Envelope:
        assert client.game_id is not None
        return Envelope(
            kind,
            command,
            self.clock(),
            self.settings.replica_id,
            client.conn_id,
            device=client.device_id,
            code=code,
            since=since,
        )

    async def _append(
        self,
        client: Client,
        kind: str,
        command: game.Command | None,
        code: str | None = None,
        since: float | None = None,
    ) -> None:
        assert client.game_id is not None
        entry = self._envelope(client, kind, command, code, since)
        try:
            await self.backend.inbox.append(client.game_id, entry)
        except Exception as exc:
            log.warning("inbox append failed: %s", type(exc).__name__)
            raise _unavailable() from exc

    async def _dispatch(self, client: Client, message: ClientMessage) -> None:
        if message.type == "ping":
            pong = PongMsg(version=0, t=message.t, server_now=self.clock())
            self._reply(client, pong.type, pong.model_dump_json())
            return
        if isinstance(message, JoinMsg | ResumeMsg | HostMsg):
            if client.role is not None or client.pending:
                raise ConflictError("this connection already joined", code="already_joined")
            if isinstance(message, JoinMsg):
                await self._join(client, message)
            elif isinstance(message, ResumeMsg):
                await self._resume(client, message)
            else:
                await self._host(client, message)
            return
        if client.role is None:
            if client.pending:
                raise GameStateError("wait for welcome first", code="not_joined")
            raise ForbiddenError("send join, resume or host first", code="not_joined")
        if message.type in HOST_MESSAGE_TYPES:
            if client.role != "host":
                raise ForbiddenError("only the host can do this", code="host_only")
            command = game.command_from_message(message, None)
        elif message.type == "answer":
            if client.role != "player":
                raise ForbiddenError("only players answer", code="players_only")
            command = game.command_from_message(message, client.player_id)
        else:  # pragma: no cover - every client message type is handled above
            raise ValidationError("unexpected message", code="bad_frame")
        await self._append(client, KIND_COMMAND, command)
        if message.type == "answer":
            # The window in which a crash of this replica loses the answer.
            self.metrics.answer_durable.observe(time.perf_counter() - client.frame_at)

    async def _enter(self, client: Client, game_id: GameId) -> None:
        new_room = game_id not in self.hub.rooms
        self.hub.enter(client, game_id)
        if new_room:
            await self.backend.bus.subscribe(game_channel(game_id))
        self._ensure_runner(game_id)

    def _ban_keys(self, client: Client, nickname: str) -> list[str]:
        """What a kick bans and a join is checked against: the device id, both folded forms
        of the nickname and (unless turned off) a keyed hash of the address, never the
        address itself."""
        folded = nickname_keys(nickname)
        keys = ["nickname:" + folded.look_alike, "nickname-case:" + folded.case_first]
        if client.device_id is not None:
            keys.append("device:" + client.device_id)
        if self.settings.kick_bans_address and client.address:
            digest = hmac.new(self._address_salt, client.address.encode(), "sha256")
            keys.append("address:" + digest.hexdigest()[:32])
        return keys

    async def _admit_join(
        self,
        client: Client,
        code: JoinCode | None,
        player_id: PlayerId,
        nickname: str | None,
    ) -> Admission:
        """Look the code up and count the attempt against the limits, in one step; a
        ``nickname`` of None (refused) does not count as a join."""
        settings = self.settings
        try:
            admission = await self.backend.limits.admit_join(
                code,
                client.address,
                player_id,
                None if nickname is None else self._ban_keys(client, nickname),
                settings.wrong_code_limit,
                settings.wrong_code_window_seconds,
                settings.join_rate_window_seconds,
                self.clock(),
            )
        except Exception as exc:
            log.warning("join not looked up: %s", type(exc).__name__)
            raise _unavailable() from exc
        if admission.wrong_codes >= settings.wrong_code_limit:
            self.metrics.limited("wrong_codes")
            raise ForbiddenError(
                "too many wrong join codes; wait a minute", code="too_many_attempts"
            )
        return admission

    def _check_join_limits(self, admission: Admission) -> None:
        settings = self.settings
        if admission.banned:
            self.metrics.limited("banned")
            raise ForbiddenError("you were removed from this game", code="banned")
        if admission.address_joins > settings.join_rate_per_address:
            self.metrics.limited("joins_per_address")
            raise ForbiddenError(
                "too many joins from this address; try again in a few seconds",
                code="too_many_joins",
            )
        if admission.game_joins > settings.join_rate_per_game:
            self.metrics.limited("joins_per_game")
            raise ForbiddenError(
                "too many players are joining this game; try again in a few seconds",
                code="too_many_joins",
            )

    def _kicked(
        self, game_id: GameId, player_id: PlayerId, nickname: str | None
    ) -> asyncio.Task[None]:
        """Record a kick's bans: what the player joined with (device, nickname, address) and
        its nickname as it was at the kick. Every replica the kick reaches does it; it is the
        same set each time. The hub closes the kicked player's connection once this is done."""
        keys: list[str] = []
        if nickname is not None:
            folded = nickname_keys(nickname)
            keys = ["nickname:" + folded.look_alike, "nickname-case:" + folded.case_first]
        return self._spawn(self._ban(game_id, player_id, keys), "ban")

    async def _ban(self, game_id: GameId, player_id: PlayerId, keys: list[str]) -> None:
        try:
            await self.backend.limits.ban(game_id, player_id, keys)
        except Exception as exc:
            log.warning("a kick's ban was not recorded: %s", type(exc).__name__)

    async def _join(self, client: Client, message: JoinMsg) -> None:
        # What needs no Redis is decided first; the refusals keep their order: too many
        # wrong codes, a code that is not one, no game with it, the nickname, the limits.
        bad_code: ValidationError | None = None
        code: JoinCode | None = None
        try:
            code = normalize_join_code(message.code)
        except ValidationError as exc:
            bad_code = exc
        refused: ValidationError | None = None  # the nickname's refusal, if any
        nickname = ""
        try:
            nickname = normalize_nickname(message.nickname)
            if self.nickname_filter.refuses(nickname):
                raise ValidationError(
                    "this nickname is not allowed here; choose another one",
                    code="nickname_refused",
                )
        except ValidationError as exc:
            refused = exc
        client.device_id = DeviceId(message.device_id)
        player_id = PlayerId(uuid.uuid4().hex)
        admission = await self._admit_join(
            client, code, player_id, None if refused is not None else nickname
        )
        if bad_code is not None:
            raise bad_code
        game_id = admission.game_id
        if game_id is None:
            raise NotFoundError(
                "no open game with this code (is the host screen open?)", code="unknown_code"
            )
        if refused is not None:
            raise refused
        self._check_join_limits(admission)
        client.player_id = player_id
        client.pending = True
        await self._enter(client, game_id)
        join = game.Join(player_id=player_id, device_id=client.device_id, nickname=nickname)
        try:
            await self._append(client, KIND_JOIN, join)
        except PartyQuizError:
            client.pending = False
            raise

    async def _resume(self, client: Client, message: ResumeMsg) -> None:
        claims = verify_resume_token(self.secret, message.resume_token)
        if not await self.backend.snapshots.exists(claims.game_id):
            raise NotFoundError("this game is over or unknown", code="unknown_game")
        client.device_id = claims.device_id
        client.player_id = claims.player_id
        client.pending = True
        since = await self._failed_since(claims.replica)
        await self._enter(client, claims.game_id)
        await self._append(
            client, KIND_RESUME, game.Reconnect(player_id=claims.player_id), since=since
        )

    async def _failed_since(self, replica: str | None) -> float | None:
        """When ``replica`` (which held a resuming player's connection) was last alive, if it
        has failed since: the server's own record, never the client's word or clock."""
        if not replica or replica == self.settings.replica_id:
            return None
        try:
            seen = await self.backend.limits.last_seen([replica])
        except Exception as exc:
            log.warning("replica liveness not checked: %s", type(exc).__name__)
            return None
        last = seen.get(replica)
        if last is None or self.clock() - last < FAILED_AFTER_SECONDS:
            return None  # alive (the player's own network dropped), or gone for long
        return last

    async def _host(self, client: Client, message: HostMsg) -> None:
        claims = verify_host_token(self.secret, message.host_token)
        snapshots = self.backend.snapshots
        phase = await snapshots.phase(claims.game_id)
        if phase is not None:
            # Checked on every connection, not only the first: the code may have moved on to
            # another game, and an ended game takes no host any more.
            if await snapshots.find_game(claims.join_code) != claims.game_id:
                raise ForbiddenError("the host token does not match the game", code="forbidden")
            if phase == Phase.ENDED:
                raise GameStateError("this game has ended", code="game_ended")
        else:
            found = await self.web.get_game(claims.join_code)
            if found.game_id != claims.game_id or found.host_id != claims.host_id:
                raise ForbiddenError("the host token does not match the game", code="forbidden")
            if found.status == "ended":
                raise GameStateError("this game has ended", code="game_ended")
            state = game.new_game(
                found.game_id,
                found.quiz,
                game.settings_for(found.quiz).model_copy(
                    update={"max_players": self.settings.max_players_per_game}
                ),
            )
            await self.backend.snapshots.create(
                found.game_id, found.join_code, Snapshot(state=state.model_dump_json().encode())
            )
        client.role = "host"
        await self._enter(client, claims.game_id)
        await self._append(client, KIND_HOST, None, code=claims.join_code)

    # ---------------------------------------------------------------------- drain

    async def drain(self) -> None:
        """Stop owning games, refuse new connections and send clients elsewhere (1012)."""
        if self.draining:
            return
        self.draining = True
        log.info("draining: %d connections", len(self.hub.clients))
        for handle in self._stopping_runners.values():
            handle.cancel()
        self._stopping_runners.clear()
        await self._stop_runners()
        for client in list(self.hub.clients.values()):
            self._spawn(
                client.conn.close(CloseCode.SERVICE_RESTART, "server restarting; reconnect"),
                "close",
            )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.drain_seconds):
                await self._all_gone()
        log.info("drained; %d connections left", len(self.hub.clients))

    async def _all_gone(self) -> None:
        while self.hub.clients:
            self._gone.clear()
            await self._gone.wait()


def _unavailable() -> PartyQuizError:
    return PartyQuizError("the game is unavailable right now; try again", code="unavailable")


def _internal() -> PartyQuizError:
    return PartyQuizError("the server could not handle this", code="internal")


async def run_service(
    service: GameService, stop: asyncio.Event, listening: asyncio.Event | None = None
) -> None:
    """Serve until ``stop`` is set, then drain and shut down; ``listening`` is set once bound."""
    settings = service.settings
    await service.start()
    server: Server
    async with serve(
        service.handler,
        settings.host,
        settings.port,
        process_request=service.process_request,
        max_size=TRANSPORT_MAX_BYTES,
        compression=None,
        max_queue=32,
        backlog=LISTEN_BACKLOG,
        ping_interval=20,
        ping_timeout=20,
        server_header="partyquiz-ws",
        create_connection=GameConnection,
    ) as server:
        log.info(
            "partyquiz-ws listening on %s:%d (%s)",
            settings.host,
            settings.port,
            "redis, multi-replica"
            if service.backend.replicated
            else "embedded mode: single replica, state in this process only",
        )
        if listening is not None:
            listening.set()
        await stop.wait()
        await service.drain()
        server.close(close_connections=True, code=CloseCode.SERVICE_RESTART)
    await service.stop()
