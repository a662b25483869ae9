"""The real PartyQuiz processes a browser test talks to: ``partyquiz-web`` and ``partyquiz-ws``.

Owns starting them on free loopback ports with one shared secret (web migrated first), and
stopping them. Nothing is faked: the pages load from the web service and play over the game
service's WebSocket exactly as in production mode.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.browser.relay import Relay
from tests.servers import ServerError, free_port, wait_for_port

# The machines this runs on can be busy; start-up includes importing the whole web stack.
START_TIMEOUT_SECONDS = 120.0
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Stack:
    web_url: str
    ws_url: str
    web_port: int
    ws_port: int
    logs: Path
    network: Relay

    def log_tail(self) -> str:
        parts = []
        for name in ("web.log", "ws.log"):
            path = self.logs / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{tail}")
        try:
            wait_for_port(port, 1.0, log)
        except ServerError:
            continue
        return
    raise ServerError(f"nothing listens on 127.0.0.1:{port}\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def run_stack(root: Path, database_url: str | None = None) -> Iterator[Stack]:
    """Serve ws, migrate and serve web, on free ports; yield where they listen; stop both."""
    root.mkdir(parents=True, exist_ok=True)
    web_port, ws_port = free_port(), free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    # Browsers reach the game service through a relay a test can cut like a lost signal.
    relay = Relay(ws_port)
    ws_url = f"ws://127.0.0.1:{relay.port}/ws"
    secret = secrets.token_urlsafe(48)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PARTYQUIZ_")},
        "PARTYQUIZ_WEB_ENVIRONMENT": "production",
        "PARTYQUIZ_WEB_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{root / 'web.db'}",
        "PARTYQUIZ_WEB_JWT_SECRET": secret,
        "PARTYQUIZ_WEB_PUBLIC_WS_URL": ws_url,
        "PARTYQUIZ_WEB_PORT": str(web_port),
        "PARTYQUIZ_WEB_HOST": "127.0.0.1",
        # Tests register hosts and log in from one address.
        "PARTYQUIZ_WEB_LOGIN_RATE_LIMIT": "1000",
        "PARTYQUIZ_WEB_CODE_LOOKUP_RATE_LIMIT": "1000",
        "PARTYQUIZ_WEB_LOG_LEVEL": "warning",
        "PARTYQUIZ_WS_ENVIRONMENT": "production",
        "PARTYQUIZ_WS_JWT_SECRET": secret,
        "PARTYQUIZ_WS_WEB_INTERNAL_URL": web_url,
        "PARTYQUIZ_WS_HOST": "127.0.0.1",
        "PARTYQUIZ_WS_PORT": str(ws_port),
        "PARTYQUIZ_WS_ALLOWED_ORIGINS": web_url,
        "PARTYQUIZ_WS_DRAIN_SECONDS": "1",
        # A harmless listed word, so the pages' handling of refused nicknames is exercised.
        "PARTYQUIZ_WS_NICKNAME_BLOCKLIST": "grumpy",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with (root / "web.log").open("wb") as web_log, (root / "ws.log").open("wb") as ws_log:
            # The game service needs no database: it starts while web's migration runs.
            procs.append(
                subprocess.Popen([str(BIN / "partyquiz-ws")], env=env, stdout=ws_log, stderr=ws_log)
            )
            migrate = subprocess.run(
                [str(BIN / "partyquiz-web"), "migrate"], env=env, capture_output=True, text=True
            )
            if migrate.returncode != 0:
                raise RuntimeError(f"partyquiz-web migrate failed: {migrate.stderr}")
            procs.append(
                subprocess.Popen(
                    [str(BIN / "partyquiz-web"), "serve"], env=env, stdout=web_log, stderr=web_log
                )
            )
        for proc, port, log in ((procs[1], web_port, "web.log"), (procs[0], ws_port, "ws.log")):
            _wait_until_listening(proc, port, root / log)
        relay.start()
        yield Stack(web_url, ws_url, web_port, ws_port, root, relay)
    finally:
        relay.close()
        for proc in reversed(procs):
            _stop(proc)


def chromium_path() -> str | None:
    """Debian's chromium, which the browser tests drive (never a downloaded build)."""
    path = os.environ.get("PARTYQUIZ_CHROMIUM", "/usr/bin/chromium")
    return path if Path(path).exists() or shutil.which(path) else None
