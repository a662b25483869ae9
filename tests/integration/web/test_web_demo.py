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

from partyquiz_core.quiz import QuestionKind

READY_TIMEOUT_SECONDS = 90


def _demo_env(web_port: int, ws_port: int, with_ws: bool, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTYQUIZ_")}
    env.update(
        {
            "PARTYQUIZ_DEMO_WEB_PORT": str(web_port),
            "PARTYQUIZ_DEMO_WS_PORT": str(ws_port),
            "PARTYQUIZ_DEMO_WS": "on" if with_ws else "off",
            **extra,
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
            if line.startswith("  Password:"):  # printed last
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
        # Loopback is the default, and the demo says how to let phones in.
        assert demo.value("Players") == f"http://localhost:{web_port}/join"
        assert any("PARTYQUIZ_DEMO_LAN=1" in line for line in demo.lines)
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}") as client:
            login = client.post("/api/auth/login", json={"email": email, "password": password})
            assert login.status_code == 200
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
            quizzes = client.get("/api/quizzes", headers=auth).json()
            assert [q["question_count"] for q in quizzes] == [9]
            kinds = {
                q["kind"]
                for q in client.get(f"/api/quizzes/{quizzes[0]['id']}", headers=auth).json()[
                    "quiz"
                ]["questions"]
            }
            assert kinds == {q.value for q in QuestionKind}
            game = client.post("/api/games", json={"quiz_id": quizzes[0]["id"]}, headers=auth)
            assert game.json()["ws_url"] == f"ws://localhost:{ws_port}/ws"
        if with_ws:
            assert httpx.get(f"http://127.0.0.1:{ws_port}/healthz").status_code == 200
    finally:
        code = demo.stop()
    assert code == 0, "\n".join(demo.lines)
    assert demo.lines[-1] == "demo: stopped"
    assert (tmp_path / ".demo" / "partyquiz.db").exists()
    # Quiet: the services' logs go to the demo folder, not one line per request on screen.
    assert not [line for line in demo.lines if "GET /" in line or "POST /" in line]
    assert (tmp_path / ".demo" / "web.log").exists()
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


def _log_in(base_url: str, email: str, password: str) -> dict[str, str]:
    with httpx.Client(base_url=base_url) as client:
        login = client.post("/api/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}


def test_the_demo_hosts_password_stays_the_same_across_restarts(
    tmp_path: Path, demo_ports: tuple[int, int]
) -> None:
    web_port, ws_port = demo_ports
    passwords = []
    for _ in range(2):
        demo = Demo(tmp_path, _demo_env(web_port, ws_port, False))
        try:
            assert demo.ready.wait(READY_TIMEOUT_SECONDS), "\n".join(demo.lines)
            # The password is the last thing printed, where it is easy to find.
            assert demo.lines[-1].startswith("  Password:")
            passwords.append(demo.value("Password"))
            _log_in(f"http://127.0.0.1:{web_port}", demo.value("Log in as"), passwords[-1])
        finally:
            assert demo.stop() == 0, "\n".join(demo.lines)
    assert passwords[0] == passwords[1]
    kept = tmp_path / ".demo" / "host_password"
    assert kept.read_text().strip() == passwords[0]
    assert kept.stat().st_mode & 0o777 == 0o600


def test_lan_mode_points_phones_at_the_address_players_use(
    tmp_path: Path, demo_ports: tuple[int, int]
) -> None:
    web_port, ws_port = demo_ports
    # 192.0.2.10 is a documentation address: the demo is told to use it, never contacts it.
    public = f"http://192.0.2.10:{web_port}"
    env = _demo_env(web_port, ws_port, True, PARTYQUIZ_DEMO_LAN="1", PARTYQUIZ_PUBLIC_URL=public)
    demo = Demo(tmp_path, env)
    try:
        assert demo.ready.wait(READY_TIMEOUT_SECONDS), "\n".join(demo.lines)
        assert demo.value("Players") == f"{public}/join"
        assert demo.value("Game socket") == f"ws://192.0.2.10:{ws_port}/ws"
        base = f"http://127.0.0.1:{web_port}"
        auth = _log_in(base, demo.value("Log in as"), demo.value("Password"))
        with httpx.Client(base_url=base) as client:
            quiz = client.get("/api/quizzes", headers=auth).json()[0]
            game = client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth).json()
        assert game["join_url"] == f"{public}/join/{game['join_code']}"
        assert game["ws_url"] == f"ws://192.0.2.10:{ws_port}/ws"
    finally:
        assert demo.stop() == 0, "\n".join(demo.lines)
