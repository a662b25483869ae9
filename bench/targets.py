"""The servers under test: PartyQuiz's game service, the Node peers and the raw floor.

Owns how each one is started on the server core and what the load generator needs to reach it
(URLs, pids to sample, join code and host token). PartyQuiz runs for real: ``partyquiz-web``
(SQLite, on the load-generator core, idle while measuring) issues the game and the host token;
``partyquiz-ws`` serves it, embedded or with Redis. Nothing here measures.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.procs import BenchError, Proc, start, wait_for_http, wait_for_line

PEERS_DIR = Path(__file__).resolve().parent / "peers"
REPO_ROOT = PEERS_DIR.parent.parent

# Every client of the suite presents this Origin; the ws processes allow exactly it.
BENCH_ORIGIN = "http://127.0.0.1"

KIND_LABELS = {
    "partyquiz": "PartyQuiz (websockets)",
    "socketio": "Node Socket.IO",
    "ws": "Node ws",
    "raw": "raw floor (asyncio)",
}


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    """A started server and how to reach it."""

    kind: str
    url: str
    origin: str
    pids: list[int]
    procs: list[Proc]
    join_code: str = "BENCH1"
    host_token: str = "bench"
    player_urls: list[str] = field(default_factory=list)
    redis_port: int | None = None

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def check_alive(self) -> None:
        for proc in self.procs:
            if not proc.alive():
                raise BenchError(f"{proc.name} died during the run\n{proc.tail()}")


@dataclass(frozen=True)
class Env:
    """What every target needs: where logs go, the quiz files, the Node install."""

    log_dir: Path
    quiz_path: Path
    payload_path: Path
    node: str
    node_modules: Path
    server_cpu: int
    loadgen_cpu: int
    nice: int = 0
    py_spy: str | None = None  # path of py-spy: profile every partyquiz-ws process

    @property
    def nice_prefix(self) -> list[str]:
        return ["nice", "-n", str(self.nice)] if self.nice else []


def start_node_peer(env: Env, kind: str, tag: str) -> Running:
    port = free_port()
    script = PEERS_DIR / ("socketio_server.cjs" if kind == "socketio" else "ws_server.cjs")
    proc = start(
        f"{kind}-{tag}",
        [env.node, str(script), "--port", str(port), "--quiz", str(env.quiz_path)],
        log_dir=env.log_dir,
        cpu=env.server_cpu,
        nice=env.nice,
        env={"NODE_PATH": str(env.node_modules), "NODE_ENV": "production"},
    )
    wait_for_line(proc, "ready")
    path = "/socket.io/?EIO=4&transport=websocket" if kind == "socketio" else "/ws"
    return Running(kind, f"ws://127.0.0.1:{port}{path}", BENCH_ORIGIN, [proc.pid], [proc])


def start_raw_floor(env: Env, tag: str) -> Running:
    port = free_port()
    proc = start(
        f"raw-{tag}",
        [
            sys.executable,
            "-m",
            "bench.raw_floor",
            "--port",
            str(port),
            "--payload",
            str(env.payload_path),
        ],
        log_dir=env.log_dir,
        cpu=env.server_cpu,
        nice=env.nice,
        cwd=REPO_ROOT,
    )
    wait_for_line(proc, "ready")
    return Running("raw", f"ws://127.0.0.1:{port}/ws", BENCH_ORIGIN, [proc.pid], [proc])


class PartyQuizStack:
    """``partyquiz-web`` for the whole suite, a fresh game (and ws process) per session."""

    def __init__(self, env: Env, quiz: dict[str, Any]) -> None:
        self.env = env
        self.profilers: list[Proc] = []  # py-spy processes; they end with their target
        self.secret = secrets.token_urlsafe(48)
        self.web_port = free_port()
        # One database per stack: B1-B3 and B4 each start their own web service.
        db = env.log_dir / f"partyquiz-bench-{secrets.token_hex(4)}.db"
        self.web_env = {
            "PARTYQUIZ_WEB_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "PARTYQUIZ_WEB_JWT_SECRET": self.secret,
            "PARTYQUIZ_WEB_ENVIRONMENT": "production",
            "PARTYQUIZ_WEB_HOST": "127.0.0.1",
            "PARTYQUIZ_WEB_PORT": str(self.web_port),
            "PARTYQUIZ_WEB_LOG_LEVEL": "warning",
        }
        web_cli = [sys.executable, "-m", "partyquiz_web.cli"]
        migrate = start(
            f"web-migrate-{db.stem}",
            [*web_cli, "migrate"],
            log_dir=env.log_dir,
            cpu=None,
            env=self.web_env,
            cwd=env.log_dir,
        )
        if migrate.popen.wait(120) != 0:
            raise BenchError(f"partyquiz-web migrate failed\n{migrate.tail()}")
        self.web = start(
            f"web-{db.stem}",
            [*web_cli, "serve"],
            log_dir=env.log_dir,
            cpu=env.loadgen_cpu,
            env=self.web_env,
            cwd=env.log_dir,
        )
        base = f"http://127.0.0.1:{self.web_port}"
        wait_for_http(self.web, f"{base}/readyz")
        self.http = httpx.Client(base_url=base, timeout=30.0)
        email, password = "bench@example.com", secrets.token_urlsafe(16)
        self._ok(self.http.post("/api/auth/register", json={"email": email, "password": password}))
        token = self._ok(
            self.http.post("/api/auth/login", json={"email": email, "password": password})
        )["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.quiz_id = self._ok(self.http.post("/api/quizzes", json=quiz))["id"]

    @staticmethod
    def _ok(response: httpx.Response) -> Any:
        if response.status_code >= 300:
            raise BenchError(
                f"{response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text[:500]}"
            )
        return response.json()

    def new_game(self) -> tuple[str, str]:
        """Create a game; return its join code and host token."""
        game = self._ok(self.http.post("/api/games", json={"quiz_id": self.quiz_id}))
        return str(game["join_code"]), str(game["host_token"])

    def start_ws(
        self, tag: str, *, redis_url: str | None = None, cpu: int | None = None
    ) -> tuple[Proc, int]:
        """Start one ``partyquiz-ws`` process; return it and its port once /readyz is 200."""
        port = free_port()
        env = {
            "PARTYQUIZ_WS_JWT_SECRET": self.secret,
            "PARTYQUIZ_WS_ENVIRONMENT": "production",
            "PARTYQUIZ_WS_HOST": "127.0.0.1",
            "PARTYQUIZ_WS_PORT": str(port),
            "PARTYQUIZ_WS_WEB_INTERNAL_URL": f"http://127.0.0.1:{self.web_port}",
            "PARTYQUIZ_WS_ALLOWED_ORIGINS": BENCH_ORIGIN,
            "PARTYQUIZ_WS_DRAIN_SECONDS": "1",
            "PARTYQUIZ_WS_REDIS_URL": redis_url or "",
            # Every simulated player comes from 127.0.0.1: the per-address limits would
            # count the whole load as one client. Per-game limits stay above the sizes run.
            "PARTYQUIZ_WS_MAX_CONNECTIONS_PER_ADDRESS": "1000000",
            "PARTYQUIZ_WS_JOIN_RATE_PER_ADDRESS": "1000000",
            "PARTYQUIZ_WS_JOIN_RATE_PER_GAME": "1000000",
            "PARTYQUIZ_WS_MAX_PLAYERS_PER_GAME": "100000",
        }
        proc = start(
            f"partyquiz-ws-{tag}",
            [sys.executable, "-m", "partyquiz_ws.cli"],
            log_dir=self.env.log_dir,
            cpu=self.env.server_cpu if cpu is None else cpu,
            nice=self.env.nice,
            env=env,
            cwd=self.env.log_dir,
        )
        wait_for_http(proc, f"http://127.0.0.1:{port}/readyz")
        if self.env.py_spy:
            self.profilers.append(
                start(
                    f"py-spy-{tag}",
                    [
                        self.env.py_spy,
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--nonblocking",
                        "--format",
                        "raw",
                        "--rate",
                        "200",
                        "--output",
                        str(self.env.log_dir / f"profile-{tag}.txt"),
                    ],
                    log_dir=self.env.log_dir,
                    cpu=self.env.loadgen_cpu,
                )
            )
        return proc, port

    def start(self, tag: str) -> Running:
        code, token = self.new_game()
        proc, port = self.start_ws(tag)
        return Running(
            "partyquiz",
            f"ws://127.0.0.1:{port}/ws",
            BENCH_ORIGIN,
            [proc.pid],
            [proc],
            join_code=code,
            host_token=token,
        )

    def start_replicated(
        self, tag: str, redis_url: str, redis_port: int, redis_pid: int
    ) -> Running:
        """Two ws replicas on one Redis; players alternate, the host uses the first."""
        code, token = self.new_game()
        first, port_a = self.start_ws(f"{tag}-a", redis_url=redis_url)
        second, port_b = self.start_ws(f"{tag}-b", redis_url=redis_url)
        urls = [f"ws://127.0.0.1:{port}/ws" for port in (port_a, port_b)]
        return Running(
            "partyquiz-2",
            urls[0],
            BENCH_ORIGIN,
            [first.pid, second.pid, redis_pid],
            [first, second],
            join_code=code,
            host_token=token,
            player_urls=urls,
            redis_port=redis_port,
        )

    def finish_profiles(self) -> None:
        """Wait for py-spy to write each profile (it exits with its target); rank them."""
        from bench.profiling import render

        for prof in self.profilers:
            try:
                prof.popen.wait(30)
            except subprocess.TimeoutExpired:
                prof.stop()
            raw = self.env.log_dir / f"{prof.name.replace('py-spy-', 'profile-')}.txt"
            if raw.exists():
                with raw.open() as lines:
                    raw.with_suffix(".top.txt").write_text(render(lines))
        self.profilers.clear()

    def close(self) -> None:
        self.finish_profiles()
        self.http.close()
        self.web.stop()
