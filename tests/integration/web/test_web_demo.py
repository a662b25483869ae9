"""``python -m partyquiz_web.demo``: starts, seeds a working login, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from tests.servers import free_port

READY_TIMEOUT_SECONDS = 90


def _demo_env(web_port: int, ws_port: int, with_ws: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTYQUIZ_")}
    env.update(
        {
            "PARTYQUIZ_DEMO_WEB_PORT": str(web_port),
            "PARTYQUIZ_DEMO_WS_PORT": str(ws_port),
            "PARTYQUIZ_DEMO_WS": "on" if with_ws else "off",
        }
    )
    return env


class Demo:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "partyquiz_web.demo"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                self.ready.set()
        self.ready.set()

    def value(self, label: str) -> str:
        for line in self.lines:
            match = re.match(rf"\s+{label}:\s+(\S+)", line)
            if match:
                return match.group(1)
        raise AssertionError(f"{label} not printed:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(60)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


@pytest.fixture
def demo_ports() -> tuple[int, int]:
    web_port = free_port()
    ws_port = free_port()
    while ws_port == web_port:
        ws_port = free_port()
    return web_port, ws_port


@pytest.mark.parametrize("with_ws", [False, True], ids=["web-only", "web-and-game"])
def test_demo_serves_a_seeded_host_and_stops_on_sigterm(
    tmp_path: Path, demo_ports: tuple[int, int], with_ws: bool
) -> None:
    web_port, ws_port = demo_ports
    demo = Demo(tmp_path, _demo_env(web_port, ws_port, with_ws))
    try:
        assert demo.ready.wait(READY_TIMEOUT_SECONDS), "\n".join(demo.lines)
        assert demo.process.poll() is None, "\n".join(demo.lines)
        email, password = demo.value("Log in as"), demo.value("Password")
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}") as client:
            login = client.post("/api/auth/login", json={"email": email, "password": password})
            assert login.status_code == 200
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
            quizzes = client.get("/api/quizzes", headers=auth).json()
            assert [q["question_count"] for q in quizzes] == [5]
            kinds = {
                q["kind"]
                for q in client.get(f"/api/quizzes/{quizzes[0]['id']}", headers=auth).json()[
                    "quiz"
                ]["questions"]
            }
            assert kinds == {"single", "multiple", "true_false", "poll"}
            game = client.post("/api/games", json={"quiz_id": quizzes[0]["id"]}, headers=auth)
            assert game.json()["ws_url"] == f"ws://localhost:{ws_port}/ws"
        if with_ws:
            assert httpx.get(f"http://127.0.0.1:{ws_port}/healthz").status_code == 200
    finally:
        code = demo.stop()
    assert code == 0, "\n".join(demo.lines)
    assert demo.lines[-1] == "demo: stopped"
    assert (tmp_path / ".demo" / "partyquiz.db").exists()
    for port in (web_port, ws_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0


def test_demo_says_which_port_is_busy(tmp_path: Path, demo_ports: tuple[int, int]) -> None:
    web_port, ws_port = demo_ports
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", web_port))
        busy.listen()
        result = subprocess.run(
            [sys.executable, "-m", "partyquiz_web.demo"],
            cwd=tmp_path,
            env=_demo_env(web_port, ws_port, False),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"demo: port {web_port} is busy; stop what uses it or set PARTYQUIZ_DEMO_WEB_PORT "
        "to a free port"
    )
