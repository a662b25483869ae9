"""The pages' reconnect policy against a real WebSocket server that closes on purpose:
1012 (service restarting) reconnects at once, other closes back off, 4003 (kicked) stops."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext
from websockets.sync.server import Server, ServerConnection, serve

CLOSE_CODES = [1012, 1011, 1011, 4003]


@pytest.fixture
def closing_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A server that reads the hello and closes with the next code of CLOSE_CODES."""
    hellos: list[dict[str, Any]] = []
    codes = iter(CLOSE_CODES)
    lock = threading.Lock()

    def handler(connection: ServerConnection) -> None:
        hellos.append(json.loads(connection.recv()))
        with lock:
            code = next(codes, 1000)
        connection.close(code, "test")

    server: Server = serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/ws", hellos
    finally:
        server.shutdown()
        thread.join(5)


def test_restart_reconnects_at_once_other_closes_back_off_and_kicked_stops(
    new_context: Callable[..., BrowserContext], closing_server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, hellos = closing_server
    page = new_context().new_page()
    page.goto("/")
    page.evaluate(
        """async (url) => {
            const { GameConnection } = await import("/static/js/gameclient.js");
            window.statuses = [];
            const conn = new GameConnection({
                url,
                hello: () => ({ type: "resume", resume_token: "t" }),
                onMessage: () => {},
                onStatus: (status, detail) => window.statuses.push({ status, ...(detail || {}) }),
            });
            conn.start();
        }""",
        url,
    )
    page.wait_for_function("window.statuses.some((s) => s.status === 'stopped')", timeout=30_000)
    statuses = page.evaluate("window.statuses")
    retries = [s for s in statuses if s["status"] == "reconnecting" and "code" in s]
    assert [s["code"] for s in retries] == [1012, 1011, 1011]
    assert retries[0]["delay"] == 0
    # Without a welcome in between the back-off keeps growing (1 s, 2 s; up to 20 % jitter).
    assert 800 <= retries[1]["delay"] <= 1200
    assert 1600 <= retries[2]["delay"] <= 2400
    assert statuses[-1]["status"] == "stopped"
    assert len(hellos) == 4
    assert all(h == {"type": "resume", "resume_token": "t"} for h in hellos)
