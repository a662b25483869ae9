"""The pages load from the web service and a host can register."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_host_registers_and_sees_an_empty_quiz_list(fresh_host_page: Page) -> None:
    expect(fresh_host_page.locator("#quiz-list")).to_contain_text("No quizzes yet")
