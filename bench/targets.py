"""The servers under test: PartyQuiz's game service, the peers and the floors.

Owns how each one is started on the server core and what the load generator needs to reach it
(URLs, the pids whose CPU is counted, join codes and host tokens, the Redis to sample).
PartyQuiz runs for real: ``partyquiz-web`` (SQLite, on the load-generator core, idle while
measuring) issues the games and host tokens; ``partyquiz-ws`` serves them, embedded or as
replicas on a Redis started like the operator's (append-only file on) and pinned to the server
core. Nothing here measures.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.procs import BenchError, Proc, start, wait_for_http, wait_for_line, wait_until

PEERS_DIR = Path(__file__).resolve().parent / "peers"
REPO_ROOT = PEERS_DIR.parent.parent

# Every client of the suite presents this Origin; the servers allow exactly it.
BENCH_ORIGIN = "http://127.0.0.1"


@dataclass(frozen=True)
class Kind:
    """One server set-up the suite can run."""

    label: str
    protocol: str = "json"  # how the load generator speaks to it (peers/protocols.cjs)
    floor: bool = False  # a yardstick: question fan-outs only, no game
    redis: bool = False  # runs on a Redis, whose CPU is counted with the servers'


KINDS: dict[str, Kind] = {
    "partyquiz": Kind("PartyQuiz, embedded"),
    "partyquiz-redis": Kind("PartyQuiz, 2 replicas + Redis", redis=True),
    "partyquiz-redis-1": Kind("PartyQuiz, 1 replica + Redis", redis=True),
    "partyquiz-redis-2x": Kind("PartyQuiz, 2 replicas on 2 cores + Redis", redis=True),
    "ws": Kind("Node ws"),
    "ws-prebuilt": Kind("Node ws, pre-built frame"),
    "socketio": Kind("Node Socket.IO", protocol="socketio"),
    "socketio-redis": Kind(
        "Node Socket.IO, 2 nodes + Redis adapter", protocol="socketio", redis=True
    ),
    "pysocketio": Kind("python-socketio", protocol="socketio"),
    "centrifugo": Kind("Centrifugo v6 + Node backend", protocol="centrifugo"),
    "cfloor": Kind("C write() floor", floor=True),
    "raw": Kind("asyncio floor", floor=True),
}
KIND_LABELS = {name: kind.label for name, kind in KINDS.items()}


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    """A started server set-up and how to reach it."""

    kind: str
    host_urls: list[str]
    player_urls: list[str]
    pids: list[int]  # whose CPU counts as the server's (Redis included)
    procs: list[Proc]
    games: list[tuple[str, str]] = field(default_factory=lambda: [("BENCH1", "bench")])
    redis_port: int | None = None
    redis_pid: int | None = None
    drain: dict[str, Any] | None = None  # the replica the load generator sends SIGTERM
    may_exit: set[str] = field(default_factory=set)  # procs that stop on purpose
    profiled: list[int] = field(default_factory=list)  # pids py-spy may sample (partyquiz-ws)
    cleanup: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.name not in self.may_exit and not proc.alive():
                raise BenchError(f"{proc.name} died during the run\n{proc.tail()}")


@dataclass(frozen=True)
class Env:
    """What every target needs: where logs go, the quiz files, the installed peers."""

    log_dir: Path
    quiz_path: Path
    payload_path: Path
    node: str
    peers_dir: Path  # bench/install.sh's cache: node_modules, c_floor, pysocketio, centrifugo
    server_cpu: int
    loadgen_cpu: int
    nice: int = 0
    py_spy: str | None = None  # py-spy: profile partyquiz-ws during the answer phases

    @property
    def node_modules(self) -> Path:
        return self.peers_dir / "node_modules"

    @property
    def nice_prefix(self) -> list[str]:
        return ["nice", "-n", str(self.nice)] if self.nice else []

    def missing(self, kind: str) -> str | None:
        """Why ``kind`` cannot run here (a peer that was not installed), or None."""
        needs = {
            "cfloor": self.peers_dir / "c_floor",
            "pysocketio": self.peers_dir / "pysocketio" / "bin" / "python",
            "centrifugo": self.peers_dir / "centrifugo",
            "socketio-redis": self.node_modules / "@socket.io" / "redis-adapter",
        }.get(kind)
        if needs is not None and not needs.exists():
            return f"{needs} is missing (bench/install.sh could not install it)"
        return None


def _node(env: Env, name: str, script: str, args: list[str], cpu: int) -> Proc:
    proc = start(
        name,
        [env.node, str(PEERS_DIR / script), *args],
        log_dir=env.log_dir,
        cpu=cpu,
        nice=env.nice,
        env={"NODE_PATH": str(env.node_modules), "NODE_ENV": "production"},
    )
    wait_for_line(proc, "ready")
    return proc


def start_redis(env: Env, tag: str) -> tuple[Proc, int, Path]:
    """A Redis as the operator runs it (append-only file on), pinned to the server core."""
    port = free_port()
    data = env.log_dir / f"redis-{tag}"
    data.mkdir()
    proc = start(
        f"redis-{tag}",
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "yes",
        ],
        log_dir=env.log_dir,
        cpu=env.server_cpu,
        nice=env.nice,
    )

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_until("Redis PING", proc, answers, 30)
    return proc, port, data


def start_node_peer(env: Env, kind: str, tag: str) -> Running:
    port = free_port()
    args = ["--port", str(port), "--quiz", str(env.quiz_path)]
    if kind == "socketio":
        proc = _node(env, f"{kind}-{tag}", "socketio_server.cjs", args, env.server_cpu)
        path = "/socket.io/?EIO=4&transport=websocket"
    else:
        prebuilt = ["--prebuilt", "1"] if kind == "ws-prebuilt" else []
        proc = _node(env, f"{kind}-{tag}", "ws_server.cjs", args + prebuilt, env.server_cpu)
        path = "/ws"
    url = f"ws://127.0.0.1:{port}{path}"
    return Running(kind, [url], [url], [proc.pid], [proc])


def start_socketio_redis(env: Env, tag: str) -> Running:
    """Two Socket.IO nodes on the Redis adapter; the host's node (the first) keeps the game."""
    redis, redis_port, data = start_redis(env, tag)
    procs = [redis]
    urls = []
    try:
        for name, owner in (("a", "1"), ("b", "0")):
            port = free_port()
            args = ["--port", str(port), "--quiz", str(env.quiz_path)]
            args += ["--redis-port", str(redis_port), "--owner", owner]
            procs.append(
                _node(
                    env, f"socketio-redis-{tag}-{name}", "socketio_server.cjs", args, env.server_cpu
                )
            )
            urls.append(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
    except BenchError:
        for proc in reversed(procs):
            proc.stop()
        raise
    return Running(
        "socketio-redis",
        urls[:1],
        urls,
        [procs[1].pid, procs[2].pid, redis.pid],
        procs,
        redis_port=redis_port,
        redis_pid=redis.pid,
        cleanup=[data],
    )


def start_pysocketio(env: Env, tag: str) -> Running:
    port = free_port()
    proc = start(
        f"pysocketio-{tag}",
        [
            str(env.peers_dir / "pysocketio" / "bin" / "python"),
            str(PEERS_DIR / "pysocketio_server.py"),
            "--port",
            str(port),
            "--quiz",
            str(env.quiz_path),
        ],
        log_dir=env.log_dir,
        cpu=env.server_cpu,
        nice=env.nice,
    )
    wait_for_line(proc, "ready")
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    return Running("pysocketio", [url], [url], [proc.pid], [proc])


def start_centrifugo(env: Env, tag: str) -> Running:
    """Centrifugo (memory engine, one node) and the game backend behind its proxies."""
    port, api_port, backend_port = free_port(), free_port(), free_port()
    api_port = port  # the HTTP API shares Centrifugo's port
    key = secrets.token_urlsafe(24)
    backend = _node(
        env,
        f"centrifugo-backend-{tag}",
        "centrifugo_backend.cjs",
        [
            "--port",
            str(backend_port),
            "--api-port",
            str(api_port),
            "--api-key",
            key,
            "--quiz",
            str(env.quiz_path),
        ],
        env.server_cpu,
    )
    proxy = {"endpoint": "", "timeout": "10s"}
    config = {
        "http_server": {"address": "127.0.0.1", "port": port},
        "log": {"level": "error"},
        "http_api": {"key": key},
        "client": {
            "allowed_origins": [BENCH_ORIGIN],
            "proxy": {
                "connect": {
                    **proxy,
                    "enabled": True,
                    "endpoint": f"http://127.0.0.1:{backend_port}/connect",
                }
            },
        },
        "rpc": {
            "proxy": {**proxy, "endpoint": f"http://127.0.0.1:{backend_port}/rpc"},
            "without_namespace": {"proxy_enabled": True},
        },
        "websocket": {"compression": False},
        "usage_stats": {"disabled": True},
        "health": {"enabled": True},
    }
    config_path = env.log_dir / f"centrifugo-{tag}.json"
    config_path.write_text(json.dumps(config))
    try:
        proc = start(
            f"centrifugo-{tag}",
            [str(env.peers_dir / "centrifugo"), "--config", str(config_path)],
            log_dir=env.log_dir,
            cpu=env.server_cpu,
            nice=env.nice,
            env={"GOMAXPROCS": "1"},
        )
        wait_for_http(proc, f"http://127.0.0.1:{port}/health")
    except BenchError:
        backend.stop()
        raise
    url = f"ws://127.0.0.1:{port}/connection/websocket"
    return Running("centrifugo", [url], [url], [proc.pid, backend.pid], [backend, proc])


def start_floor(env: Env, kind: str, tag: str) -> Running:
    port = free_port()
    if kind == "cfloor":
        argv = [str(env.peers_dir / "c_floor")]
    else:
        argv = [sys.executable, "-m", "bench.raw_floor"]
    proc = start(
        f"{kind}-{tag}",
        [*argv, "--port", str(port), "--payload", str(env.payload_path)],
        log_dir=env.log_dir,
        cpu=env.server_cpu,
        nice=env.nice,
        cwd=REPO_ROOT,
    )
    wait_for_line(proc, "ready")
    url = f"ws://127.0.0.1:{port}/ws"
    return Running(kind, [url], [url], [proc.pid], [proc])


class PartyQuizStack:
    """``partyquiz-web`` for the whole suite, fresh games (and ws processes) per session."""

    def __init__(self, env: Env, quiz: dict[str, Any]) -> None:
        self.env = env
        self.secret = secrets.token_urlsafe(48)
        self.web_port = free_port()
        # One database per stack: every scenario starts its own web service.
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
        self,
        tag: str,
        *,
        redis_url: str | None = None,
        cpu: int | None = None,
        drain_seconds: float = 1.0,
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
            "PARTYQUIZ_WS_DRAIN_SECONDS": str(drain_seconds),
            "PARTYQUIZ_WS_REDIS_URL": redis_url or "",
            "PARTYQUIZ_WS_REPLICA_ID": f"bench-{tag}",
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
        return proc, port

    def start(self, tag: str) -> Running:
        code, token = self.new_game()
        proc, port = self.start_ws(tag)
        url = f"ws://127.0.0.1:{port}/ws"
        return Running(
            "partyquiz",
            [url],
            [url],
            [proc.pid],
            [proc],
            games=[(code, token)],
            profiled=[proc.pid],
        )

    def start_replicated(
        self,
        kind: str,
        tag: str,
        *,
        replicas: int = 2,
        games: int = 1,
        drain: bool = False,
    ) -> Running:
        """Replicas of ``partyquiz-ws`` on one Redis (pinned with them to the server core;
        ``partyquiz-redis-2x`` puts the second replica on the load generator's core).

        Players alternate between the replicas and the host uses the first, unless
        ``drain``: then the host and every player are on the first replica, which the load
        generator sends SIGTERM, and come back on the second.
        """
        redis, redis_port, data = start_redis(self.env, tag)
        procs = [redis]
        try:
            created = [self.new_game() for _ in range(games)]
            ports = []
            for r in range(replicas):
                cpu = self.env.loadgen_cpu if kind == "partyquiz-redis-2x" and r == 1 else None
                proc, port = self.start_ws(
                    f"{tag}-{'ab'[r]}",
                    redis_url=f"redis://127.0.0.1:{redis_port}/0",
                    cpu=cpu,
                    drain_seconds=10.0 if drain else 1.0,
                )
                procs.append(proc)
                ports.append(port)
        except BenchError:
            for proc in reversed(procs):
                proc.stop()
            shutil.rmtree(data, ignore_errors=True)
            raise
        urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
        running = Running(
            kind,
            urls[:1],
            urls[:1] if drain else urls,
            [*(p.pid for p in procs[1:]), redis.pid],
            procs,
            games=created,
            redis_port=redis_port,
            redis_pid=redis.pid,
            cleanup=[data],
            profiled=[p.pid for p in procs[1:]],
        )
        if drain:
            running.drain = {"pid": procs[1].pid, "url": urls[0], "alt_url": urls[1]}
            running.may_exit.add(procs[1].name)
        return running

    def close(self) -> None:
        self.http.close()
        self.web.stop()
