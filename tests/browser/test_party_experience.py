"""The party as the room lives it, at real phone and TV sizes: every answer and the lock button
on screen without scrolling, a big screen that fills 720p to 4K with text legible at 5 m, get
ready and a read pause before answers open, a podium in suspense, streaks, sound that can be
muted, and a double-click that never skips a phase. The sizes and the geometry rules
(legible at 5 m, on screen without scrolling) are in ``tests.browser.geometry``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

from tests.browser.flows import TOKEN_KEY, api, host_token, join, launch_game, open_remote
from tests.browser.geometry import (
    PHONES,
    SCREENS,
    box,
    broken_words,
    fits,
    legible,
    phone_at,
    screen_at,
    small_text,
)
from tests.browser.stack import Stack

SIX = ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn"]
FOUR = [
    "A rather long answer that wraps over two lines",
    "Paris",
    "The city of a hundred spires",
    "Rome",
]


def _quiz(title: str, **settings: Any) -> dict[str, Any]:
    return {
        "title": title,
        "settings": {"get_ready_seconds": 0, **settings},
        "questions": [
            {
                "kind": "multiple",
                "text": "Which of these planets are closer to the sun than Jupiter?",
                "choices": [{"text": t} for t in SIX],
                "correct": [0, 1, 2, 3],
                "time_limit_seconds": 120,
                "read_seconds": 0,
            },
            {
                "kind": "single",
                "text": "Which one is the capital of France?",
                "choices": [{"text": t} for t in FOUR],
                "correct": [1],
                "time_limit_seconds": 120,
                "read_seconds": 0,
            },
        ],
    }


def test_every_answer_and_the_lock_button_fit_every_phone_without_scrolling(
    host_page: Page, new_context: Callable[..., BrowserContext], shoot: Callable[[Page, str], Any]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", _quiz("Fit"))
    code = launch_game(host, "Fit")
    phones = {}
    for name, size in PHONES.items():
        phone = phone_at(new_context, size)
        join(phone, code, f"P{name}")
        phones[name] = phone
    expect(host.get_by_test_id("player-count")).to_have_text(str(len(PHONES)))
    host.get_by_role("button", name="Start the game").click()

    for name, phone in phones.items():
        expect(phone.locator("#choices .choice")).to_have_count(6)
        assert fits(phone, ["#choices .choice", "#lock-in"]) == [], name
        # Touch screens get no keyboard hints.
        expect(phone.locator(".choice .key").first).to_be_hidden()
        expect(phone.locator(".keys-hint")).to_be_hidden()
        assert small_text(phone, "#choices", 14) == [], name
        shoot(phone, f"phone-answer-6-{name}")
    # A pick, then the lock button: still all on screen, and the lock takes.
    small = phones["320x568"]
    small.locator("#choices .choice").nth(0).click()
    small.locator("#choices .choice").nth(3).click()
    expect(small.get_by_role("button", name="Lock in my answer")).to_be_enabled()
    small.get_by_role("button", name="Lock in my answer").click()
    expect(small.get_by_test_id("receipt")).to_contain_text("Answer locked at")
    assert fits(small, ["#choices .choice", "#lock-in", "#receipt"]) == []
    shoot(small, "phone-answer-locked-320x568")

    host.get_by_role("button", name="Skip to the answer").click()
    host.get_by_role("button", name="Show the leaderboard").click()
    host.get_by_role("button", name="Next question").click()
    for name, phone in phones.items():
        expect(phone.locator("#choices .choice")).to_have_count(4)
        assert fits(phone, ["#choices .choice"]) == [], name
        shoot(phone, f"phone-answer-4-{name}")


@pytest.mark.parametrize("size", list(SCREENS), ids=list(SCREENS))
def test_the_big_screen_fills_the_room_and_its_text_is_legible_at_5_m(
    size: str,
    host_page: Page,
    new_context: Callable[..., BrowserContext],
    shoot: Callable[[Page, str], Any],
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", _quiz(f"Room {size}", streak_bonus=True))
    code = launch_game(host, f"Room {size}")
    screen = screen_at(new_context, host, SCREENS[size])
    width, height = SCREENS[size]["width"], SCREENS[size]["height"]
    expect(screen.get_by_test_id("join-code")).to_have_text(code)
    phones = []
    for nickname in ("Ada", "Grace"):
        phone = new_context(phone=True).new_page()
        join(phone, code, nickname)
        phones.append(phone)
    expect(screen.locator("#players li")).to_have_count(2)

    # Lobby: the way in is big; no host navigation or moderation is projected.
    qr = box(screen, "#qr")
    assert qr["height"] >= 0.35 * height
    assert small_text(screen, "#stage", legible(screen)) == []
    expect(screen.locator(".topbar")).to_be_hidden()
    expect(screen.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    dock = box(screen, "#dock")
    assert dock["height"] <= 0.08 * height
    shoot(screen, f"screen-lobby-{size}")

    screen.get_by_role("button", name="Start the game").click()
    expect(screen.locator("#tiles .tile")).to_have_count(6)
    tiles = box(screen, "#tiles")
    question = box(screen, "#q-text")
    # The question and the tiles fill the screen: tiles take most of it, edge to edge.
    assert tiles["width"] >= 0.85 * width
    assert tiles["height"] >= 0.5 * height
    assert tiles["y"] + tiles["height"] >= 0.8 * height
    assert question["y"] < tiles["y"]
    assert small_text(screen, "#stage", legible(screen)) == []
    assert broken_words(screen, "#tiles .text") == []
    countdown = screen.locator("#timer .timer-count")
    assert float(countdown.evaluate("(el) => parseFloat(getComputedStyle(el).fontSize)")) >= (
        0.06 * height
    )
    phones[0].locator("#choices .choice").nth(0).click()
    phones[0].get_by_role("button", name="Lock in my answer").click()
    expect(screen.get_by_test_id("answered")).to_have_text("1 of 2 answered")
    shoot(screen, f"screen-question-{size}")

    screen.get_by_role("button", name="Skip to the answer").click()
    expect(screen.locator("#tiles .tile.is-correct")).to_have_count(4)
    assert small_text(screen, "#stage", legible(screen)) == []
    # The counts and ticks take room from the answers: a word never splits across lines for it.
    assert broken_words(screen, "#tiles .text") == []
    shoot(screen, f"screen-reveal-{size}")
    screen.get_by_role("button", name="Show the leaderboard").click()
    expect(screen.get_by_test_id("board").locator("li")).to_have_count(2)
    assert small_text(screen, "#stage", legible(screen)) == []
    shoot(screen, f"screen-leaderboard-{size}")


def test_answers_too_long_for_their_tiles_shrink_together_and_stay_inside_them(
    host_page: Page,
    new_context: Callable[..., BrowserContext],
    shoot: Callable[[Page, str], Any],
) -> None:
    host = host_page
    words = ["Kilimanjaro", "Ouagadougou", "Tegucigalpa", "Antananarivo", "Nouakchott"]
    longest = "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch"
    sentence = "The city of a hundred spires and a thousand bridges"
    quiz = {
        "title": "Long words",
        "settings": {"get_ready_seconds": 0},
        "questions": [
            {
                "kind": "single",
                "text": "Which of these is a capital city?",
                "choices": [{"text": t} for t in [*words[:4], sentence, longest]],
                "correct": [1],
                "time_limit_seconds": 120,
                "read_seconds": 0,
            }
        ],
    }
    api(host, "POST", "/api/quizzes", quiz)
    code = launch_game(host, "Long words")
    screen = screen_at(new_context, host, SCREENS["1280x720"])
    join(new_context(phone=True).new_page(), code, "Ada")
    expect(screen.locator("#players li")).to_have_count(1)
    screen.get_by_role("button", name="Start the game").click()
    expect(screen.locator("#tiles .tile")).to_have_count(6)
    sizes = screen.locator("#tiles .tile .text").evaluate_all(
        "(els) => els.map((el) => parseFloat(getComputedStyle(el).fontSize))"
    )
    # One size for all answers, smaller than the tiles' own to make room for the longest word
    # that can fit, and not dragged down to the minimum by the one that cannot.
    assert len(set(sizes)) == 1, sizes
    assert legible(screen) < sizes[0] < 0.055 * 720
    spill = screen.locator("#tiles .tile").evaluate_all(
        "(els) => els.filter((el) => el.scrollWidth > el.clientWidth + 1"
        " || el.scrollHeight > el.clientHeight + 1).map((el) => el.textContent)"
    )
    assert spill == []
    # Only the word longer than a tile even at the legible minimum is broken.
    assert broken_words(screen, "#tiles .text") == [
        f"{longest} on {screen.evaluate(LINES, longest)} lines"
    ]
    shoot(screen, "screen-long-answers-1280x720")


LINES = """(word) => {
    const el = [...document.querySelectorAll("#tiles .text")].find((e) => e.textContent === word);
    const range = document.createRange();
    range.selectNodeContents(el);
    return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
}"""


def _play_to_podium(host: Page, phones: list[Page], answers: list[list[int]]) -> None:
    """Answer every question (``answers[q][player]`` is the choice) and go to the podium."""
    for index, picks in enumerate(answers):
        for phone, pick in zip(phones, picks, strict=True):
            phone.locator("#choices .choice").nth(pick).click()
        expect(host.get_by_role("button", name="Show the leaderboard")).to_be_visible()
        host.get_by_role("button", name="Show the leaderboard").click()
        last = index == len(answers) - 1
        host.get_by_role("button", name="Show the podium" if last else "Next question").click()


def test_get_ready_then_read_then_answer_and_a_podium_in_suspense(
    host_page: Page, new_context: Callable[..., BrowserContext], shoot: Callable[[Page, str], Any]
) -> None:
    host = host_page
    quiz = {
        "title": "Suspense",
        "settings": {"get_ready_seconds": 2, "streak_bonus": True},
        "questions": [
            {
                "text": f"Question {i + 1}: pick Yes",
                "choices": [{"text": "Yes"}, {"text": "No"}],
                "correct": [0],
                "time_limit_seconds": 60,
                "read_seconds": 2 if i == 0 else 0,
            }
            for i in range(2)
        ],
    }
    api(host, "POST", "/api/quizzes", quiz)
    code = launch_game(host, "Suspense")
    phones = []
    for nickname in ("Ann", "Bea", "Cy"):
        phone = new_context(phone=True).new_page()
        join(phone, code, nickname)
        phones.append(phone)
    host.get_by_role("button", name="Start the game").click()

    # Get ready, then the question to read, then the answers: on the screen and the phones.
    expect(host.get_by_role("heading", name="Get ready!")).to_be_visible()
    expect(phones[0].get_by_role("heading", name="Get ready!")).to_be_visible()
    expect(phones[0].locator("#choices")).to_have_count(0)
    expect(host.locator(".reading #q-text")).to_have_text("Question 1: pick Yes")
    expect(phones[0].locator("#upcoming")).to_contain_text("Answers open in")
    expect(phones[0].locator("#choices")).to_have_count(0)
    shoot(phones[0], "phone-read-the-question")
    expect(host.locator("#tiles .tile")).to_have_count(2)
    expect(phones[0].locator("#choices .choice")).to_have_count(2)

    _play_to_podium(host, phones, [[0, 0, 1], [0, 1, 1]])
    podium = host.get_by_test_id("podium")
    expect(podium.locator("li")).to_have_count(3)
    delays = {
        place: float(
            podium.locator(f".{place}").evaluate(
                "(el) => parseFloat(getComputedStyle(el).animationDelay)"
            )
        )
        for place in ("p1", "p2", "p3")
    }
    # Third place rises first, then second, then the winner.
    assert delays["p3"] < delays["p2"] < delays["p1"]
    expect(podium.locator(".p1 .name")).to_have_text("Ann")
    expect(podium.locator(".p1")).to_have_css("opacity", "1")
    expect(host.locator("#conn")).to_be_hidden()
    shoot(host, "screen-podium-suspense")
    expect(phones[0].get_by_test_id("final-standing")).to_contain_text("You finished 1st")


def test_a_phone_reloaded_during_get_ready_gets_ready_with_the_others(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    quiz = {
        "title": "Reload",
        "settings": {"get_ready_seconds": 8},
        "questions": [
            {
                "text": "Only question: pick Yes",
                "choices": [{"text": "Yes"}, {"text": "No"}],
                "correct": [0],
                "time_limit_seconds": 60,
            }
        ],
    }
    api(host, "POST", "/api/quizzes", quiz)
    code = launch_game(host, "Reload")
    phone = new_context(phone=True).new_page()
    join(phone, code, "Ann")
    host.get_by_role("button", name="Start the game").click()
    expect(phone.get_by_role("heading", name="Get ready!")).to_be_visible()
    phone.reload()
    # Back in the game with "get ready" still counting, the question not yet on it.
    expect(phone.get_by_role("heading", name="Get ready!")).to_be_visible()
    expect(phone.locator("#q-text")).to_have_count(0)
    expect(phone.locator("#choices")).to_have_count(0)
    expect(host.get_by_role("heading", name="Get ready!")).to_be_visible()
    expect(phone.locator("#choices .choice")).to_have_count(2, timeout=15_000)
    expect(phone.locator("#q-text")).to_have_text("Only question: pick Yes")


def test_streaks_are_shown_on_the_big_screen(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    quiz = {
        "title": "Streaks",
        "settings": {"get_ready_seconds": 0, "streak_bonus": True},
        "questions": [
            {
                "text": f"Q{i}",
                "choices": [{"text": "Yes"}, {"text": "No"}],
                "correct": [0],
                "time_limit_seconds": 60,
                "read_seconds": 0,
            }
            for i in range(3)
        ],
    }
    api(host, "POST", "/api/quizzes", quiz)
    code = launch_game(host, "Streaks")
    ann, bob = (new_context(phone=True).new_page() for _ in range(2))
    join(ann, code, "Ann")
    join(bob, code, "Bob")
    host.get_by_role("button", name="Start the game").click()
    for index in range(2):
        ann.locator("#choices .choice").nth(0).click()
        bob.locator("#choices .choice").nth(1).click()
        host.get_by_role("button", name="Show the leaderboard").click()
        if index == 0:
            expect(host.get_by_test_id("streak")).to_have_count(0)
            host.get_by_role("button", name="Next question").click()
    board = host.get_by_test_id("board")
    expect(board.locator("li").first).to_contain_text("Ann")
    expect(board.get_by_test_id("streak")).to_have_text("🔥 2 in a row")
    # The bonus is paid: two answers earn at most 2 x 1000 without it, and 100 more with it.
    score = int(board.locator("li").first.locator(".score").inner_text().replace(",", ""))
    assert 2000 < score <= 2100


def test_a_double_click_on_show_the_leaderboard_does_not_skip_it(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", _quiz("Twice"))
    code = launch_game(host, "Twice")
    phone = new_context(phone=True).new_page()
    join(phone, code, "Solo")
    host.get_by_role("button", name="Start the game").click()
    host.get_by_role("button", name="Skip to the answer").click()
    host.get_by_role("button", name="Show the leaderboard").dblclick()
    # The second press was refused (and said so); the leaderboard stays.
    expect(host.locator("#screen-status")).to_have_text(
        "The game had already moved on; that press was ignored."
    )
    expect(host.get_by_role("heading", name="Leaderboard")).to_be_visible()
    expect(phone.get_by_role("heading", name="Leaderboard")).to_be_visible()
    expect(host.get_by_role("button", name="Next question")).to_be_visible()


def test_the_host_removes_and_locks_from_the_remote_in_every_phase(
    host_page: Page, new_context: Callable[..., BrowserContext], shoot: Callable[[Page, str], Any]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", _quiz("Moderate"))
    code = launch_game(host, "Moderate")
    phones = {}
    for nickname in ("Kind", "Rude", "Loud"):
        phones[nickname] = new_context(phone=True).new_page()
        join(phones[nickname], code, nickname)
    remote = open_remote(host, new_context)
    expect(remote.locator("#remote-players li")).to_have_count(3)
    # Keyboard hosts reach the main action before any Remove button.
    order = remote.evaluate(
        """() => [...document.querySelectorAll("button, a[href]")]
              .filter((el) => !el.disabled && el.offsetParent !== null)
              .map((el) => el.id || el.textContent.trim())"""
    )
    assert order.index("remote-primary") < min(
        i for i, name in enumerate(order) if name == "Remove"
    )

    remote.get_by_role("button", name="Start the game").click()
    expect(phones["Kind"].locator("#choices .choice").first).to_be_visible()
    remote.get_by_role("button", name="Lock joining").click()
    expect(remote.get_by_role("button", name="Unlock joining")).to_be_visible()
    late = new_context(phone=True).new_page()
    late.goto(f"/join/{code}")
    late.get_by_label("Your nickname").fill("Late")
    late.get_by_role("button", name="Join").click()
    expect(late.locator("#join-error")).to_have_text("The host has locked joining for this game.")
    shoot(remote, "remote-question")
    remote.once("dialog", lambda dialog: dialog.accept())
    remote.get_by_role("button", name="Remove Rude").click()
    expect(
        phones["Rude"].get_by_role("heading", name="You were removed from the game")
    ).to_be_visible()

    remote.get_by_role("button", name="Skip to the answer").click()
    expect(host.get_by_test_id("distribution")).to_be_visible()
    remote.once("dialog", lambda dialog: dialog.accept())
    remote.get_by_role("button", name="Remove Loud").click()
    expect(
        phones["Loud"].get_by_role("heading", name="You were removed from the game")
    ).to_be_visible()
    expect(remote.locator("#remote-players li")).to_have_count(1)
    # Nothing of the moderation reaches the big screen.
    expect(host.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)


def test_a_phone_that_comes_back_by_typing_the_code_keeps_its_score(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", _quiz("Back"))
    code = launch_game(host, "Back")
    context = new_context(phone=True)
    phone = context.new_page()
    join(phone, code, "Zoë")
    host.get_by_role("button", name="Start the game").click()
    for i in range(4):
        phone.locator("#choices .choice").nth(i).click()
    phone.get_by_role("button", name="Lock in my answer").click()
    expect(phone.get_by_role("heading", name="Correct!")).to_be_visible()
    score = phone.locator("#me-score").inner_text()
    assert score != "0"

    # The page forgets the game (a cleared tab, a different browser window on this phone):
    # the device stays the same, and so does the player.
    phone.evaluate(f"window.localStorage.removeItem('partyquiz.player.{code}')")
    phone.goto("/")
    phone.get_by_label("Game code").fill(code)
    phone.get_by_role("button", name="Continue").click()
    phone.get_by_label("Your nickname").fill("zoë")
    phone.get_by_role("button", name="Join").click()
    expect(phone.locator("#me-score")).to_have_text(score)
    expect(phone.get_by_role("heading", name="Correct!")).to_be_visible()

    other = new_context(phone=True).new_page()
    other.goto(f"/join/{code}")
    other.get_by_label("Your nickname").fill("Zoë")
    other.get_by_role("button", name="Join").click()
    expect(other.locator("#join-nickname-error")).to_contain_text("already has that nickname")


def test_nicknames_can_be_suggested_and_a_too_long_one_is_explained(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", _quiz("Names"))
    code = launch_game(host, "Names")
    phone = new_context(phone=True).new_page()
    phone.goto(f"/join/{code}")
    field = phone.get_by_label("Your nickname")
    phone.get_by_role("button", name="Suggest a name").click()
    expect(field).to_have_value(re.compile(r"^[A-Z][a-z]+ [A-Z][a-z]+$"))
    expect(phone.get_by_role("button", name="Suggest a name")).to_be_enabled()
    first = field.input_value()
    phone.get_by_role("button", name="Suggest a name").click()
    expect(field).not_to_have_value(first)
    expect(phone.get_by_role("button", name="Suggest a name")).to_be_enabled()

    field.fill("A" * 25)
    expect(field).to_have_value("A" * 25)  # nothing cut without a word
    phone.get_by_role("button", name="Join").click()
    expect(phone.locator("#join-nickname-error")).to_have_text(
        "That nickname is 25 characters long; the limit is 20. Shorten it a little."
    )
    expect(host.get_by_test_id("player-count")).to_have_text("0")

    suggested = phone.get_by_role("button", name="Suggest a name")
    suggested.click()
    expect(suggested).to_be_enabled()
    name = field.input_value()
    phone.get_by_role("button", name="Join").click()
    expect(phone.get_by_test_id("lobby-nickname")).to_have_text(name)
    expect(host.locator("#players li")).to_have_text([name])


def test_a_name_the_server_refuses_shows_the_servers_reason(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", _quiz("Refused"))
    code = launch_game(host, "Refused")
    phone = new_context(phone=True).new_page()
    refusals: list[str] = []

    def on_socket(socket: Any) -> None:
        def record(payload: str | bytes) -> None:
            text = payload.decode() if isinstance(payload, bytes) else payload
            if '"type":"error"' in text.replace(" ", ""):
                refusals.append(text)

        socket.on("framereceived", record)

    phone.on("websocket", on_socket)
    phone.goto(f"/join/{code}")
    phone.get_by_label("Your nickname").fill("Bo\u200bb")  # an invisible character inside
    phone.get_by_role("button", name="Join").click()
    error = phone.locator("#join-nickname-error")
    expect(error).not_to_be_empty()
    assert refusals, "the server said nothing"
    message = re.search(r'"message":\s*"([^"]+)"', refusals[-1])
    assert message is not None
    expect(error).to_have_text(message.group(1))


def test_a_listed_word_is_refused_next_to_the_nickname_and_another_name_joins(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", _quiz("Words"))
    code = launch_game(host, "Words")
    phone = new_context(phone=True).new_page()
    phone.goto(f"/join/{code}")
    phone.get_by_label("Your nickname").fill("Grumpy Cat")
    phone.get_by_role("button", name="Join").click()
    expect(phone.locator("#join-nickname-error")).to_contain_text("not allow")
    expect(phone.locator("#join-error")).to_be_empty()
    phone.get_by_label("Your nickname").fill("Happy Cat")
    phone.get_by_role("button", name="Join").click()
    expect(phone.get_by_test_id("lobby-nickname")).to_have_text("Happy Cat")
    expect(host.locator("#players li")).to_have_text(["Happy Cat"])


def test_the_final_standing_survives_a_reload_after_the_game(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    quiz = _quiz("Final")
    quiz["questions"] = quiz["questions"][1:]
    api(host, "POST", "/api/quizzes", quiz)
    code = launch_game(host, "Final")
    phone = new_context(phone=True).new_page()
    join(phone, code, "Kim")
    host.get_by_role("button", name="Start the game").click()
    phone.locator("#choices .choice").nth(1).click()
    host.get_by_role("button", name="Show the leaderboard").click()
    host.get_by_role("button", name="Show the podium").click()
    host.get_by_role("button", name="Finish the game").click()
    expect(phone.get_by_role("heading", name="Game over")).to_be_visible()
    phone.reload()
    expect(phone.get_by_test_id("final-standing")).to_contain_text("Kim, you finished 1st")
    expect(phone.get_by_role("link", name="Join another game")).to_be_visible()


def test_sound_can_be_muted_and_stays_off_when_the_system_asks_for_less_motion(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    expect_sound = host.locator("body")
    api(host, "POST", "/api/quizzes", _quiz("Sound"))
    launch_game(host, "Sound")
    expect(expect_sound).to_have_attribute("data-sound", "on")
    host.get_by_role("button", name="Mute").click()
    expect(expect_sound).to_have_attribute("data-sound", "muted")
    expect(host.get_by_role("button", name="Sound on")).to_have_attribute("aria-pressed", "true")
    host.get_by_role("button", name="Sound on").click()
    expect(expect_sound).to_have_attribute("data-sound", "on")

    calm = new_context(reduced_motion="reduce")
    screen = calm.new_page()
    screen.goto("/")
    screen.evaluate(f"window.localStorage.setItem({TOKEN_KEY!r}, {host_token(host)!r})")
    screen.goto(host.url)
    expect(screen.get_by_test_id("join-code")).to_be_visible()
    expect(screen.locator("body")).to_have_attribute("data-sound", "off-reduced-motion")
    expect(screen.get_by_role("button", name="Sound on")).to_be_visible()


def test_the_editor_asks_before_unsaved_changes_are_lost(host_page: Page) -> None:
    page = host_page
    page.get_by_role("link", name="New quiz").click()
    page.locator("#f-title").fill("Half done")
    page.locator("#f-questions-0-kind").select_option("poll")
    # A poll shows no points to choose: it scores nothing.
    expect(page.locator("#f-questions-0-points")).to_have_count(0)
    expect(page.get_by_text("A poll scores no points.")).to_be_visible()
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("link", name="← Back to your quizzes").click()
    assert asked == ["You have unsaved changes. Leave without saving them?"]
    expect(page.locator("#f-title")).to_have_value("Half done")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name="← Back to your quizzes").click()
    expect(page.get_by_role("heading", name="Your quizzes")).to_be_visible()


def test_every_page_has_an_icon(host_page: Page) -> None:
    icon = host_page.request.get("/favicon.ico")
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    for path in ("/", "/join", "/host"):
        host_page.goto(path)
        assert host_page.locator('link[rel="icon"]').get_attribute("href") == "/static/favicon.svg"


def test_players_are_told_when_the_hosts_screen_drops_and_comes_back(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", _quiz("Dropped"))
    launch_game(host, "Dropped")
    screen_url, token = host.url, host_token(host)
    phone = new_context(phone=True).new_page()
    join(phone, host.get_by_test_id("join-code").inner_text(), "Pat")
    expect(phone.get_by_test_id("host-status")).to_be_hidden()

    host.close()  # the laptop's lid, the projector's cable
    expect(phone.get_by_test_id("host-status")).to_have_text(
        "The host's screen lost its connection. Stay here: the game goes on when it is back."
    )
    back = new_context().new_page()
    back.goto("/")
    back.evaluate(f"window.localStorage.setItem({TOKEN_KEY!r}, {token!r})")
    back.goto(screen_url)
    expect(back.get_by_test_id("player-count")).to_have_text("1")
    expect(phone.get_by_test_id("host-status")).to_be_hidden()
    back.get_by_role("button", name="Start the game").click()
    expect(phone.locator("#choices .choice")).to_have_count(6)


def test_an_answer_sent_offline_after_the_deadline_says_it_did_not_count(
    host_page: Page, new_context: Callable[..., BrowserContext], stack: Stack
) -> None:
    host = host_page
    quiz = _quiz("Offline")
    quiz["questions"] = [{**quiz["questions"][1], "time_limit_seconds": 5}]
    api(host, "POST", "/api/quizzes", quiz)
    code = launch_game(host, "Offline")
    phone = new_context(phone=True).new_page()
    join(phone, code, "Tunnel")
    host.get_by_role("button", name="Start the game").click()
    expect(phone.locator("#choices .choice")).to_have_count(4)
    stack.network.cut()  # into the tunnel
    try:
        expect(phone.locator("#conn")).to_contain_text("Reconnecting")
        phone.locator("#choices .choice").nth(1).click()
        expect(phone.get_by_test_id("receipt")).to_contain_text("Offline")
        # The question closes on the server at its deadline, with the phone still away.
        expect(phone.locator(".timer-count")).to_have_text("0", timeout=30_000)
    finally:
        stack.network.heal()
    # Reconnecting backs off up to 10 s between tries, so the note may take that long.
    expect(phone.locator("#lost-answer")).to_have_text(
        "Your answer to question 1 did not reach the game before time was up, so it did not count.",
        timeout=30_000,
    )
    expect(phone.get_by_role("heading", name="No answer")).to_be_visible()
    # Both the phone and the big screen were cut off: once both are back, nobody is warned.
    expect(host.locator("#conn")).to_be_hidden(timeout=30_000)
    expect(phone.get_by_test_id("host-status")).to_be_hidden()


def test_a_slow_phone_and_a_slow_tv_show_the_answers_of_every_question_as_it_opens(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    questions = [
        {**_quiz("")["questions"][1], "text": f"Question {n}: which one is the capital of France?"}
        for n in range(1, 7)
    ]
    api(host, "POST", "/api/quizzes", {**_quiz("Slow devices"), "questions": questions})
    code = launch_game(host, "Slow devices")
    phone = new_context(phone=True).new_page()
    # A low-end phone and a TV's browser: their pages run six times slower (Chromium's own
    # throttling), so the time between deciding what to draw and the drawing being done is long.
    for page in (host, phone):
        page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": 6})
    join(phone, code, "Budget")
    host.get_by_role("button", name="Start the game").click()
    for n in range(1, 7):
        expect(host.get_by_test_id("answered")).to_be_visible()
        expect(phone.locator("#choices .choice")).to_have_count(4)
        phone.locator("#choices .choice").nth(1).click()
        expect(phone.get_by_role("heading", name="Correct")).to_be_visible()
        host.get_by_role("button", name="Show the leaderboard").click()
        if n < 6:
            host.get_by_role("button", name="Next question").click()


class FlakyLine:
    """The phone's own line to the game service, routed through the browser: it can go dead
    while the rest of the room stays connected, and it can hold the phone's answers back."""

    def __init__(self, page: Page) -> None:
        self.dead = False
        self.holding = False
        self._held: list[str | bytes] = []
        self._line: WebSocketRoute | None = None
        page.route_web_socket(re.compile(r"/ws$"), self._connect)

    def _connect(self, line: WebSocketRoute) -> None:
        self._line = line
        if self.dead:
            return  # the page waits for a welcome that never comes: it is reconnecting
        server = line.connect_to_server()

        def to_server(message: str | bytes) -> None:
            if self.holding and _frame_type(message) == "answer":
                self._held.append(message)
            else:
                server.send(message)

        def to_page(message: str | bytes) -> None:
            line.send(message)
            if self._held and _frame_type(message) == "reveal":
                for held in self._held:  # late by a hair: it reaches the game after the reveal
                    server.send(held)
                self._held.clear()

        line.on_message(to_server)
        server.on_message(to_page)

    def go_dead(self) -> None:
        self.dead = True
        assert self._line is not None
        self._line.close(code=1012)  # "restarting": the page tries again at once, into nothing

    def come_back(self) -> None:
        self.dead = False
        assert self._line is not None
        self._line.close(code=1012)


