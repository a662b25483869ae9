"""Type answer, slider and ordering questions in Chromium, on every phone size and every big
screen size at once: what is needed is on screen without scrolling, touch targets are big
enough, text on the big screen is legible at 5 m, answers travel and count, and nothing that
tells what is right reaches a phone before the reveal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.flows import api, join, launch_game
from tests.browser.geometry import (
    SCREENS,
    box,
    fits,
    legible,
    small_targets,
    small_text,
)
from tests.browser.room import Room

PLANETS = ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn"]


def _one_question(title: str, question: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": title,
        "settings": {"get_ready_seconds": 0},
        "questions": [{"time_limit_seconds": 120, "read_seconds": 0, **question}],
    }


class StartedRoom(Room):
    """One game started at once, with a second display at every TV size and a phone at every
    phone size."""

    def __init__(
        self, host: Page, new_context: Callable[..., BrowserContext], quiz: dict[str, Any]
    ) -> None:
        super().__init__(host, new_context, quiz)
        host.get_by_role("button", name="Start the game").click()

    def check_phones(
        self, ready: str, needed: list[str], shoot: Callable[..., Any], name: str
    ) -> None:
        for size, page in self.phones.items():
            expect(page.locator(ready).first).to_be_visible()
            assert fits(page, [*needed, "#lock-in"]) == [], size
            assert small_targets(page, "#main button, #main input") == [], size
            assert small_text(page, "#main", 14) == [], size
            shoot(page, f"phone-{name}-{size}")

    def check_screens(self, panel: str, shoot: Callable[..., Any], name: str) -> None:
        for size, page in self.screens.items():
            width, height = SCREENS[size]["width"], SCREENS[size]["height"]
            expect(page.locator(panel)).to_be_visible()
            area = box(page, panel)
            # The answer area fills the screen, edge to edge, below the question.
            assert area["width"] >= 0.85 * width, size
            assert area["height"] >= 0.45 * height, size
            assert box(page, "#q-text")["y"] < area["y"], size
            assert small_text(page, "#stage", legible(page)) == [], size
            shoot(page, f"screen-{name}-{size}")

    def nothing_right_before_the_reveal(self, keys: set[str], values: set[object]) -> None:
        """No message before the reveal has a field named in ``keys`` or a value in ``values``
        (compared whole: a clock reading that happens to contain the digits is no leak)."""
        for size, log in self.frames.items():
            reveal = next(i for i, m in enumerate(log.messages) if m["type"] == "reveal")
            for message in log.messages[:reveal]:
                assert not _keys(message) & keys, (size, message)
                assert not _leaves(message) & values, (size, message)


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _leaves(value: object) -> set[object]:
    if isinstance(value, dict):
        return {leaf for v in value.values() for leaf in _leaves(v)}
    if isinstance(value, list):
        return {leaf for v in value for leaf in _leaves(v)}
    return set() if isinstance(value, bool) or value is None else {value}


def test_a_type_answer_question_takes_typed_answers_and_reveals_them_after(
    host_page: Page, new_context: Callable[..., BrowserContext], shoot: Callable[..., Any]
) -> None:
    question = {
        "kind": "type_answer",
        "text": "Which city is the capital of Switzerland?",
        "accepted": ["Bern", "Berne"],
    }
    room = StartedRoom(host_page, new_context, _one_question("Typed", question))
    room.check_phones("#typed-answer", ["#typed-answer"], shoot, "type-answer")
    room.check_screens("#panel", shoot, "type-answer")
    # Phones see a text field, its keyboard says "send"; the big screen says what to do.
    small = room.phones["320x568"]
    expect(small.locator("#typed-answer")).to_have_attribute("enterkeyhint", "send")
    expect(room.screens["1280x720"].locator("#panel")).to_contain_text("Type your answer")

    typed = {"320x568": "  berne", "360x640": "BERN", "375x667": "Zurich", "390x844": "bérn"}
    for size, text in typed.items():
        page = room.phones[size]
        page.locator("#typed-answer").fill(text)
        page.locator("#typed-answer").press("Enter")
        expect(page.get_by_test_id("receipt")).to_contain_text("Answer locked at")
        expect(page.locator("#typed-answer")).to_be_disabled()
    expect(room.phones["320x568"].locator("#typed-answer")).to_have_value("berne")
    shoot(room.phones["320x568"], "phone-type-answer-locked")
    room.host.get_by_role("button", name="Skip to the answer").click()

    for size in ("320x568", "360x640", "390x844"):
        expect(room.phones[size].get_by_role("heading", name="Correct!")).to_be_visible()
    expect(room.phones["375x667"].get_by_role("heading", name="Not quite")).to_be_visible()
    expect(room.phones["844x390"].get_by_role("heading", name="No answer")).to_be_visible()
    wrong = room.phones["375x667"]
    expect(wrong.get_by_test_id("right-answer")).to_contain_text("Bern")
    expect(wrong.get_by_test_id("your-answer")).to_have_text("Your answerZurich")
    shoot(wrong, "phone-type-answer-result")
    for size, page in room.screens.items():
        expect(page.get_by_test_id("right-answer").locator("li")).to_have_text(["Bern", "Berne"])
        expect(page.get_by_test_id("tally")).to_have_text("3 right answers · 1 wrong")
        assert small_text(page, "#stage", legible(page)) == [], size
        shoot(page, f"screen-type-answer-reveal-{size}")
    room.nothing_right_before_the_reveal({"accepted"}, {"Bern", "Berne"})


def test_a_slider_question_counts_a_pick_within_the_tolerance_and_partly_beyond(
    host_page: Page, new_context: Callable[..., BrowserContext], shoot: Callable[..., Any]
) -> None:
    question = {
        "kind": "slider",
        "text": "In which year was the Eiffel Tower finished?",
        "slider": {"min": 1850, "max": 1950, "step": 1, "answer": 1889, "tolerance": 2},
    }
    room = StartedRoom(host_page, new_context, _one_question("Slide", question))
    needed = ["#slider-value", "#slider-input", "#slider-less", "#slider-more"]
    room.check_phones("#slider-input", needed, shoot, "slider")
    room.check_screens("#panel", shoot, "slider")
    small = room.phones["320x568"]
    expect(small.locator("#slider-value")).to_have_text("1900")

    # Touch: the Less and More buttons move a step; the keyboard: arrow keys on the slider.
    for _ in range(3):
        small.get_by_role("button", name="One step less").click()
    expect(small.locator("#slider-value")).to_have_text("1897")
    keys = room.phones["360x640"]
    keys.locator("#slider-input").focus()
    for _ in range(10):
        keys.keyboard.press("ArrowLeft")
    expect(keys.locator("#slider-value")).to_have_text("1890")
    # A drag along the track: the far left end is the smallest number.
    far = room.phones["375x667"]
    track = box(far, "#slider-input")
    far.mouse.click(track["x"] + 2, track["y"] + track["height"] / 2)
    expect(far.locator("#slider-value")).to_have_text("1850")
    for page in (small, keys, far):
        page.get_by_role("button", name="Lock in my answer").click()
        expect(page.get_by_test_id("receipt")).to_contain_text("Answer locked at")
    expect(small.locator("#slider-input")).to_be_disabled()
    shoot(keys, "phone-slider-locked")
    room.host.get_by_role("button", name="Skip to the answer").click()

    expect(keys.get_by_role("heading", name="Correct!")).to_be_visible()
    expect(small.get_by_role("heading", name="Close!")).to_be_visible()
    expect(far.get_by_role("heading", name="Not quite")).to_be_visible()
    # 1897 is 6 beyond the tolerance on a scale of 100: (100 - 24) / 200 of the points.
    points = int(small.locator(".result .points").inner_text().strip("+ points").replace(",", ""))
    assert 0 < points <= 380
    expect(small.get_by_test_id("right-answer")).to_contain_text("1889")
    expect(small.get_by_test_id("your-answer")).to_contain_text("1897")
    shoot(small, "phone-slider-result")
    for size, page in room.screens.items():
        expect(page.get_by_test_id("right-answer")).to_contain_text("1889")
        expect(page.get_by_test_id("tally")).to_have_text("1 right · 1 close · 1 off")
        assert small_text(page, "#stage", legible(page)) == [], size
        shoot(page, f"screen-slider-reveal-{size}")
    room.nothing_right_before_the_reveal({"correct_value", "tolerance"}, {1889})


def test_an_ordering_question_shuffles_its_items_and_only_the_exact_order_scores(
    host_page: Page, new_context: Callable[..., BrowserContext], shoot: Callable[..., Any]
) -> None:
    question = {
        "kind": "ordering",
        "text": "Put the planets in order, closest to the sun first.",
        "choices": [{"text": t} for t in PLANETS],
    }
    room = StartedRoom(host_page, new_context, _one_question("Order", question))
    room.check_phones(".order-item", [".order-item", ".order-item .move"], shoot, "ordering")
    room.check_screens("#tiles", shoot, "ordering")
    small = room.phones["320x568"]
    shown = small.locator(".order-item .text").all_inner_texts()
    assert sorted(shown) == sorted(PLANETS)
    assert shown != PLANETS
    for page in room.screens.values():
        expect(page.locator("#tiles .tile")).to_have_text(shown)

    # With the ▲ ▼ buttons (touch), one item at a time, into the right order.
    for target, planet in enumerate(PLANETS):
        items = small.locator(".order-item .text")
        while items.all_inner_texts().index(planet) > target:
            small.get_by_role("button", name=f"Move {planet} up").click()
    expect(small.locator(".order-item .text")).to_have_text(PLANETS)
    expect(small.locator(".order-item .pos")).to_have_text([str(i + 1) for i in range(6)])
    shoot(small, "phone-ordering-sorted")
    small.get_by_role("button", name="Lock in my order").click()
    expect(small.get_by_test_id("receipt")).to_contain_text("Answer locked at")
    # Another phone drags its last item to the top and locks in the wrong order.
    other = room.phones["844x390"]
    rows = other.locator(".order-item")
    last = box(other, ".order-item:last-child .text")
    first = box(other, ".order-item:first-child .text")
    moved = rows.last.locator(".text").inner_text()
    other.mouse.move(last["x"] + 5, last["y"] + last["height"] / 2)
    other.mouse.down()
    other.mouse.move(first["x"] + 5, first["y"] + 3, steps=8)
    other.mouse.up()
    expect(rows.first.locator(".text")).to_have_text(moved)
    other.get_by_role("button", name="Lock in my order").click()
    expect(other.get_by_test_id("receipt")).to_contain_text("Answer locked at")
    room.host.get_by_role("button", name="Skip to the answer").click()

    expect(small.get_by_role("heading", name="Correct!")).to_be_visible()
    expect(other.get_by_role("heading", name="Not quite")).to_be_visible()
    expect(other.get_by_test_id("right-answer").locator("li")).to_have_text(PLANETS)
    shoot(other, "phone-ordering-result")
    for size, page in room.screens.items():
        expect(page.locator("#tiles .tile .text")).to_have_text(PLANETS)
        expect(page.get_by_test_id("tally")).to_have_text("1 player got the order right")
        assert small_text(page, "#stage", legible(page)) == [], size
        shoot(page, f"screen-ordering-reveal-{size}")
    for size, log in room.frames.items():
        views = log.questions()
        assert views, f"{size} was never sent the question: {[m['type'] for m in log.messages]}"
        for view in views:
            assert view["choices"] != PLANETS, size
            assert "correct" not in view, size


def test_items_are_put_in_order_with_the_keyboard_alone(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    question = {
        "kind": "ordering",
        "text": "Smallest first",
        "choices": [{"text": "Ant"}, {"text": "Cat"}, {"text": "Horse"}],
    }
    api(host_page, "POST", "/api/quizzes", _one_question("Keyboard order", question))
    code = launch_game(host_page, "Keyboard order")
    page = new_context().new_page()  # a laptop: no touch screen
    join(page, code, "Kim")
    host_page.get_by_role("button", name="Start the game").click()
    items = page.locator(".order-item .text")
    expect(items).to_have_count(3)
    # The first item has the focus; Tab reaches the others; arrow keys move the focused one.
    expect(page.locator(".order-item").first).to_be_focused()
    for target, animal in enumerate(["Ant", "Cat", "Horse"]):
        page.locator(".order-item").filter(has_text=animal).focus()
        while items.all_inner_texts().index(animal) > target:
            page.keyboard.press("ArrowUp")
        expect(page.locator(".order-item").filter(has_text=animal)).to_be_focused()
    expect(items).to_have_text(["Ant", "Cat", "Horse"])
    expect(page.locator("#announcer")).to_contain_text("moved to place")
    page.keyboard.press("Tab")
    while page.evaluate("document.activeElement.id") != "lock-in":
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    # The only player answered: the question closes at once.
    expect(page.get_by_role("heading", name="Correct!")).to_be_visible()
