"""`partyquiz-web serve` with several workers, and `migrate --wait` for a starting database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.servers import free_port, run_postgres

from partyquiz_web.migrating import head_revision

SECRET = "k3Jx9-p2Qw8zR4tY7uV1bN5mA6sD0fG3hL2jK9pQ"  # a test-only key of the required length
START_SECONDS = 180.0  # a worker imports everything afresh; slow on a busy machine


def _web_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTYQUIZ_WEB_")}
    env.update({f"PARTYQUIZ_WEB_{k.upper()}": v for k, v in values.items()})
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "partyquiz_web.cli", *args]


def _workers(pid: int) -> set[int]:
    """The worker processes of the server ``pid`` (not multiprocessing's resource tracker)."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children |= {int(child) for child in (task / "children").read_text().split()}
    workers = set()
    for child in children:
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.add(child)
    return workers


def _wait(condition: Callable[[], bool], what: str, timeout: float = START_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


@contextlib.contextmanager
def _serving(tmp_path: Path, **values: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Migrate a fresh SQLite database and run `serve` on a free port; kill it if still up."""
    port = free_port()
    env = _web_env(jwt_secret=SECRET, port=str(port), **values)
    migrate = subprocess.run(
        _cli("migrate"), env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert migrate.returncode == 0, migrate.stderr
    server = subprocess.Popen(
        _cli("serve"), env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate(timeout=30)


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with _serving(tmp_path, workers="2") as serving:
        yield serving


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_workers_serve_replace_a_worker_that_dies_and_stop_together_on_sigterm(
    two_workers: tuple[subprocess.Popen[str], str],
) -> None:
    server, url = two_workers
    _wait(lambda: _answers(url) and len(_workers(server.pid)) == 2, "two workers answering")
    workers = _workers(server.pid)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    # The supervisor starts a new worker in its place; the other one kept answering meanwhile.
    _wait(
        lambda: len(_workers(server.pid) - {victim}) == 2 and _answers(url),
        "a replacement worker",
    )
    server.send_signal(signal.SIGTERM)
    output, _ = server.communicate(timeout=START_SECONDS)
    assert server.returncode == 0, output[-3000:]
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers - {victim}), output[-3000:]


def test_ctrl_c_stops_the_server_quietly(tmp_path: Path) -> None:
    with _serving(tmp_path) as (server, url):
        _wait(lambda: _answers(url), "the server answering")
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=START_SECONDS)
    assert server.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "Finished server process" in output


def test_migrate_waits_for_a_database_that_is_still_starting(tmp_path: Path) -> None:
    port = free_port()
    env = _web_env(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres")
    migrate = subprocess.Popen(
        _cli("migrate", "--wait", "120"), env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert migrate.stderr is not None
        first = migrate.stderr.readline()
        assert "database not reachable yet" in first, first
        with run_postgres(port=port):
            out, err = migrate.communicate(timeout=120)
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.communicate()
    assert migrate.returncode == 0, err
    assert f"upgraded from empty to {head_revision()} (head)" in out


def test_migrate_without_wait_fails_at_once_on_a_database_that_is_not_there(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = _web_env(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres")
    result = subprocess.run(
        _cli("migrate"), env=env, cwd=tmp_path, capture_output=True, text=True, check=False,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "not reachable yet" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
