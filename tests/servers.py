"""Throwaway PostgreSQL and Redis servers for tests and benchmarks.

Each server runs from Debian's binaries in a temporary directory on a free loopback port, so
tests never depend on or disturb system services. Nothing here is a fake: these are the real
servers, started and stopped by the test session.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("PARTYQUIZ_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = os.environ.get("PARTYQUIZ_REDIS_SERVER", "redis-server")
START_TIMEOUT_SECONDS = 30.0


class ServerError(RuntimeError):
    """A throwaway server could not be started; the message carries its log tail."""


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, log: Path | None = None) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise ServerError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s\n{tail}")


def _demote_args() -> list[str]:
    # initdb and postgres refuse to run as root; run them as Debian's postgres user then.
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@dataclass(frozen=True)
class Postgres:
    port: int
    data_dir: Path
    user: str = "postgres"

    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its name."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        subprocess.run(
            [
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-T",
                "template0",
                name,
            ],
            check=True,
            capture_output=True,
        )
        return name


@contextlib.contextmanager
def run_postgres(port: int | None = None) -> Iterator[Postgres]:
    """Start a PostgreSQL server in a fresh data directory; stop and remove it afterwards.

    ``port`` picks the loopback port (a free one by default).
    """
    root = Path(tempfile.mkdtemp(prefix="pq-pg-"))
    data, log = root / "data", root / "postgres.log"
    demote = _demote_args()
    if demote:
        shutil.chown(root, "postgres", "postgres")
    port = port or free_port()
    subprocess.run(
        [
            *demote,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ],
        check=True,
        capture_output=True,
    )
    opts = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    started = subprocess.run(
        [
            *demote,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            opts,
            "-w",
            "-t",
            str(int(START_TIMEOUT_SECONDS)),
            "start",
        ],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise ServerError(f"PostgreSQL did not start: {started.stderr.strip()}\n{tail}")
    try:
        yield Postgres(port=port, data_dir=data)
    finally:
        subprocess.run(
            [*demote, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Redis:
    port: int
    process: subprocess.Popen[bytes]
    dir: Path

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@contextlib.contextmanager
def run_redis(*extra_args: str) -> Iterator[Redis]:
    """Start redis-server without persistence in a temp dir; stop it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="pq-redis-"))
    log = root / "redis.log"
    port = free_port()
    proc = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(root),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(log),
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, START_TIMEOUT_SECONDS, log)
        yield Redis(port=port, process=proc, dir=root)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def flush_redis(port: int) -> None:
    """Remove every key from every database of the server on ``port``."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
        reply = s.recv(64)
    if not reply.startswith(b"+OK"):
        raise ServerError(f"FLUSHALL failed: {reply!r}")


def postgres_user_exists() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True
