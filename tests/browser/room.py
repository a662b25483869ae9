"""One game in its lobby, seen from every size at once: the host's page, a second display at
each chosen TV size and a phone at each chosen phone size, each phone logging what the game
service sent it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.flows import FrameLog, api, join, launch_game
from tests.browser.geometry import PHONES, SCREENS, phone_at, screen_at


class Room:
    def __init__(
        self,
        host: Page,
        new_context: Callable[..., BrowserContext],
        quiz: dict[str, Any],
        *,
        screens: Iterable[str] = SCREENS,
        phones: Iterable[str] = PHONES,
    ) -> None:
        api(host, "POST", "/api/quizzes", quiz)
        code = launch_game(host, quiz["title"])
        self.host = host
        self.screens = {size: screen_at(new_context, host, SCREENS[size]) for size in screens}
        self.phones: dict[str, Page] = {}
        self.frames: dict[str, FrameLog] = {}
        for size in phones:
            page = phone_at(new_context, PHONES[size])
            self.frames[size] = FrameLog()
            self.frames[size].attach(page)
            join(page, code, f"P{size}")
            self.phones[size] = page
        for page in (host, *self.screens.values()):
            expect(page.get_by_test_id("player-count")).to_have_text(str(len(self.phones)))