def _frame_type(message: str | bytes) -> Any:
    return json.loads(message).get("type")


def test_an_offline_answer_that_arrives_after_the_host_skipped_says_so_on_the_reveal(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    quiz = _quiz("Just missed")
    quiz["questions"] = [quiz["questions"][1]]
    api(host, "POST", "/api/quizzes", quiz)
    code = launch_game(host, "Just missed")
    phone = new_context(phone=True).new_page()
    line = FlakyLine(phone)
    join(phone, code, "Subway")
    host.get_by_role("button", name="Start the game").click()
    expect(phone.locator("#choices .choice")).to_have_count(4)

    line.go_dead()
    expect(phone.locator("#conn")).to_contain_text("Reconnecting")
    phone.locator("#choices .choice").nth(1).click()
    expect(phone.get_by_test_id("receipt")).to_contain_text("Offline")
    # Back in signal, the phone sends its answer again; it is still on its way when the host
    # skips to the answer, so the game refuses it after the reveal has gone out.
    line.holding = True
    line.come_back()
    expect(phone.locator("#conn")).to_be_hidden()
    host.get_by_role("button", name="Skip to the answer").click()

    expect(phone.get_by_role("heading", name="No answer")).to_be_visible()
    expect(phone.locator("#lost-answer")).to_have_text(
        "Your answer to question 1 did not reach the game before time was up, so it did not count."
    )


def test_a_new_host_starts_from_the_sample_library(fresh_host_page: Page) -> None:
    page = fresh_host_page
    expect(page.locator("#quiz-list")).to_contain_text("start with a sample quiz below")
    samples = page.locator("#sample-list > li")
    expect(samples).to_have_count(3)
    title = samples.first.locator(".title").inner_text()
    samples.first.get_by_role("button", name="Add to my quizzes").click()
    expect(page.locator("#list-done")).to_have_text(f"Added “{title}” to your quizzes.")
    expect(page.locator("#quiz-list > li").filter(has_text=title)).to_have_count(1)
    page.locator("#quiz-list > li").filter(has_text=title).get_by_role(
        "button", name="Play"
    ).click()
    expect(page.get_by_test_id("join-code")).to_have_text(re.compile(r"^[A-Z0-9]{6}$"))


def test_a_host_imports_a_kahoot_spreadsheet_and_sees_bad_rows_by_number(
    host_page: Page, tmp_path: Any
) -> None:
    from openpyxl import Workbook

    page = host_page

    def sheet(name: str, rows: list[list[Any]]) -> str:
        book = Workbook()
        book.active.append(
            [
                "",
                "Question",
                "Answer 1",
                "Answer 2",
                "Answer 3",
                "Answer 4",
                "Time limit (sec)",
                "Correct answer(s)",
            ]
        )
        for row in rows:
            book.active.append(["", *row])
        path = tmp_path / name
        book.save(path)
        return str(path)

    bad = sheet("Broken.xlsx", [["Q1?", "A", "B", None, None, 20, 5]])
    page.locator("#import-kahoot").set_input_files(bad)
    expect(page.locator("#import-errors")).to_contain_text(
        "row 2: correct answer 5 is not one of the filled-in answers"
    )
    good = sheet("Friday quiz.xlsx", [["Q1?", "A", "B", None, None, 20, 2]])
    page.locator("#import-kahoot").set_input_files(good)
    expect(page.locator("#list-done")).to_have_text("Imported “Friday quiz” with 1 question.")
    expect(page.locator("#quiz-list > li").filter(has_text="Friday quiz")).to_have_count(1)


def test_an_info_slide_is_shown_between_questions_and_takes_no_answers(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    quiz = _quiz("Slides")
    quiz["questions"] = [
        {"kind": "info", "text": "Round 1: the solar system", "time_limit_seconds": 60},
        quiz["questions"][1],
    ]
    api(host, "POST", "/api/quizzes", quiz)
    code = launch_game(host, "Slides")
    phone = new_context(phone=True).new_page()
    join(phone, code, "Ida")
    host.get_by_role("button", name="Start the game").click()
    expect(host.locator(".info-slide #q-text")).to_have_text("Round 1: the solar system")
    expect(phone.locator("#q-text")).to_have_text("Round 1: the solar system")
    expect(phone.get_by_text("Look at the big screen")).to_be_visible()
    expect(phone.locator("#choices")).to_have_count(0)
    assert small_text(host, "#stage", legible(host)) == []
    host.get_by_role("button", name="Continue").click()
    expect(phone.locator("#choices .choice")).to_have_count(4)
    expect(host.locator("#tiles .tile")).to_have_count(4)


def test_the_editor_makes_an_info_slide_without_answers(host_page: Page) -> None:
    page = host_page
    page.get_by_role("link", name="New quiz").click()
    page.locator("#f-title").fill("With a slide")
    page.locator("#f-questions-0-kind").select_option("info")
    expect(page.get_by_role("group", name="Answers of question 1")).to_have_count(0)
    page.get_by_label("Slide text").fill("Welcome, everyone!")
    page.get_by_role("button", name="Save quiz").click()
    expect(page.locator("#form-status")).to_contain_text("Saved")
    quiz_id = page.url.rsplit("/", 1)[-1]
    quiz = api(page, "GET", f"/api/quizzes/{quiz_id}")["quiz"]
    assert quiz["questions"][0]["kind"] == "info"
    assert quiz["questions"][0]["choices"] == []
