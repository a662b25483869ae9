"""What people do on the pages, as reusable steps: build a quiz in the editor, launch a game,
join from a phone, answer. Each step waits for what the person would see before going on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import BrowserContext, Locator, Page, WebSocket, expect

TOKEN_KEY = "partyquiz.host.session"


@dataclass
class QuestionSpec:
    kind: str
    text: str
    choices: list[str]
    correct: list[int]
    time_limit: int = 60
    points: str = "standard"
    read_seconds: int = 0


SNAPSHOT_TYPES = ("welcome", "host_welcome", "state")


@dataclass
class FrameLog:
    """Game-service messages a page received, parsed; what the service itself reported."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_socket(socket: WebSocket) -> None:
            socket.on("framereceived", self._record)

        page.on("websocket", on_socket)

    def _record(self, payload: str | bytes) -> None:
        text = payload.decode() if isinstance(payload, bytes) else payload
        self.messages.append(json.loads(text))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    def questions(self) -> list[dict[str, Any]]:
        """Every question the page was shown: in ``question`` messages and in the snapshots of
        ``welcome``/``state`` (a page that reconnected after a question came up gets it only
        there)."""
        views = []
        for m in self.messages:
            if m.get("type") == "question":
                views.append(m)
            elif m.get("type") in SNAPSHOT_TYPES and (m.get("state") or {}).get("question"):
                views.append(m["state"]["question"])
        return views


def host_token(page: Page) -> str:
    token = page.evaluate(f"window.localStorage.getItem({TOKEN_KEY!r})")
    assert isinstance(token, str)
    return token


def api(page: Page, method: str, path: str, body: Any = None) -> Any:
    """Call the web API as the logged-in host of ``page`` (for setup and cross-checks)."""
    response = page.request.fetch(
        path,
        method=method,
        headers={
            "Authorization": f"Bearer {host_token(page)}",
            "Content-Type": "application/json",
        },
        data=json.dumps(body) if body is not None else None,
    )
    assert response.ok, f"{method} {path}: {response.status} {response.text()}"
    return response.json() if response.status != 204 else None


def fill_question(page: Page, index: int, spec: QuestionSpec) -> None:
    base = f"#f-questions-{index}"
    page.locator(f"{base}-kind").select_option(spec.kind)
    page.locator(f"{base}-text").fill(spec.text)
    if spec.kind != "true_false":
        rows = page.locator(f"{base}-choices .choice-row")
        while rows.count() > len(spec.choices):
            page.get_by_role(
                "button", name=f"Remove answer {rows.count()} of question {index + 1}"
            ).click()
        while rows.count() < len(spec.choices):
            page.get_by_role("button", name=f"Add an answer to question {index + 1}").click()
        for j, text in enumerate(spec.choices):
            page.locator(f"{base}-choices-{j}-text").fill(text)
    for j in spec.correct:
        page.get_by_role("group", name=f"Answers of question {index + 1}").get_by_label(
            f"Answer {j + 1} is correct", exact=True
        ).check()
    page.locator(f"{base}-time_limit_seconds").fill(str(spec.time_limit))
    page.locator(f"{base}-read_seconds").fill(str(spec.read_seconds))
    if spec.kind != "poll":
        page.locator(f"{base}-points").select_option(spec.points)


def build_quiz_in_editor(
    page: Page, title: str, questions: list[QuestionSpec], *, get_ready_seconds: int = 0
) -> str:
    """Create a quiz through the editor; return its id."""
    page.get_by_role("link", name="New quiz").click()
    page.get_by_role("heading", name="New quiz").wait_for()
    page.locator("#f-title").fill(title)
    page.locator("#f-settings-get_ready_seconds").fill(str(get_ready_seconds))
    for i, spec in enumerate(questions):
        if i > 0:
            page.get_by_role("button", name="Add a question").click()
        fill_question(page, i, spec)
    page.get_by_role("button", name="Save quiz").click()
    expect(page.locator("#form-status")).to_contain_text("Saved")
    match = re.search(r"/host/quizzes/([0-9a-f]+)$", page.url)
    assert match, page.url
    return match.group(1)


def launch_game(page: Page, title: str) -> str:
    """From the quiz list, press Play on ``title`` (the newest quiz of that title, the list's
    first); return the join code on the big screen."""
    page.goto("/host")
    quiz_item(page, title).get_by_role("button", name="Play").click()
    code = page.get_by_test_id("join-code")
    expect(code).to_have_text(re.compile(r"^[A-Z0-9]{6}$"))
    return code.inner_text()


def quiz_item(page: Page, title: str) -> Locator:
    """The newest quiz titled exactly ``title`` on the host's quiz list."""
    exact = page.locator(".title", has_text=re.compile(rf"^{re.escape(title)}$"))
    return page.locator("#quiz-list > li").filter(has=exact).first


def join(page: Page, code: str, nickname: str, *, via_link: bool = True) -> None:
    """Join from a phone: through the QR link (code prefilled) or by typing the code."""
    if via_link:
        page.goto(f"/join/{code}")
        expect(page.get_by_label("Game code")).to_have_value(code)
    else:
        page.goto("/")
        page.get_by_label("Game code").fill(code.lower())
        page.get_by_role("button", name="Continue").click()
    page.get_by_label("Your nickname").fill(nickname)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("heading", name="You're in!")).to_be_visible()


def choice(page: Page, text: str) -> Locator:
    """An answer button on the phone, by its text (its accessible name)."""
    return page.locator("#choices").get_by_role("button", name=text, exact=True)


def open_remote(host: Page, new_context: Callable[..., BrowserContext]) -> Page:
    """Open the host's remote control of the game on ``host``'s big screen, on a phone."""
    match = re.search(r"/host/games/([0-9a-f]+)/screen", host.url)
    assert match, host.url
    phone = new_context(phone=True).new_page()
    phone.goto("/")
    phone.evaluate(f"window.localStorage.setItem({TOKEN_KEY!r}, {host_token(host)!r})")
    phone.goto(f"/host/games/{match.group(1)}/remote")
    expect(phone.get_by_role("heading", name="Remote control")).to_be_visible()
    return phone
