"""A whole game in real browsers: a host builds a quiz in the editor and runs it on the big
screen, three phones join and play to the podium, one phone reloads mid-question and keeps its
score, and the podium and the results page agree with what the game service reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.flows import (
    FrameLog,
    QuestionSpec,
    api,
    build_quiz_in_editor,
    choice,
    join,
    launch_game,
)
from tests.browser.stack import Stack, run_stack

QUIZ = [
    QuestionSpec(
        "single", "Which planet is the largest?", ["Mars", "Jupiter", "Venus", "Mercury"], [1]
    ),
    QuestionSpec(
        "true_false", "Light travels faster than sound.", ["True", "False"], [0], points="double"
    ),
    QuestionSpec("multiple", "Which of these are prime?", ["2", "4", "7"], [0, 2]),
]
NICKNAMES = ["Ada", "Grace", "Linus"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The whole game on the embedded default (the session's stack) and on PostgreSQL, as in
    production."""
    if request.param == "sqlite":
        yield stack
        return
    postgres = request.getfixturevalue("postgres")
    database_url = postgres.url(postgres.create_database())
    with run_stack(tmp_path_factory.mktemp(f"stack-{request.param}"), database_url) as running:
        yield running


def _score(page: Page) -> int:
    return int(page.locator("#me-score").inner_text().replace(",", ""))


def _answer_and_wait_for_receipt(page: Page, text: str) -> None:
    choice(page, text).click()
    expect(page.get_by_test_id("receipt")).to_have_text(re.compile(r"^Answer locked at \d+\.\d s$"))


