"""What a failed browser test leaves behind: each page as it looked, and what it heard.

A ``Recorder`` watches the browser contexts of one test from the moment each is opened: console
lines, uncaught page errors and every WebSocket frame in and out, each with the time it came.
When the test fails, ``save`` writes a screenshot, the visible text and the URL of every page that
is still open, those records, and the stack's service logs into one folder, so that a failure seen
once on a busy machine can be read afterwards instead of guessed at.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import deque
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Frame, Page, WebSocket

from tests.browser.stack import Stack

# Enough to cover a test's last minute of play; older lines are dropped first.
MAX_LINES = 2_000
MAX_FRAME_CHARS = 600


def failures_root(repo: Path) -> Path:
    """Where failed tests' evidence goes: the test runner's log folder when it set one (the one
    ``make test`` prints), else test-artifacts/ in the checkout."""
    logs = os.environ.get("PARTYQUIZ_TEST_LOGS")
    return Path(logs) / "browser-failures" if logs else repo / "test-artifacts" / "failures"


class Recorder:
    def __init__(self) -> None:
        self._started = time.monotonic()
        self._names: dict[Page, str] = {}
        self._lines: dict[str, deque[str]] = {}

    def watch(self, context: BrowserContext, role: str) -> None:
        """Record every page ``context`` opens under ``role`` (``phone``, ``screen``)."""
        context.on("page", lambda page: self._watch_page(page, role))

    def _watch_page(self, page: Page, role: str) -> None:
        name = f"{len(self._names) + 1}-{role}"
        self._names[page] = name
        self._lines[name] = deque(maxlen=MAX_LINES)
        page.on("console", lambda message: self._console(name, message))
        page.on("pageerror", lambda error: self._note(name, f"page error: {error}"))
        page.on("framenavigated", lambda frame: self._navigated(name, page, frame))
        page.on("websocket", lambda socket: self._websocket(name, socket))

    def _note(self, name: str, text: str) -> None:
        self._lines[name].append(f"{time.monotonic() - self._started:8.3f} {text}")

    def _console(self, name: str, message: ConsoleMessage) -> None:
        self._note(name, f"console.{message.type}: {message.text}")

    def _navigated(self, name: str, page: Page, frame: Frame) -> None:
        if frame == page.main_frame:
            self._note(name, f"at {frame.url}")

    def _websocket(self, name: str, socket: WebSocket) -> None:
        self._note(name, f"ws open {socket.url}")
        socket.on("framesent", lambda payload: self._frame(name, "->", payload))
        socket.on("framereceived", lambda payload: self._frame(name, "<-", payload))
        socket.on("socketerror", lambda error: self._note(name, f"ws error {error}"))
        socket.on("close", lambda _: self._note(name, "ws closed"))

    def _frame(self, name: str, direction: str, payload: str | bytes) -> None:
        text = payload if isinstance(payload, str) else payload.decode(errors="replace")
        if len(text) > MAX_FRAME_CHARS:
            text = f"{text[:MAX_FRAME_CHARS]}… ({len(text)} chars)"
        self._note(name, f"ws {direction} {text}")

    def save(self, folder: Path, service_logs: Path) -> None:
        """Write what each page shows and heard, and the service logs, into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        for page, name in self._names.items():
            lines = list(self._lines[name])
            if not page.is_closed():
                lines.insert(0, f"url {page.url}")
                try:
                    page.screenshot(path=str(folder / f"{name}.png"), timeout=10_000)
                    (folder / f"{name}.txt").write_text(page.inner_text("body", timeout=10_000))
                except Error as exc:
                    lines.append(f"could not capture the page: {exc.message}")
            (folder / f"{name}.log").write_text("\n".join(lines) + "\n")
        for log in ("web.log", "ws.log"):
            if (service_logs / log).exists():
                shutil.copyfile(service_logs / log, folder / log)


def folder_name(nodeid: str) -> str:
    """A file-system-safe folder name for a test id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:120]


# Set on each browser test by the ``new_context`` fixture: its recorder and the stack it plays on.
RECORDER = pytest.StashKey[tuple[Recorder, Stack]]()
