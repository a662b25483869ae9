"""Browser fixtures: one real web + game service stack per session, Debian's chromium driven by
Playwright, a host and player phones as separate browser contexts, and screenshots.

Tests share the processes and one registered host per stack (``host_page``): each test makes
quizzes and games of its own, with titles no other test uses, and finds them by title; a test
about what a new account sees registers its own host (``fresh_host_page``).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.browser.evidence import RECORDER, Recorder, failures_root, folder_name
from tests.browser.flows import TOKEN_KEY
from tests.browser.stack import Stack, chromium_path, run_stack

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
PHONE: ViewportSize = {"width": 390, "height": 844}
BIG_SCREEN: ViewportSize = {"width": 1280, "height": 720}
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Explicit waits on conditions only; this bounds each wait, it is not a sleep.
WAIT_MS = 15_000
# The set committed under docs/screenshots/ (the README shows them); the rest stay artifacts.
DOCS_SET = frozenset(
    {
        "phone-2-lobby",
        "phone-3-answer-locked",
        "phone-4-result",
        "phone-5-leaderboard",
        "phone-6-podium",
        "host-1-lobby",
        "host-2-question",
        "host-3-reveal",
        "host-4-leaderboard",
        "host-5-podium",
        "host-6-results",
        "host-editor-validation",
        "screen-lobby-1920x1080",
        "screen-question-3840x2160",
        "screen-reveal-1280x720",
        "phone-answer-6-320x568",
        "phone-answer-4-844x390",
        "phone-read-the-question",
        "remote-question",
        "phone-type-answer-320x568",
        "phone-slider-320x568",
        "phone-ordering-320x568",
        "phone-ordering-844x390",
        "phone-slider-result",
        "screen-type-answer-reveal-1280x720",
        "screen-slider-reveal-1920x1080",
        "screen-ordering-1280x720",
        "screen-ordering-reveal-1280x720",
        "host-editor-new-kinds",
    }
)


expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with run_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if chromium_path() is None:
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """When a browser test fails, save what its pages showed and heard before they close."""
    report = yield
    watched = item.stash.get(RECORDER, None)
    if report.when == "call" and report.failed and watched is not None:
        recorder, stack = watched
        folder = failures_root(REPO) / folder_name(item.nodeid)
        recorder.save(folder, stack.logs)
        report.sections.append(("browser evidence", f"what the pages showed and heard: {folder}"))
    return report


@pytest.fixture
def new_context(
    browser: Browser, stack: Stack, request: pytest.FixtureRequest
) -> Iterator[Callable[..., BrowserContext]]:
    """Open browser contexts (one per person); all are closed after the test. Their pages are
    recorded, to be saved if the test fails (tests/browser/evidence.py)."""
    contexts: list[BrowserContext] = []
    recorder = Recorder()
    request.node.stash[RECORDER] = (recorder, stack)

    def open_context(*, phone: bool = False, **options: Any) -> BrowserContext:
        context = browser.new_context(
            base_url=stack.web_url,
            viewport=PHONE if phone else BIG_SCREEN,
            device_scale_factor=1,
            is_mobile=phone,
            has_touch=phone,
            accept_downloads=True,
            **options,
        )
        context.set_default_timeout(WAIT_MS)
        recorder.watch(context, "phone" if phone else "screen")
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def host_tokens() -> dict[str, str]:
    """The login token of the host the tests of one stack share, by the stack's web URL."""
    return {}


def _registered_host_token(playwright: Playwright, web_url: str) -> str:
    api = playwright.request.new_context(base_url=web_url)
    try:
        account = {"email": f"host-{uuid.uuid4().hex[:10]}@example.org", "password": PASSWORD}
        registered = api.post("/api/auth/register", data=account)
        assert registered.status == 201, registered.text()
        login = api.post("/api/auth/login", data=account)
        assert login.status == 200, login.text()
        token = login.json()["access_token"]
        assert isinstance(token, str)
        return token
    finally:
        api.dispose()


@pytest.fixture
def host_page(
    new_context: Callable[..., BrowserContext],
    stack: Stack,
    playwright: Playwright,
    host_tokens: dict[str, str],
) -> Page:
    """A big-screen page of the stack's shared host, logged in, on the quiz list."""
    token = host_tokens.get(stack.web_url)
    if token is None:
        token = host_tokens[stack.web_url] = _registered_host_token(playwright, stack.web_url)
    origin = {"origin": stack.web_url, "localStorage": [{"name": TOKEN_KEY, "value": token}]}
    page = new_context(storage_state={"cookies": [], "origins": [origin]}).new_page()
    page.goto("/host")
    page.get_by_role("heading", name="Your quizzes").wait_for()
    return page


@pytest.fixture
def fresh_host_page(new_context: Callable[..., BrowserContext]) -> Page:
    """A big-screen page of a host registered through the page just now: an empty account."""
    page = new_context().new_page()
    register_host(page)
    return page


def register_host(page: Page) -> str:
    email = f"host-{uuid.uuid4().hex[:10]}@example.org"
    page.goto("/host/login?mode=register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Display name (optional)").fill("Quizmaster")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Your quizzes").wait_for()
    return email


@pytest.fixture
def shoot() -> Callable[[Page, str], Path]:
    """Save a screenshot to test-artifacts/screenshots/ (and docs/screenshots/ on request)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    update_docs = os.environ.get("PARTYQUIZ_UPDATE_SCREENSHOTS") == "1"

    def take(page: Page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), animations="disabled", caret="hide")
        if update_docs and name in DOCS_SET:
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
        return path

    return take
