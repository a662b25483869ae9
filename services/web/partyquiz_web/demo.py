"""``python -m partyquiz_web.demo`` (what ``make demo`` runs): the platform on one machine.

Owns the local demo: a ``.demo/`` directory in the working directory, one generated JWT
secret shared by both services, a migrated SQLite database with a demo host (its password kept
in the folder, so it stays the same across restarts) and a sample quiz, the web service and
(when ``partyquiz-ws`` is installed) the game service as child processes with their logs in the
folder, and a clean shutdown of both on Ctrl-C or SIGTERM. Not for production use.

Loopback is the default: only this machine can open the demo. ``PARTYQUIZ_DEMO_LAN=1`` serves
it on every network interface and points players' phones (join link, QR code, game socket) at
this machine's LAN address, or at ``PARTYQUIZ_PUBLIC_URL`` when that is set.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
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
PASSWORD_FILE = "host_password"  # noqa: S105 - a file name, not a password
TRUE_WORDS = frozenset({"1", "on", "true", "yes"})
_SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address
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
    lan: bool = False
    """Serve on every interface (phones on the same network can join), not loopback only."""
    public_url: str | None = None
    """Where players open the pages (``PARTYQUIZ_PUBLIC_URL``); in LAN mode without it, the
    machine's LAN address."""
    verbose: bool = False
    """Show the services' logs in the terminal instead of only in the demo folder."""

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
        public_url = env.get("PARTYQUIZ_PUBLIC_URL") or None
        if public_url is not None:
            public_url = public_url.rstrip("/")
            parsed = urllib.parse.urlsplit(public_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path:
                raise DemoError(
                    "PARTYQUIZ_PUBLIC_URL: must be http(s)://host[:port] with no path "
                    f"(got {public_url!r})"
                )
        return cls(
            root=cwd / ".demo",
            web_port=web_port,
            ws_port=ws_port,
            with_ws=with_ws,
            lan=env.get("PARTYQUIZ_DEMO_LAN", "").lower() in TRUE_WORDS,
            public_url=public_url,
            verbose=env.get("PARTYQUIZ_DEMO_VERBOSE", "").lower() in TRUE_WORDS,
        )

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.root / 'partyquiz.db'}"

    @property
    def bind_host(self) -> str:
        return "0.0.0.0" if self.lan else "127.0.0.1"  # noqa: S104 - asked for with DEMO_LAN


@dataclass(frozen=True)
class Addresses:
    """Where people open the demo: the host on this machine, players on their phones."""

    host_base: str
    player_base: str
    ws_url: str

    @property
    def shared_with_phones(self) -> bool:
        return self.player_base != self.host_base


def pick_lan_address(candidates: Iterable[str]) -> str | None:
    """The address phones on the same network reach this machine at: a private IPv4 address
    (home and office networks), else any other non-loopback one; None when there is none."""
    usable = []
    for candidate in candidates:
        address = ipaddress.IPv4Address(candidate)
        if address.is_loopback or address.is_link_local or address.is_unspecified:
            continue
        usable.append(address)
    usable.sort(key=lambda a: (not a.is_private, a))
    return str(usable[0]) if usable else None


def interface_addresses() -> list[str]:
    """This machine's IPv4 interface addresses (read locally; nothing is sent anywhere)."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _index, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            buffer = array.array("B", request)
            try:
                fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, buffer)
            except OSError:
                continue  # no IPv4 address on this interface
            found.append(socket.inet_ntoa(buffer[20:24].tobytes()))
    return found


def addresses_for(config: DemoConfig, lan_address: str | None) -> Addresses:
    """The URLs to print and to give the services."""
    host_base = f"http://localhost:{config.web_port}"
    if config.public_url:
        player_base = config.public_url
    elif config.lan:
        if lan_address is None:
            raise DemoError(
                "PARTYQUIZ_DEMO_LAN: no network address found on this machine; connect it "
                "to your network or set PARTYQUIZ_PUBLIC_URL=http://<its address>:"
                f"{config.web_port}"
            )
        player_base = f"http://{lan_address}:{config.web_port}"
    else:
        player_base = host_base
    parsed = urllib.parse.urlsplit(player_base)
    ws_scheme = "wss" if parsed.scheme == "https" else "ws"
    return Addresses(host_base, player_base, f"{ws_scheme}://{parsed.hostname}:{config.ws_port}/ws")


def ensure_port_free(port: int, variable: str, host: str = "127.0.0.1") -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
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


def load_or_create_password(root: Path) -> str:
    """The demo host's password, kept in the demo folder so it stays the same across runs."""
    path = root / PASSWORD_FILE
    if path.exists():
        password = path.read_text().strip()
        if len(password) >= 8:
            return password
    password = secrets.token_urlsafe(12)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


