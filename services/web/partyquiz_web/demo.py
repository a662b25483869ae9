"""``python -m partyquiz_web.demo`` (what ``make demo`` runs): the platform on one machine.

Owns the local demo: a ``.demo/`` directory in the working directory, one generated JWT
secret shared by both services, a migrated SQLite database with a demo host and a sample
quiz, the web service and (when ``partyquiz-ws`` is installed) the game service as child
processes, and a clean shutdown of both on Ctrl-C or SIGTERM. Not for production use.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from partyquiz_core.quiz import Quiz
from partyquiz_web.database import Database
from partyquiz_web.migrating import upgrade_to_head
from partyquiz_web.models import Host, QuizRecord
from partyquiz_web.repositories import HostRepository, QuizRepository
from partyquiz_web.security import Passwords

DEMO_EMAIL = "demo@partyquiz.local"
SAMPLE_QUIZ = Path(__file__).parent / "sample_quiz.json"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 35.0  # the game service drains for up to 30 s by default


class DemoError(Exception):
    """Something that stops the demo; the message says what to do about it."""


@dataclass(frozen=True)
class DemoConfig:
    root: Path
    web_port: int
    ws_port: int
    with_ws: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str], cwd: Path) -> DemoConfig:
        def port(name: str, default: int) -> int:
            raw = env.get(name, str(default))
            if not raw.isdigit() or not 1 <= int(raw) <= 65535:
                raise DemoError(f"{name}: must be a TCP port between 1 and 65535 (got {raw!r})")
            return int(raw)

        web_port = port("PARTYQUIZ_DEMO_WEB_PORT", 8000)
        ws_port = port("PARTYQUIZ_DEMO_WS_PORT", 8001)
        if web_port == ws_port:
            raise DemoError("PARTYQUIZ_DEMO_WEB_PORT and PARTYQUIZ_DEMO_WS_PORT must differ")
        with_ws = env.get("PARTYQUIZ_DEMO_WS", "on").lower() not in {"off", "0", "false", "no"}
        return cls(root=cwd / ".demo", web_port=web_port, ws_port=ws_port, with_ws=with_ws)

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.root / 'partyquiz.db'}"


def ensure_port_free(port: int, variable: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise DemoError(
                f"port {port} is busy; stop what uses it or set {variable} to a free port"
            ) from None


def load_or_create_secret(root: Path) -> str:
    """One secret for both services, kept so host tokens survive a demo restart."""
    path = root / "jwt_secret"
    if path.exists():
        secret = path.read_text().strip()
        if len(secret) >= 32:
            return secret
    secret = secrets.token_urlsafe(48)
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret


async def seed(database_url: str, now: datetime) -> str:
    """Create (or reset) the demo host and its sample quiz; return the new password."""
    password = secrets.token_urlsafe(12)
    passwords = Passwords()
    database = Database(database_url)
    try:
        async with database.session() as session:
            hosts = HostRepository(session)
            host = await hosts.by_email(DEMO_EMAIL)
            if host is None:
                host = Host(
                    id=uuid.uuid4().hex,
                    email=DEMO_EMAIL,
                    display_name="Demo host",
                    password_hash=passwords.hash(password),
                    created_at=now,
                )
                hosts.add(host)
            else:
                host.password_hash = passwords.hash(password)
            quizzes = QuizRepository(session)
            if not await quizzes.list_for(host.id):
                quiz = Quiz.model_validate_json(SAMPLE_QUIZ.read_bytes())
                quizzes.add(
                    QuizRecord(
                        id=uuid.uuid4().hex,
                        owner_id=host.id,
                        title=quiz.title,
                        question_count=len(quiz.questions),
                        content=quiz.model_dump(mode="json"),
                        created_at=now,
                        updated_at=now,
                    )
                )
            await session.commit()
    finally:
        await database.dispose()
    return password


def find_ws_command() -> str | None:
    beside_python = Path(sys.executable).parent / "partyquiz-ws"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("partyquiz-ws")


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"the {name} service exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback URL
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise DemoError(f"the {name} service did not answer {url} within {START_TIMEOUT_SECONDS:.0f} s")


def stop(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for name, process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"demo: the {name} service did not stop in time; killing it", flush=True)
            process.kill()
            process.wait()


def run(config: DemoConfig) -> int:
    ensure_port_free(config.web_port, "PARTYQUIZ_DEMO_WEB_PORT")
    ws_command = find_ws_command() if config.with_ws else None
    if ws_command:
        ensure_port_free(config.ws_port, "PARTYQUIZ_DEMO_WS_PORT")
    config.root.mkdir(exist_ok=True)
    secret = load_or_create_secret(config.root)
    asyncio.run(upgrade_to_head(config.database_url))
    password = asyncio.run(seed(config.database_url, datetime.now(UTC)))

    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PARTYQUIZ_WEB_", "PARTYQUIZ_WS_"))
    }
    web_env = {
        **base_env,
        "PARTYQUIZ_WEB_ENVIRONMENT": "development",
        "PARTYQUIZ_WEB_DATABASE_URL": config.database_url,
        "PARTYQUIZ_WEB_JWT_SECRET": secret,
        "PARTYQUIZ_WEB_HOST": "127.0.0.1",
        "PARTYQUIZ_WEB_PORT": str(config.web_port),
        "PARTYQUIZ_WEB_PUBLIC_WS_URL": f"ws://localhost:{config.ws_port}/ws",
    }
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        web = subprocess.Popen(
            [sys.executable, "-m", "partyquiz_web.cli", "serve"],
            env=web_env,
            cwd=config.root,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops children in order
        )
        processes.append(("web", web))
        wait_until_healthy(f"http://127.0.0.1:{config.web_port}/healthz", web, "web")
        if ws_command:
            ws_env = {
                **base_env,
                "PARTYQUIZ_WS_ENVIRONMENT": "development",
                "PARTYQUIZ_WS_JWT_SECRET": secret,
                "PARTYQUIZ_WS_HOST": "127.0.0.1",
                "PARTYQUIZ_WS_PORT": str(config.ws_port),
                "PARTYQUIZ_WS_WEB_INTERNAL_URL": f"http://127.0.0.1:{config.web_port}",
            }
            ws = subprocess.Popen([ws_command], env=ws_env, cwd=config.root, start_new_session=True)
            processes.append(("game", ws))
            wait_until_healthy(f"http://127.0.0.1:{config.ws_port}/healthz", ws, "game")
        print(
            "\n".join(
                [
                    "",
                    "PartyQuiz demo is running.",
                    f"  Host:        http://localhost:{config.web_port}/host",
                    f"  Players:     http://localhost:{config.web_port}/join",
                    f"  API docs:    http://localhost:{config.web_port}/docs",
                    f"  Game socket: ws://localhost:{config.ws_port}/ws"
                    if ws_command
                    else "  Game socket: not started (partyquiz-ws is not installed)",
                    f"  Log in as:   {DEMO_EMAIL}",
                    f"  Password:    {password}",
                    f"  Data:        {config.root}",
                    "Press Ctrl-C to stop.",
                ]
            ),
            flush=True,
        )
        while not stopping:
            for name, process in processes:
                if process.poll() is not None:
                    raise DemoError(f"the {name} service exited with code {process.returncode}")
            time.sleep(0.2)
        print("demo: stopping ...", flush=True)
        return 0
    finally:
        stop(list(reversed(processes)))
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> int:
    try:
        config = DemoConfig.from_env(os.environ, Path.cwd())
        code = run(config)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr, flush=True)
        return 1
    print("demo: stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
