"""Behind an ingress, rate limits are per player: `partyquiz-web serve` takes the client address
from X-Forwarded-For only when the request comes from a trusted proxy (the networks the operator
renders into PARTYQUIZ_WEB_FORWARDED_ALLOW_IPS)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.servers import free_port

SECRET = "k3Jx9-p2Qw8zR4tY7uV1bN5mA6sD0fG3hL2jK9pQ"  # a test-only key of the required length
START_SECONDS = 180.0  # importing everything on a busy machine
LIMIT = 2


def _serve(tmp_path: Path, trusted: str) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTYQUIZ_WEB_")}
    env.update(
        PARTYQUIZ_WEB_JWT_SECRET=SECRET,
        PARTYQUIZ_WEB_PORT=str(port),
        PARTYQUIZ_WEB_FORWARDED_ALLOW_IPS=trusted,
        PARTYQUIZ_WEB_CODE_LOOKUP_RATE_LIMIT=str(LIMIT),
    )
    cli = [sys.executable, "-m", "partyquiz_web.cli"]
    migrate = subprocess.run(
        [*cli, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert migrate.returncode == 0, migrate.stderr
    server = subprocess.Popen(
        [*cli, "serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.communicate(timeout=60)


@pytest.fixture
def behind_trusted_proxy(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, "127.0.0.0/8,10.0.0.0/8")


@pytest.fixture
def behind_untrusted_peer(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, "10.0.0.0/8")


def lookups(url: str, forwarded_for: list[str]) -> list[int]:
    return [
        httpx.get(f"{url}/api/games/code/ZZZZZZ", headers={"X-Forwarded-For": ip}).status_code
        for ip in forwarded_for
    ]


def test_players_behind_a_trusted_proxy_each_have_their_own_limit(
    behind_trusted_proxy: str,
) -> None:
    players = [f"203.0.113.{n}" for n in range(1, 6)]
    assert lookups(behind_trusted_proxy, players) == [404] * 5
    # Limits count in fixed windows: twice the limit and one more is over it in some window.
    assert 429 in lookups(behind_trusted_proxy, ["198.51.100.7"] * (2 * LIMIT + 1))


def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(
    behind_untrusted_peer: str,
) -> None:
    players = [f"203.0.113.{n}" for n in range(1, 2 * LIMIT + 2)]
    assert 429 in lookups(behind_untrusted_peer, players)