async def seed(database_url: str, now: datetime, password: str) -> None:
    """Create the demo host (or give it ``password`` again) and its sample quiz."""
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
            elif not passwords.verify(host.password_hash, password):
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


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run(config: DemoConfig) -> int:
    ensure_port_free(config.web_port, "PARTYQUIZ_DEMO_WEB_PORT", config.bind_host)
    ws_command = find_ws_command() if config.with_ws else None
    if ws_command:
        ensure_port_free(config.ws_port, "PARTYQUIZ_DEMO_WS_PORT", config.bind_host)
    lan_address = pick_lan_address(interface_addresses()) if config.lan else None
    addresses = addresses_for(config, lan_address)
    config.root.mkdir(exist_ok=True)
    secret = load_or_create_secret(config.root)
    password = load_or_create_password(config.root)
    asyncio.run(upgrade_to_head(config.database_url))
    asyncio.run(seed(config.database_url, datetime.now(UTC), password))

    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PARTYQUIZ_WEB_", "PARTYQUIZ_WS_"))
    }
    web_env = {
        **base_env,
        "PARTYQUIZ_WEB_ENVIRONMENT": "development",
        "PARTYQUIZ_WEB_DATABASE_URL": config.database_url,
        "PARTYQUIZ_WEB_JWT_SECRET": secret,
        "PARTYQUIZ_WEB_HOST": config.bind_host,
        "PARTYQUIZ_WEB_PORT": str(config.web_port),
        "PARTYQUIZ_WEB_PUBLIC_WS_URL": addresses.ws_url,
        # Quiet unless asked: one access-log line per request floods the terminal.
        "PARTYQUIZ_WEB_LOG_LEVEL": "info" if config.verbose else "warning",
    }
    if addresses.shared_with_phones:
        web_env["PARTYQUIZ_WEB_PUBLIC_URL"] = addresses.player_base
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    logs: dict[str, Path] = {}
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    def start(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = logs[name] = config.root / f"{name}.log"
        output = None if config.verbose else log.open("ab")
        try:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=config.root,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops children in order
            )
        finally:
            if output is not None:
                output.close()
        processes.append((name, process))
        return process

    def failed(error: DemoError) -> DemoError:
        details = [f"{name} log ({path}):\n{_tail(path)}" for name, path in logs.items()]
        return DemoError("\n".join([str(error), *(d for d in details if d.strip())]))

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            web = start("web", [sys.executable, "-m", "partyquiz_web.cli", "serve"], web_env)
            wait_until_healthy(f"http://127.0.0.1:{config.web_port}/healthz", web, "web")
            if ws_command:
                ws_env = {
                    **base_env,
                    "PARTYQUIZ_WS_ENVIRONMENT": "development",
                    "PARTYQUIZ_WS_JWT_SECRET": secret,
                    "PARTYQUIZ_WS_HOST": config.bind_host,
                    "PARTYQUIZ_WS_PORT": str(config.ws_port),
                    "PARTYQUIZ_WS_WEB_INTERNAL_URL": f"http://127.0.0.1:{config.web_port}",
                }
                ws = start("game", [ws_command], ws_env)
                wait_until_healthy(f"http://127.0.0.1:{config.ws_port}/healthz", ws, "game")
        except DemoError as exc:
            raise failed(exc) from None
        print(_banner(config, addresses, password, ws_command is not None), flush=True)
        while not stopping:
            for name, process in processes:
                if process.poll() is not None:
                    raise failed(
                        DemoError(f"the {name} service exited with code {process.returncode}")
                    )
            time.sleep(0.2)
        print("demo: stopping ...", flush=True)
        return 0
    finally:
        stop(list(reversed(processes)))
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _banner(config: DemoConfig, addresses: Addresses, password: str, with_ws: bool) -> str:
    lines = ["", "PartyQuiz demo is running."]
    lines.append(f"  Host:        {addresses.host_base}/host")
    if addresses.shared_with_phones:
        lines.append(f"  Players:     {addresses.player_base}/join  (phones on your network)")
    else:
        lines.append(f"  Players:     {addresses.player_base}/join  (this machine only)")
    lines.append(f"  API docs:    {addresses.host_base}/docs")
    lines.append(
        f"  Game socket: {addresses.ws_url}"
        if with_ws
        else "  Game socket: not started (partyquiz-ws is not installed)"
    )
    lines.append(f"  Data, logs:  {config.root}")
    if not addresses.shared_with_phones:
        lines.append("  Phones:      run with PARTYQUIZ_DEMO_LAN=1 to play on your home network")
    lines.append("Press Ctrl-C to stop.")
    lines.append(f"  Log in as:   {DEMO_EMAIL}")
    lines.append(f"  Password:    {password}")
    return "\n".join(lines)


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
