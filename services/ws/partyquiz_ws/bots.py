"""Simulated players (and optionally the host) that play a real game against a deployment.

Owns ``partyquiz-bots``: N players join with a code, answer at random after realistic delays,
reconnect and resume when dropped (close 1012 during a rollout), and report what they saw. One
asyncio process drives thousands of players: one coroutine and one socket each, frames parsed
with orjson, no per-message models. It talks only the public protocol (docs/protocol.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

log = logging.getLogger("partyquiz_ws.bots")

CLOSE_KICKED = 4003
RECONNECT_FIRST_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 5.0

SAMPLE_QUIZ: dict[str, Any] = {
    "title": "Bot warm-up",
    "settings": {"get_ready_seconds": 0},
    "questions": [
        {
            "text": "Which planet is closest to the sun?",
            "choices": [{"text": "Mercury"}, {"text": "Venus"}, {"text": "Mars"}],
            "correct": [0],
            "time_limit_seconds": 10,
            "read_seconds": 0,
        },
        {
            "kind": "multiple",
            "text": "Which are prime numbers?",
            "choices": [{"text": "2"}, {"text": "4"}, {"text": "5"}, {"text": "9"}],
            "correct": [0, 2],
            "time_limit_seconds": 10,
            "read_seconds": 0,
        },
        {
            "kind": "true_false",
            "text": "Water boils at 100 °C at sea level.",
            "choices": [{"text": "True"}, {"text": "False"}],
            "correct": [0],
            "time_limit_seconds": 10,
            "read_seconds": 0,
        },
    ],
}


@dataclass
class BotConfig:
    """What to play; ``ws_urls`` are tried round-robin (players spread, reconnects rotate)."""

    ws_urls: list[str]
    join_code: str
    players: int
    host_token: str | None = None
    min_delay: float = 0.3
    max_delay: float = 3.0
    answer_ratio: float = 1.0
    """Share of questions each bot answers at all."""
    host_pause: float = 0.0
    """Seconds the host bot waits before each ``next`` (0: as fast as possible)."""
    lobby_timeout: float = 60.0
    """The host bot starts after this long even if not every player joined."""
    game_timeout: float = 900.0
    seed: int | None = None
    connect_concurrency: int = 200
    on_receipt: Callable[[int, int], None] | None = None
    """Called with (player index, question index) for every receipt; for tests and tools."""


@dataclass
class PlayerReport:
    index: int
    nickname: str
    player_id: str | None = None
    resume_token: str | None = None
    questions: list[int] = field(default_factory=list)
    receipts: dict[int, dict[str, Any]] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    final: list[dict[str, Any]] | None = None
    score: int = 0
    reconnects: int = 0
    ended: bool = False
    kicked: bool = False
    error: str | None = None


@dataclass
class HostReport:
    game_id: str | None = None
    join_code: str | None = None
    podium: list[dict[str, Any]] | None = None
    final_leaderboard: list[dict[str, Any]] | None = None
    ended: bool = False
    reconnects: int = 0
    player_count: int = 0


@dataclass
class GameReport:
    players: list[PlayerReport]
    host: HostReport | None
    seconds: float

    def summary(self) -> dict[str, Any]:
        joined = [p for p in self.players if p.player_id]
        return {
            "players": len(self.players),
            "joined": len(joined),
            "finished": sum(p.ended for p in self.players),
            "answers_accepted": sum(len(p.receipts) for p in self.players),
            "answers_refused": sum(sum(p.refusals.values()) for p in self.players),
            "reconnects": sum(p.reconnects for p in self.players),
            "errors": sorted({p.error for p in self.players if p.error}),
            "podium": [(e["nickname"], e["score"]) for e in (self.host.podium or [])]
            if self.host
            else None,
            "seconds": round(self.seconds, 2),
        }


class _Session:
    """Connects, resumes on drops, and hands every message to ``on_message``."""

    def __init__(self, urls: Sequence[str], offset: int, gate: asyncio.Semaphore) -> None:
        self.gate = gate
        self.urls = list(urls)
        self.offset = offset
        self.ws: ClientConnection | None = None
        self.attempt = 0

    async def open(self) -> ClientConnection:
        delay = RECONNECT_FIRST_SECONDS
        while True:
            url = self.urls[(self.offset + self.attempt) % len(self.urls)]
            self.attempt += 1
            try:
                async with self.gate:  # spread connection bursts over the accept backlog
                    self.ws = await connect(
                        url, compression=None, open_timeout=10, max_size=2**22, ping_interval=None
                    )
                return self.ws
            except (OSError, InvalidHandshake, InvalidStatus, TimeoutError) as exc:
                log.debug("connect to %s failed: %s", url, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def send(self, **message: Any) -> None:
        if self.ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(orjson.dumps(message).decode())


def _pick(rng: random.Random, kind: str, n: int) -> list[int]:
    if kind == "multiple":
        k = rng.randint(1, n)
        return sorted(rng.sample(range(n), k))
    return [rng.randrange(n)]


async def _play(
    config: BotConfig, report: PlayerReport, rng: random.Random, gate: asyncio.Semaphore
) -> None:
    session = _Session(config.ws_urls, report.index, gate)
    device_id = uuid.uuid4().hex
    answer_task: asyncio.Task[None] | None = None
    waited = 0.0
    while not report.ended and not report.kicked:
        ws = await session.open()
        if report.resume_token:
            report.reconnects += 1
            await session.send(type="resume", resume_token=report.resume_token)
        else:
            await session.send(
                type="join", code=config.join_code, nickname=report.nickname, device_id=device_id
            )
        try:
            async for raw in ws:
                msg = orjson.loads(raw)
                kind = msg["type"]
                if kind == "question":
                    answer_task = _schedule_answer(config, session, report, rng, msg)
                elif kind == "answer_receipt":
                    report.receipts[msg["question_index"]] = {
                        "choices": msg["choices"],
                        "elapsed": msg["elapsed"],
                    }
                    if config.on_receipt is not None:
                        config.on_receipt(report.index, msg["question_index"])
                elif kind == "personal_result":
                    report.results[msg["question_index"]] = msg["result"]
                    report.score = msg["result"]["score"]
                elif kind == "welcome":
                    report.player_id = msg["player_id"]
                    report.resume_token = msg["resume_token"]
                    _catch_up(config, session, report, rng, msg["state"])
                elif kind in ("podium", "leaderboard"):
                    report.final = msg["entries"]
                elif kind == "ended":
                    report.ended = True
                    break
                elif kind == "kicked":
                    report.kicked = True
                    break
                elif kind == "error":
                    code = msg["code"]
                    report.refusals[code] = report.refusals.get(code, 0) + 1
                    if report.player_id is None and code == "unknown_code" and waited < 30:
                        # The host's screen is not open yet: try again shortly.
                        await asyncio.sleep(0.5)
                        waited += 0.5
                        await session.send(
                            type="join",
                            code=config.join_code,
                            nickname=report.nickname,
                            device_id=device_id,
                        )
                    elif report.player_id is None and code != "rate_limited":
                        report.error = code
                        return
        except ConnectionClosed as closed:
            if closed.rcvd is not None and closed.rcvd.code == CLOSE_KICKED:
                report.kicked = True
        finally:
            if answer_task is not None and report.ended:
                answer_task.cancel()
        if report.player_id is None and report.error is None:
            continue  # dropped before welcome: join again
    if session.ws is not None:
        with contextlib.suppress(ConnectionClosed):
            await session.ws.close()


def _catch_up(
    config: BotConfig,
    session: _Session,
    report: PlayerReport,
    rng: random.Random,
    state: dict[str, Any],
) -> None:
    """After a (re)join mid-question, answer if not answered yet and time is left."""
    me = state.get("me") or {}
    report.score = me.get("score", report.score)
    question = state.get("question")
    recorded, elapsed = state.get("my_answer"), state.get("my_answer_elapsed")
    if question is not None and recorded is not None and elapsed is not None:
        # The answer counted but its receipt was lost with the old connection.
        report.receipts.setdefault(question["index"], {"choices": recorded, "elapsed": elapsed})
    if state.get("phase") != "question" or question is None or recorded:
        return
    if question["index"] in report.receipts:
        return
    msg = {
        **question,
        "deadline": state.get("deadline") or 0.0,
        "opens_at": state.get("opens_at"),
        "server_now": state.get("server_now") or 0.0,
    }
    _schedule_answer(config, session, report, rng, msg)


def _schedule_answer(
    config: BotConfig,
    session: _Session,
    report: PlayerReport,
    rng: random.Random,
    msg: dict[str, Any],
) -> asyncio.Task[None] | None:
    index = msg["index"]
    if index not in report.questions:
        report.questions.append(index)
    if rng.random() >= config.answer_ratio:
        return None
    server_now = float(msg["server_now"])
    # Answers open after the question has been read (``opens_at``); the thinking time is after.
    opens_in = max(0.0, float(msg.get("opens_at") or server_now) - server_now)
    left = max(0.0, float(msg["deadline"]) - server_now - opens_in)
    delay = opens_in + rng.uniform(
        config.min_delay, max(config.min_delay, min(config.max_delay, left * 0.8))
    )
    choices = _pick(rng, msg["kind"], len(msg["choices"]))

    async def answer() -> None:
        await asyncio.sleep(delay)
        if index not in report.receipts:
            await session.send(type="answer", question_index=index, choices=choices)

    return asyncio.get_running_loop().create_task(answer())


async def _host(
    config: BotConfig, report: HostReport, gate: asyncio.Semaphore, ready: asyncio.Event
) -> None:
    assert config.host_token is not None
    session = _Session(config.ws_urls, 0, gate)
    lobby_wait: asyncio.Task[None] | None = None
    full = asyncio.Event()

    def count(players: int) -> None:
        report.player_count = players
        if players >= config.players:
            full.set()

    async def start_when_full() -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(config.lobby_timeout):
                await full.wait()
        await session.send(type="start")

    async def advance() -> None:
        if config.host_pause:
            await asyncio.sleep(config.host_pause)
        await session.send(type="next")

    pending: set[asyncio.Task[None]] = set()

    def later(coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        pending.add(task)
        task.add_done_callback(pending.discard)

    while not report.ended:
        ws = await session.open()
        if report.game_id is not None:
            report.reconnects += 1
        await session.send(type="host", host_token=config.host_token)
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                msg = orjson.loads(raw)
                kind = msg["type"]
                if kind == "host_welcome":
                    state = msg["state"]
                    report.game_id = state["game_id"]
                    ready.set()
                    report.join_code = msg.get("join_code")
                    count(state["player_count"])
                    phase = state["phase"]
                    if phase == "lobby" and lobby_wait is None:
                        lobby_wait = asyncio.get_running_loop().create_task(start_when_full())
                    elif phase in ("reveal", "leaderboard", "podium"):
                        later(advance())
                    elif phase == "ended":
                        report.ended = True
                        break
                elif kind == "lobby":
                    count(msg["player_count"])
                elif kind in ("reveal", "leaderboard"):
                    if kind == "leaderboard":
                        report.final_leaderboard = msg["entries"]
                    later(advance())
                elif kind == "podium":
                    report.podium = msg["entries"]
                    later(advance())
                elif kind == "ended":
                    report.ended = True
                    break
                elif kind == "error" and report.game_id is None:
                    raise RuntimeError(f"the host was refused: {msg['code']}: {msg['message']}")
    if session.ws is not None:
        with contextlib.suppress(ConnectionClosed):
            await session.ws.close()


async def run_bots(config: BotConfig) -> GameReport:
    """Play one game with ``config.players`` bots (and the host when a token is given)."""
    rng = random.Random(config.seed)
    started = time.monotonic()
    host_report = HostReport() if config.host_token else None
    players = [PlayerReport(index=i, nickname=f"bot-{i:05d}") for i in range(config.players)]
    gate = asyncio.Semaphore(config.connect_concurrency)

    host_ready = asyncio.Event()
    if host_report is None:
        host_ready.set()

    async def one(report: PlayerReport) -> None:
        async with asyncio.timeout(config.lobby_timeout):
            await host_ready.wait()  # players join once the big screen shows the code
        try:
            await _play(config, report, random.Random(rng.random()), gate)
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {exc}"

    tasks = [asyncio.create_task(one(p)) for p in players]
    if host_report is not None:
        tasks.append(asyncio.create_task(_host(config, host_report, gate, host_ready)))
    try:
        async with asyncio.timeout(config.game_timeout):
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return GameReport(players=players, host=host_report, seconds=time.monotonic() - started)


async def create_game_via_web(
    web_url: str, email: str, password: str, quiz_id: str | None
) -> tuple[str, str, str]:
    """Log in as a host, create a game (and a sample quiz if none is given).

    Returns ``(join_code, host_token, ws_url)``.
    """
    async with httpx.AsyncClient(base_url=web_url.rstrip("/"), timeout=30) as http:
        login = await http.post("/api/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        if quiz_id is None:
            created = await http.post("/api/quizzes", json=SAMPLE_QUIZ, headers=headers)
            created.raise_for_status()
            quiz_id = str(created.json()["id"])
        game = await http.post("/api/games", json={"quiz_id": quiz_id}, headers=headers)
        game.raise_for_status()
        body = game.json()
        return str(body["join_code"]), str(body["host_token"]), str(body["ws_url"])


async def look_up_ws_url(web_url: str, join_code: str) -> str:
    async with httpx.AsyncClient(base_url=web_url.rstrip("/"), timeout=30) as http:
        response = await http.get(f"/api/games/code/{join_code}")
        response.raise_for_status()
        return str(response.json()["ws_url"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="partyquiz-bots",
        description="Play a PartyQuiz game with simulated players against a running deployment.",
    )
    parser.add_argument("--web-url", help="web service URL, e.g. http://localhost:8000")
    parser.add_argument(
        "--ws-url",
        action="append",
        default=[],
        help="game service WebSocket URL (repeat to spread players); default: from the web",
    )
    parser.add_argument("--email", help="host account email (creates a game)")
    parser.add_argument("--password", help="host account password")
    parser.add_argument("--quiz-id", help="quiz to play (default: a small sample quiz)")
    parser.add_argument("--join-code", help="join an existing game")
    parser.add_argument("--host-token", help="also act as the host of that game")
    parser.add_argument("--players", "-n", type=int, default=10)
    parser.add_argument("--min-delay", type=float, default=0.3)
    parser.add_argument("--max-delay", type=float, default=3.0)
    parser.add_argument("--host-pause", type=float, default=1.0)
    parser.add_argument("--lobby-timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser


async def _main(args: argparse.Namespace) -> GameReport:
    join_code, host_token = args.join_code, args.host_token
    ws_urls: list[str] = list(args.ws_url)
    if args.email:
        if not (args.web_url and args.password):
            raise SystemExit("partyquiz-bots: --email needs --web-url and --password")
        join_code, host_token, ws_url = await create_game_via_web(
            args.web_url, args.email, args.password, args.quiz_id
        )
        ws_urls = ws_urls or [ws_url]
        print(f"created game {join_code}", file=sys.stderr)
    if not join_code:
        raise SystemExit("partyquiz-bots: give --join-code, or --email/--password to create a game")
    if not ws_urls:
        if not args.web_url:
            raise SystemExit("partyquiz-bots: give --ws-url or --web-url")
        ws_urls = [await look_up_ws_url(args.web_url, join_code)]
    config = BotConfig(
        ws_urls=ws_urls,
        join_code=join_code,
        players=args.players,
        host_token=host_token,
        min_delay=args.min_delay,
        max_delay=args.max_delay,
        host_pause=args.host_pause,
        lobby_timeout=args.lobby_timeout,
        seed=args.seed,
    )
    return await run_bots(config)


def main(argv: list[str] | None = None) -> int:
    """Console script ``partyquiz-bots``; prints a JSON summary."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if args.players < 1:
        print("partyquiz-bots: --players must be at least 1", file=sys.stderr)
        return 2
    report = asyncio.run(_main(args))
    print(orjson.dumps(report.summary(), option=orjson.OPT_INDENT_2).decode())
    joined = sum(1 for p in report.players if p.player_id)
    return 0 if joined == len(report.players) and all(p.ended for p in report.players) else 1


if __name__ == "__main__":
    sys.exit(main())
