"""The game service's listening socket takes a reconnect storm without dropping connections."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from tests.unit.ws.harness import running_service

from partyquiz_ws.server import LISTEN_BACKLOG

SOMAXCONN = int(Path("/proc/sys/net/core/somaxconn").read_text())


def _accept_queue(port: int) -> int:
    """The accept-queue limit the kernel holds for the socket listening on ``port``."""
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:1] == ["LISTEN"], out
    return int(out[2])  # a listening socket's Send-Q is its backlog


async def test_the_accept_queue_holds_the_players_of_a_drained_replica() -> None:
    async with running_service() as svc:
        port = urlsplit(svc.url).port
        assert port is not None
        assert _accept_queue(port) == min(LISTEN_BACKLOG, SOMAXCONN) >= 1024
