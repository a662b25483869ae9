"""Accessibility checks that need no external tool: every control has an accessible name (as
Chromium computes it), images have text alternatives, pages declare their language, answers
differ by shape as well as colour, and the colour pairs of the stylesheet meet WCAG AA."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.flows import api, join, launch_game

STYLESHEET = (
    Path(__file__).resolve().parents[2] / "services/web/partyquiz_web/static/css/partyquiz.css"
)
INTERACTIVE_ROLES = {
    "button",
    "link",
    "textbox",
    "combobox",
    "checkbox",
    "radio",
    "spinbutton",
    "tab",
    "listbox",
    "menuitem",
    "switch",
    "slider",
    "searchbox",
}
# Foreground on background pairs the stylesheet uses for text.
TEXT_PAIRS = [
    ("page-fg", "page-bg"),
    ("page-fg", "surface-bg"),
    ("surface-fg", "surface-bg"),
    ("muted-fg", "page-bg"),
    ("muted-fg", "surface-bg"),
    ("brand-fg", "brand-bg"),
    ("brand-bg", "page-bg"),
    ("brand-bg", "surface-bg"),
    ("brand-bg", "notice-bg"),
    ("danger-fg", "page-bg"),
    ("danger-fg", "surface-bg"),
    ("success-fg", "success-bg"),
    ("wrong-fg", "wrong-bg"),
    ("notice-fg", "notice-bg"),
    *((f"choice-{i}-fg", f"choice-{i}-bg") for i in range(6)),
]
QUIZ = {
    "title": "Shapes",
    "settings": {"get_ready_seconds": 0},
    "questions": [
        {
            "kind": "single",
            "text": "Six choices",
            "choices": [{"text": t} for t in ("A", "B", "C", "D", "E", "F")],
            "correct": [0],
            "time_limit_seconds": 120,
            "read_seconds": 0,
        }
    ],
}


def _colours() -> dict[str, str]:
    css = STYLESHEET.read_text()
    return dict(re.findall(r"--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6})\s*;", css))


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_contrast_formula_matches_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(("fg", "bg"), TEXT_PAIRS)
def test_text_colour_pairs_meet_wcag_aa(fg: str, bg: str) -> None:
    colours = _colours()
    ratio = contrast(colours[fg], colours[bg])
    assert ratio >= 4.5, f"--{fg} on --{bg}: {ratio:.2f}:1"


def test_the_six_answer_colours_are_distinct() -> None:
    colours = _colours()
    backgrounds = [colours[f"choice-{i}-bg"].lower() for i in range(6)]
    assert len(set(backgrounds)) == 6


def _unnamed_controls(page: Page) -> list[str]:
    session = page.context.new_cdp_session(page)
    try:
        tree: dict[str, Any] = session.send("Accessibility.getFullAXTree")
    finally:
        session.detach()
    problems = []
    for node in tree["nodes"]:
        if node.get("ignored"):
            continue
        role = node.get("role", {}).get("value")
        name = str(node.get("name", {}).get("value", "")).strip()
        if role in INTERACTIVE_ROLES and not name:
            problems.append(f"{role} without a name")
        if role == "image" and not name:
            problems.append("image without a text alternative")
    return problems


def _check(page: Page) -> None:
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("main").count() == 1
    expect(page.locator("main h1")).to_have_count(1)
    assert _unnamed_controls(page) == [], page.url


def test_every_page_names_its_controls(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    _check(host)
    host.get_by_role("link", name="New quiz").click()
    expect(host.locator("#f-title")).to_be_visible()
    _check(host)
    host.get_by_role("link", name="Past games").click()
    expect(host.get_by_role("heading", name="Past games")).to_be_visible()
    _check(host)

    anonymous = new_context().new_page()
    anonymous.goto("/")
    _check(anonymous)
    anonymous.goto("/host/login")
    expect(anonymous.get_by_role("heading", name="Host log in")).to_be_visible()
    _check(anonymous)

    api(host, "POST", "/api/quizzes", QUIZ)
    code = launch_game(host, "Shapes")
    phone = new_context(phone=True).new_page()
    phone.goto(f"/join/{code}")
    _check(phone)
    join(phone, code, "Ada")
    _check(phone)
    expect(host.get_by_test_id("player-count")).to_have_text("1")
    _check(host)

    host.get_by_role("button", name="Start the game").click()
    expect(phone.locator("#q-text")).to_be_visible()
    _check(phone)
    _check(host)
    # Six answers: six different shapes, and the colours really come from the palette.
    shapes = phone.locator("#choices .choice svg").evaluate_all(
        "(svgs) => svgs.map((s) => s.getAttribute('class'))"
    )
    assert len(set(shapes)) == 6
    colours = _colours()
    for i in range(6):
        button = phone.locator(f"#choices .choice-{i}")
        styles = button.evaluate(
            "(b) => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]"
        )
        assert styles == [_rgb(colours[f"choice-{i}-bg"]), _rgb(colours[f"choice-{i}-fg"])]
        expect(button).to_have_attribute("aria-keyshortcuts", str(i + 1))


def test_text_is_sized_in_rem_so_it_follows_the_browser_setting() -> None:
    css = STYLESHEET.read_text()
    assert not re.search(r"font-size:\s*\d+(\.\d+)?px", css)


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"