def test_three_players_play_to_the_podium_and_results_match_the_game_service(
    host_page: Page, new_context: Callable[..., BrowserContext], shoot: Callable[[Page, str], Path]
) -> None:
    host = host_page
    build_quiz_in_editor(host, "Space and numbers", QUIZ)
    host.evaluate("window.scrollTo(0, 0)")
    shoot(host, "host-editor")
    host_frames = FrameLog()
    host_frames.attach(host)
    code = launch_game(host, "Space and numbers")

    phones: dict[str, Page] = {}
    for i, nickname in enumerate(NICKNAMES):
        page = new_context(phone=True).new_page()
        if i == 0:
            page.goto("/")
            shoot(page, "phone-1-landing")
        join(page, code, nickname, via_link=i != 1)
        phones[nickname] = page
    ada, grace, linus = (phones[n] for n in NICKNAMES)
    expect(host.get_by_test_id("player-count")).to_have_text("3")
    expect(host.locator("#players")).to_contain_text("Linus")
    shoot(host, "host-1-lobby")
    shoot(ada, "phone-2-lobby")

    # Question 1: Ada and Grace right, Linus wrong; Ada answers with the keyboard.
    host.get_by_role("button", name="Start the game").click()
    for page in phones.values():
        expect(page.locator("#q-text")).to_have_text(QUIZ[0].text)
    ada.keyboard.press("2")
    expect(ada.get_by_test_id("receipt")).to_have_text(re.compile(r"^Answer locked at \d+\.\d s$"))
    expect(ada.locator("#announcer")).to_contain_text("Answer locked at")
    _answer_and_wait_for_receipt(grace, "Jupiter")
    expect(host.get_by_test_id("answered")).to_have_text("2 of 3 answered")
    shoot(ada, "phone-3-answer-locked")
    shoot(host, "host-2-question")
    choice(linus, "Mars").click()  # the last answer closes the question at once

    # Everyone answered: the question closes by itself and the reveal shows.
    expect(host.get_by_test_id("distribution")).to_be_visible()
    expect(host.get_by_test_id("distribution").locator("li").nth(1)).to_contain_text("2 players")
    expect(host.get_by_test_id("distribution").locator("li").nth(1)).to_contain_text("correct")
    expect(ada.get_by_role("heading", name="Correct!")).to_be_visible()
    expect(linus.get_by_role("heading", name="Not quite")).to_be_visible()
    shoot(host, "host-3-reveal")
    shoot(ada, "phone-4-result")
    host.get_by_role("button", name="Show the leaderboard").click()
    expect(host.get_by_test_id("board").locator("li")).to_have_count(3)
    expect(ada.get_by_role("heading", name="Leaderboard")).to_be_visible()
    shoot(host, "host-4-leaderboard")
    shoot(grace, "phone-5-leaderboard")

    # Question 2: Grace reloads mid-question, comes back with her score, and still answers.
    host.get_by_role("button", name="Next question").click()
    expect(grace.locator("#q-text")).to_have_text(QUIZ[1].text)
    grace_score = _score(grace)
    assert grace_score > 0
    grace.reload()
    expect(grace.locator("#q-text")).to_have_text(QUIZ[1].text)
    expect(grace.locator("#me-score")).to_have_text(f"{grace_score:,}")
    _answer_and_wait_for_receipt(grace, "True")
    _answer_and_wait_for_receipt(ada, "False")
    choice(linus, "True").click()
    expect(grace.get_by_role("heading", name="Correct!")).to_be_visible()
    assert _score(grace) > grace_score
    host.get_by_role("button", name="Show the leaderboard").click()
    host.get_by_role("button", name="Next question").click()

    # Question 3 (multiple): pick, then lock in.
    for page in phones.values():
        expect(page.locator("#q-text")).to_have_text(QUIZ[2].text)
    for page, picks in ((ada, ["2", "7"]), (grace, ["2"]), (linus, ["4", "7"])):
        for text in picks:
            choice(page, text).click()
            expect(choice(page, text)).to_have_attribute("aria-pressed", "true")
        page.get_by_role("button", name="Lock in my answer").click()
        if page is not linus:
            expect(page.get_by_test_id("receipt")).to_contain_text("Answer locked at")
    expect(host.get_by_test_id("distribution")).to_be_visible()
    final_scores = {}
    for nickname, page in phones.items():
        expect(page.get_by_test_id("result-score")).to_be_visible()
        final_scores[nickname] = int(
            page.get_by_test_id("result-score").inner_text().replace(",", "")
        )
    host.get_by_role("button", name="Show the leaderboard").click()
    host.get_by_role("button", name="Show the podium").click()
    expect(host.get_by_test_id("podium")).to_be_visible()
    for page in phones.values():
        expect(page.get_by_role("heading", name="Podium")).to_be_visible()
    shoot(host, "host-5-podium")
    shoot(ada, "phone-6-podium")

    # The podium is what the game service said, and each phone's own result agrees with it.
    reported = host_frames.of_type("podium")[-1]["entries"]
    assert {e["nickname"]: e["score"] for e in reported} == final_scores
    places = host.get_by_test_id("podium").locator("li")
    for i, entry in enumerate(reported):
        expect(places.nth(i)).to_contain_text(entry["nickname"])
        expect(places.nth(i)).to_contain_text(f"{entry['score']:,} pts")
    for entry in reported:
        page = phones[entry["nickname"]]
        expect(page.get_by_test_id("final-standing")).to_have_text(
            re.compile(rf"You finished \d+(st|nd|rd|th) with {entry['score']:,} points\.")
        )

    # Finish: the results page shows the same standings once the game service delivered them.
    host.get_by_role("button", name="Finish the game").click()
    expect(host.get_by_role("heading", name="Game over")).to_be_visible()
    host.get_by_role("link", name="See the results").click()
    standings = host.get_by_test_id("standings")
    expect(standings).to_be_visible(timeout=30_000)
    rows = standings.locator("tbody tr")
    expect(rows).to_have_count(3)
    for i, entry in enumerate(reported):
        expect(rows.nth(i).locator(".player-name")).to_have_text(entry["nickname"])
        expect(rows.nth(i).locator(".player-score")).to_have_text(f"{entry['score']:,}")
    shoot(host, "host-6-results")
    with host.expect_download() as download_info:
        host.get_by_role("button", name="Download CSV").click()
    csv_text = Path(download_info.value.path()).read_text()
    for entry in reported:
        assert re.search(rf"{entry['nickname']}\b.*\b{entry['score']}\b", csv_text), csv_text
    game_id = host.url.rsplit("/", 1)[-1]
    detail = api(host, "GET", f"/api/games/{game_id}")
    assert {p["nickname"]: p["score"] for p in detail["players"]} == final_scores
