"""The phone page: keyboard answering, join errors, reconnecting after a network drop, pause,
kick; and the big screen's QR code."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import segno
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.flows import FrameLog, api, choice, join, launch_game, open_remote
from tests.browser.stack import Stack

QUIZ = {
    "title": "Keys",
    "settings": {"get_ready_seconds": 0},
    "questions": [
        {
            "kind": "single",
            "text": "Pick the third",
            "choices": [{"text": "One"}, {"text": "Two"}, {"text": "Three"}, {"text": "Four"}],
            "correct": [2],
            "time_limit_seconds": 120,
            "read_seconds": 0,
        },
        {
            "kind": "single",
            "text": "Pick the second",
            "choices": [{"text": "A"}, {"text": "B"}, {"text": "C"}],
            "correct": [1],
            "time_limit_seconds": 120,
            "read_seconds": 0,
        },
    ],
}


def _game(host: Page, new_context: Callable[..., BrowserContext], *nicknames: str) -> list[Page]:
    api(host, "POST", "/api/quizzes", QUIZ)
    code = launch_game(host, "Keys")
    phones = []
    for nickname in nicknames:
        phone = new_context(phone=True).new_page()
        join(phone, code, nickname)
        phones.append(phone)
    expect(host.get_by_test_id("player-count")).to_have_text(str(len(nicknames)))
    return phones


def test_a_player_answers_with_number_keys_and_arrow_keys(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    (phone,) = _game(host, new_context, "Keys")
    frames = FrameLog()
    frames.attach(phone)
    phone.reload()  # attach to the page's socket: the reload resumes the player
    expect(phone.get_by_role("heading", name="You're in!")).to_be_visible()

    host.get_by_role("button", name="Start the game").click()
    expect(phone.locator("#q-text")).to_have_text("Pick the third")
    expect(choice(phone, "One")).to_be_focused()
    phone.keyboard.press("ArrowDown")
    phone.keyboard.press("ArrowDown")
    expect(choice(phone, "Three")).to_be_focused()
    phone.keyboard.press("Enter")
    expect(phone.get_by_role("heading", name="Correct!")).to_be_visible()
    assert frames.of_type("answer_receipt")[-1]["choices"] == [2]

    host.get_by_role("button", name="Show the leaderboard").click()
    host.get_by_role("button", name="Next question").click()
    expect(phone.locator("#q-text")).to_have_text("Pick the second")
    phone.keyboard.press("2")
    expect(phone.get_by_role("heading", name="Correct!")).to_be_visible()
    assert frames.of_type("answer_receipt")[-1]["choices"] == [1]


def test_join_errors_are_shown_next_to_the_field_they_concern(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    (first,) = _game(host_page, new_context, "Ada")
    code = host_page.get_by_test_id("join-code").inner_text()
    phone = new_context(phone=True).new_page()
    phone.goto(f"/join/{code}")
    phone.get_by_label("Your nickname").fill("ada")
    phone.get_by_role("button", name="Join").click()
    expect(phone.locator("#join-nickname-error")).to_contain_text("already has that nickname")
    expect(phone.get_by_label("Your nickname")).to_be_focused()
    expect(phone.get_by_label("Your nickname")).to_have_attribute("aria-invalid", "true")

    phone.goto("/join/ZZZZ99")
    phone.get_by_label("Your nickname").fill("Bob")
    phone.get_by_role("button", name="Join").click()
    expect(phone.locator("#join-code-error")).to_contain_text("No open game has this code")
    expect(first.get_by_role("heading", name="You're in!")).to_be_visible()


def test_a_dropped_connection_shows_reconnecting_and_resumes_with_the_score(
    host_page: Page, new_context: Callable[..., BrowserContext], stack: Stack
) -> None:
    host = host_page
    (phone,) = _game(host, new_context, "Wanda")
    host.get_by_role("button", name="Start the game").click()
    choice(phone, "Three").click()
    expect(phone.get_by_test_id("result-score")).to_be_visible()
    score = phone.locator("#me-score").inner_text()
    assert score != "0"

    stack.network.cut()
    try:
        expect(phone.locator("#conn")).to_contain_text("Reconnecting")
        expect(phone.locator("#conn")).to_be_visible()
        expect(host.locator("#conn")).to_contain_text("Reconnecting")
    finally:
        stack.network.heal()
    # The big screen comes back too, and the game goes on.
    expect(host.locator("#conn")).to_be_hidden(timeout=30_000)
    host.get_by_role("button", name="Show the leaderboard").click()
    expect(phone.locator("#conn")).to_be_hidden(timeout=30_000)
    expect(phone.get_by_role("heading", name="Leaderboard")).to_be_visible()
    expect(phone.locator("#me-score")).to_have_text(score)


def test_kick_removes_the_player_and_pause_freezes_answers(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    stay, leave = _game(host, new_context, "Stay", "Leave")
    remote = open_remote(host, new_context)
    remote.once("dialog", lambda dialog: dialog.accept())
    remote.get_by_role("button", name="Remove Leave").click()
    expect(leave.get_by_role("heading", name="You were removed from the game")).to_be_visible()
    expect(host.get_by_test_id("player-count")).to_have_text("1")
    code = host.get_by_test_id("join-code").inner_text()
    leave.goto(f"/join/{code}")
    leave.get_by_label("Your nickname").fill("Back again")
    leave.get_by_role("button", name="Join").click()
    expect(leave.locator("#join-error")).to_contain_text("The host removed you")

    host.get_by_role("button", name="Start the game").click()
    expect(stay.locator("#q-text")).to_be_visible()
    host.get_by_role("button", name="Pause").click()
    expect(stay.get_by_text("Paused by the host.")).to_be_visible()
    expect(choice(stay, "One")).to_be_disabled()
    assert re.fullmatch(r"\d+", stay.locator(".timer-count").inner_text())
    host.get_by_role("button", name="Resume").click()
    expect(choice(stay, "One")).to_be_enabled()

    host.reload()  # a reloaded big screen comes back to the running question
    expect(host.locator(".q-text")).to_have_text("Pick the third")
    host.get_by_role("button", name="Skip to the answer").click()
    expect(stay.get_by_role("heading", name="No answer")).to_be_visible()


def test_a_phone_with_a_wrong_clock_counts_down_from_the_servers_deadline(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", QUIZ)
    code = launch_game(host, "Keys")
    context = new_context(phone=True)
    # This phone's clock is an hour fast; its countdown must not care.
    context.add_init_script("""{
        const realNow = Date.now;
        Date.now = () => realNow() + 3600 * 1000;
    }""")
    phone = context.new_page()
    join(phone, code, "Skewed")
    host.get_by_role("button", name="Start the game").click()
    expect(phone.locator("#q-text")).to_have_text("Pick the third")
    shown = int(phone.locator(".timer-count").inner_text())
    assert 100 <= shown <= 120
    choice(phone, "Three").click()
    expect(phone.get_by_role("heading", name="Correct!")).to_be_visible()


# A clock that can be set back once the page has estimated the server's clock from it; and a
# record of every heading and countdown line the page ever drew.
LAGGING_CLOCK = """{
    const realNow = Date.now;
    window.lagMs = 0;
    Date.now = () => realNow() - window.lagMs;
    window.drawn = new Set();
    document.addEventListener("DOMContentLoaded", () => {
        new MutationObserver(() => {
            for (const el of document.querySelectorAll("h1, #upcoming, .read-note")) {
                window.drawn.add(el.textContent);
            }
        }).observe(document.body, { childList: true, subtree: true, characterData: true });
    });
}"""


def _await_pong(page: Page, frames: FrameLog) -> None:
    """Wait until the page's first ping came back: its estimate of the server's clock is set."""
    for _ in range(250):
        if frames.of_type("pong"):
            return
        page.wait_for_timeout(20)
    raise AssertionError("no pong came back")


def test_pages_whose_clock_estimate_lags_show_a_question_sent_open_at_once(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", QUIZ)
    host.context.add_init_script(LAGGING_CLOCK)
    screen_frames = FrameLog()
    screen_frames.attach(host)
    code = launch_game(host, "Keys")
    context = new_context(phone=True)
    context.add_init_script(LAGGING_CLOCK)
    phone = context.new_page()
    phone_frames = FrameLog()
    phone_frames.attach(phone)
    join(phone, code, "Behind")
    _await_pong(host, screen_frames)
    _await_pong(phone, phone_frames)
    # Both pages now take the server's clock to be 3 s earlier than it is, as a page whose
    # estimate lags does for a few ms. The question has no get-ready and no reading time: the
    # server sent it open, so no page counts down to it.
    for page in (host, phone):
        page.evaluate("window.lagMs = 3000")
    host.get_by_role("button", name="Start the game").click()
    expect(choice(phone, "Three")).to_be_visible()
    expect(host.locator(".q-text")).to_have_text("Pick the third")
    for page in (host, phone):
        drawn = page.evaluate("[...window.drawn]")
        assert "Get ready!" not in drawn
        assert not [text for text in drawn if "open in" in text], drawn
    choice(phone, "Three").click()
    expect(phone.get_by_role("heading", name="Correct!")).to_be_visible()


def test_locking_joining_refuses_new_players(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    (inside,) = _game(host, new_context, "Early")
    remote = open_remote(host, new_context)
    remote.get_by_role("button", name="Lock joining").click()
    expect(remote.get_by_role("button", name="Unlock joining")).to_be_visible()
    expect(host.get_by_text("Joining is locked")).to_be_visible()
    code = host.get_by_test_id("join-code").inner_text()
    late = new_context(phone=True).new_page()
    late.goto(f"/join/{code}")
    late.get_by_label("Your nickname").fill("Late")
    late.get_by_role("button", name="Join").click()
    expect(late.locator("#join-error")).to_have_text("The host has locked joining for this game.")
    expect(inside.get_by_text("The host has locked joining; you are in.")).to_be_visible()
    remote.get_by_role("button", name="Unlock joining").click()
    late.get_by_role("button", name="Join").click()
    expect(late.get_by_role("heading", name="You're in!")).to_be_visible()
    expect(host.get_by_test_id("player-count")).to_have_text("2")


def test_ending_the_game_early_tells_everyone(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    (phone,) = _game(host, new_context, "Solo")
    host.get_by_role("button", name="Start the game").click()
    expect(phone.locator("#q-text")).to_be_visible()
    host.once("dialog", lambda dialog: dialog.accept())
    host.get_by_role("button", name="End game").click()
    expect(host.get_by_role("heading", name="Game over")).to_be_visible()
    expect(host.get_by_text("The host ended the game.")).to_be_visible()
    expect(host.get_by_role("link", name="See the results")).to_be_visible()
    expect(phone.get_by_role("heading", name="Game over")).to_be_visible()
    expect(phone.get_by_text("The host ended the game.")).to_be_visible()


def test_a_big_screen_without_the_launch_key_gets_a_new_one_and_takes_over(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    (phone,) = _game(host, new_context, "Pat")
    game_id = host.url.split("/")[-2]
    host.evaluate(f"window.localStorage.removeItem('partyquiz.host.game.{game_id}')")
    host.reload()
    expect(host.get_by_test_id("player-count")).to_have_text("1")
    stored = host.evaluate(f"window.localStorage.getItem('partyquiz.host.game.{game_id}')")
    assert isinstance(stored, str)
    assert "host_token" in stored
    host.get_by_role("button", name="Start the game").click()
    expect(phone.locator("#q-text")).to_have_text("Pick the third")


def test_the_big_screen_qr_code_encodes_this_servers_join_link(
    host_page: Page, new_context: Callable[..., BrowserContext]
) -> None:
    host = host_page
    api(host, "POST", "/api/quizzes", QUIZ)
    code = launch_game(host, "Keys")
    qr = host.get_by_role("img", name=re.compile("QR code"))
    expect(qr).to_be_visible()
    assert host.evaluate("(img) => img.naturalWidth > 0", qr.element_handle())
    origin = re.match(r"https?://[^/]+", host.url)
    assert origin
    svg = host.request.get(f"/qr/{code.lower()}.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    expected = io.BytesIO()
    segno.make(f"{origin.group(0)}/join/{code}", error="m", micro=False).save(
        expected,
        kind="svg",
        scale=1,
        border=4,
        xmldecl=False,
        omitsize=True,
        title=f"QR code: join PartyQuiz game {code}",
        dark="#000000",
        light="#ffffff",
    )
    assert svg.body() == expected.getvalue()
    assert host.request.get("/qr/not-a-code!.svg").status == 422
