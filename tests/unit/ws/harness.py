"""A real game service in the test's event loop, and a small protocol client for tests.

The service is the same ``GameService`` the CLI runs, listening on a free loopback port with
the backend the test chooses (embedded memory or Redis). Nothing is faked: frames go over real
WebSockets. Waits are on received messages, each with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from tests.servers import free_port
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from partyquiz_core.game import new_game
from partyquiz_core.ids import GameId, JoinCode
from partyquiz_core.quiz import Quiz
from partyquiz_ws.backends import Backend, Snapshot
from partyquiz_ws.memory_backend import memory_backend
from partyquiz_ws.metrics import WsMetrics
from partyquiz_ws.server import GameService, run_service
from partyquiz_ws.settings import WsSettings
from partyquiz_ws.webclient import WebClient

SECRET = "test-secret-0123456789-abcdefghijklmnop"
WAIT = 10.0

QUIZ = Quiz.model_validate(
    {
        "title": "Capitals",
        "settings": {"get_ready_seconds": 0},
        "questions": [
            {
                "text": "Capital of France?",
                "choices": [{"text": "Paris"}, {"text": "Lyon"}, {"text": "Nice"}],
                "correct": [0],
                "time_limit_seconds": 20,
                "read_seconds": 0,
            },
            {
                "text": "Capital of Italy?",
                "choices": [{"text": "Milan"}, {"text": "Rome"}],
                "correct": [1],
                "time_limit_seconds": 20,
                "read_seconds": 0,
            },
            {
                "kind": "poll",
                "text": "Favourite?",
                "choices": [{"text": "Paris"}, {"text": "Rome"}],
                "time_limit_seconds": 20,
                "read_seconds": 0,
            },
        ],
    }
)


def host_token(game_id: str, join_code: str, secret: str = SECRET, host_id: str = "host-1") -> str:
    now = int(time.time())
    return jwt.encode(
        {
            "iss": "partyquiz",
            "aud": "partyquiz-ws:host",
            "sub": host_id,
            "game_id": game_id,
            "join_code": join_code,
            "iat": now,
            "exp": now + 3600,
        },
        secret,
        algorithm="HS256",
    )


def settings_for(port: int, **overrides: Any) -> WsSettings:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "environment": "development",
        "host": "127.0.0.1",
        "port": port,
        "web_internal_url": "http://127.0.0.1:9",
        "drain_seconds": 5.0,
        "lease_ttl_seconds": 1.5,
    }
    values.update(overrides)
    return WsSettings(**values)


@dataclass
class Running:
    service: GameService
    url: str
    http: str


class Clock:
    """A server clock the test moves; starts at the real time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    @classmethod
    def at_window_start(cls, window: float) -> Clock:
        """A clock a second into a fresh fixed window of ``window`` seconds, so a test's
        counting never straddles two windows."""
        clock = cls()
        clock.offset = window - time.time() % window + 1.0
        return clock


@contextlib.asynccontextmanager
async def running_service(
    backend: Backend | None = None, clock: Clock | None = None, **overrides: Any
) -> AsyncIterator[Running]:
    """Run a game service until the block ends (drained like on SIGTERM)."""
    port = free_port()
    settings = settings_for(port, **overrides)
    backend = backend or memory_backend()
    web = WebClient(settings.web_internal_url, settings.jwt_secret.get_secret_value())
    service = GameService(settings, backend, WsMetrics(), web, clock=clock or time.time)
    stop, listening = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_service(service, stop, listening))
    done, _ = await asyncio.wait(
        [task, asyncio.create_task(listening.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    if task in done:
        task.result()
    try:
        yield Running(service, f"ws://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await web.aclose()


async def create_game(
    backend: Backend, quiz: Quiz = QUIZ, join_code: str = "ABCDEF", game_id: str | None = None
) -> tuple[GameId, JoinCode]:
    """Store a new game the way the host's first connection does, without the web service."""
    game_id = GameId(game_id or uuid.uuid4().hex)
    state = new_game(game_id, quiz)
    await backend.snapshots.create(
        game_id, JoinCode(join_code), Snapshot(state=state.model_dump_json().encode())
    )
    return game_id, JoinCode(join_code)


class Peer:
    """One test client: send dicts, wait for message types."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> Peer:
        return cls(await connect(url, compression=None, **kwargs))

    @classmethod
    async def hosting(cls, url: str, game_id: str, code: str, **kwargs: Any) -> Peer:
        """Open a connection that hosts the game (in Redis mode its replica then owns it)."""
        host = await cls.open(url, **kwargs)
        await host.send(type="host", host_token=host_token(game_id, code))
        await host.expect("host_welcome")
        return host

    async def send(self, **message: Any) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def next(self, within: float = WAIT) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), within)
        assert isinstance(raw, str), f"the server sent a binary frame: {raw!r}"
        message: dict[str, Any] = orjson.loads(raw)
        self.received.append(message)
        return message

    async def expect(self, *types: str, within: float = WAIT) -> dict[str, Any]:
        """Read until a message of one of ``types`` arrives; return it."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no {types} within {within}s; got {self.received[-5:]}")
            message = await self.next(left)
            if message["type"] in types:
                return message

    async def close(self) -> None:
        await self.ws.close()

    async def until_closed(self, within: float = WAIT) -> tuple[list[dict[str, Any]], int | None]:
        """Read every message until the server closes; return them and the close code."""
        messages: list[dict[str, Any]] = []
        try:
            while True:
                messages.append(await self.next(within))
        except ConnectionClosed as closed:
            return messages, None if closed.rcvd is None else closed.rcvd.code

    async def join(self, code: str, nickname: str, device_id: str | None = None) -> dict[str, Any]:
        await self.send(
            type="join", code=code, nickname=nickname, device_id=device_id or uuid.uuid4().hex
        )
        return await self.expect("welcome", "error")


class ServiceThread:
    """A game service on its own event loop in a thread, for synchronous clients."""

    def __init__(self, **overrides: Any) -> None:
        self._overrides = overrides
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self.running: Running | None = None
        self.backend = memory_backend()
        self.failure: BaseException | None = None

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with running_service(self.backend, **self._overrides) as running:
                self.running = running
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self.failure = exc
            self._ready.set()
            raise

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the service's loop and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(WAIT)

    def __enter__(self) -> ServiceThread:
        self._thread.start()
        if not self._ready.wait(WAIT) or self.failure is not None:
            raise RuntimeError(f"game service did not start: {self.failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
