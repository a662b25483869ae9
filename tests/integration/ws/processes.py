"""Real ``partyquiz-web`` and ``partyquiz-ws`` processes for process-level game tests.

Starts the console scripts from this environment on free loopback ports, with the shared JWT
secret, and stops them afterwards (SIGTERM, then SIGKILL). Readiness is waited on by polling
the processes' own ``/readyz`` with a deadline; logs go to files shown when a start fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.servers import free_port

SECRET = "process-test-secret-0123456789-abcdefghijkl"
BIN = Path(sys.executable).parent
START_SECONDS = 60.0


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the process dies without any clean-up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_ready(proc: Proc, path: str = "/readyz") -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited with {proc.process.returncode}\n{proc.log_tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(proc.http + path, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready after {START_SECONDS}s\n{proc.log_tail()}")


def _spawn(name: str, argv: list[str], env: dict[str, str], port: int, logdir: Path) -> Proc:
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    return Proc(name, process, port, log)


@contextlib.contextmanager
def web_process(
    database_url: str, ws_url: str = "ws://127.0.0.1:1/ws", port: int | None = None
) -> Iterator[Proc]:
    logdir = Path(tempfile.mkdtemp(prefix="pq-web-"))
    port = port or free_port()
    env = {
        "PARTYQUIZ_WEB_DATABASE_URL": database_url,
        "PARTYQUIZ_WEB_JWT_SECRET": SECRET,
        "PARTYQUIZ_WEB_ENVIRONMENT": "development",
        "PARTYQUIZ_WEB_PUBLIC_WS_URL": ws_url,
        "PARTYQUIZ_WEB_HOST": "127.0.0.1",
        "PARTYQUIZ_WEB_PORT": str(port),
        "PARTYQUIZ_WEB_LOGIN_RATE_LIMIT": "1000",
    }
    migrate = subprocess.run(
        [str(BIN / "partyquiz-web"), "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"partyquiz-web migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
    proc = _spawn("web", [str(BIN / "partyquiz-web"), "serve"], env, port, logdir)
    try:
        _wait_ready(proc)
        yield proc
    finally:
        proc.stop()


def start_ws(name: str, redis_url: str, web_url: str, **extra: str) -> Proc:
    logdir = Path(tempfile.mkdtemp(prefix="pq-ws-"))
    port = free_port()
    env = {
        "PARTYQUIZ_WS_REDIS_URL": redis_url,
        "PARTYQUIZ_WS_JWT_SECRET": SECRET,
        "PARTYQUIZ_WS_ENVIRONMENT": "development",
        "PARTYQUIZ_WS_WEB_INTERNAL_URL": web_url,
        "PARTYQUIZ_WS_HOST": "127.0.0.1",
        "PARTYQUIZ_WS_PORT": str(port),
        "PARTYQUIZ_WS_REPLICA_ID": name,
        "PARTYQUIZ_WS_LEASE_TTL_SECONDS": "2",
        "PARTYQUIZ_WS_MESSAGE_BURST": "1000",
        # Every bot of a test comes from 127.0.0.1.
        "PARTYQUIZ_WS_JOIN_RATE_PER_ADDRESS": "10000",
        **{f"PARTYQUIZ_WS_{k.upper()}": v for k, v in extra.items()},
    }
    proc = _spawn(name, [str(BIN / "partyquiz-ws")], env, port, logdir)
    try:
        _wait_ready(proc)
    except Exception:
        proc.stop()
        raise
    return proc


@contextlib.contextmanager
def ws_processes(count: int, redis_url: str, web_url: str, **extra: str) -> Iterator[list[Proc]]:
    procs: list[Proc] = []
    try:
        for i in range(count):
            procs.append(start_ws(f"ws-{i}", redis_url, web_url, **extra))
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def create_hosted_game(web: Proc, quiz: dict[str, Any]) -> dict[str, Any]:
    """Register a host, store ``quiz`` and create a game; return the web's answer + token."""
    with httpx.Client(base_url=web.http, timeout=30) as http:
        email = f"host-{time.monotonic_ns()}@example.org"
        password = "correct horse battery"
        http.post(
            "/api/auth/register", json={"email": email, "password": password}
        ).raise_for_status()
        login = http.post("/api/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        created = http.post("/api/quizzes", json=quiz, headers=headers)
        created.raise_for_status()
        game = http.post("/api/games", json={"quiz_id": created.json()["id"]}, headers=headers)
        game.raise_for_status()
        return {**game.json(), "auth": headers}


def game_detail(web: Proc, game: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=web.http, timeout=30) as http:
        response = http.get(f"/api/games/{game['game_id']}", headers=game["auth"])
        response.raise_for_status()
        detail: dict[str, Any] = response.json()
        return detail
