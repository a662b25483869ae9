"""The quiz editor: the API's validation messages appear next to their fields, and quizzes
survive a JSON export and import round trip."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.flows import QuestionSpec, api, build_quiz_in_editor

QUIZ = [
    QuestionSpec("single", "Largest ocean?", ["Atlantic", "Pacific", "Indian"], [1], 20),
    QuestionSpec("poll", "Best snack?", ["Crisps", "Fruit"], [], 15, points="none"),
    QuestionSpec("multiple", "Even numbers?", ["2", "3", "4", "6"], [0, 2, 3], 45, "double"),
    QuestionSpec("true_false", "Water boils at 100 °C at sea level.", ["True", "False"], [0], 10),
]


def test_validation_messages_from_the_api_appear_next_to_their_fields(
    host_page: Page, shoot: Callable[[Page, str], Path]
) -> None:
    page = host_page
    page.get_by_role("link", name="New quiz").click()
    page.locator("#f-title").fill("   ")
    page.locator("#f-questions-0-text").fill("Which one?")
    page.locator("#f-questions-0-choices-0-text").fill("This")
    page.locator("#f-questions-0-choices-1-text").fill("")
    page.locator("#f-questions-0-choices-2-text").fill("Other")
    page.locator("#f-questions-0-choices-3-text").fill("None")
    page.locator("#f-questions-0-time_limit_seconds").fill("3")
    page.get_by_role("button", name="Save quiz").click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    for field_id in ("f-title", "f-questions-0-choices-1-text", "f-questions-0-time_limit_seconds"):
        field = page.locator(f"#{field_id}")
        expect(field).to_have_attribute("aria-invalid", "true")
        message = page.locator(f"#{field_id}-error")
        expect(message).not_to_be_empty()
        assert f"{field_id}-error" in (field.get_attribute("aria-describedby") or "")
    expect(page.locator("#f-questions-0-time_limit_seconds-error")).to_have_text("Use 5 or more.")
    expect(page.locator("#f-questions-0-text")).to_have_attribute("aria-invalid", "false")
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "host-editor-validation")

    # Fixing the fields saves the quiz and clears every message.
    page.locator("#f-title").fill("Fixed")
    page.locator("#f-questions-0-choices-1-text").fill("That")
    page.locator("#f-questions-0-time_limit_seconds").fill("5")
    page.get_by_role("button", name="Save quiz").click()
    expect(page.locator("#form-status")).to_contain_text("Saved")
    expect(page.locator('[aria-invalid="true"]')).to_have_count(0)


def test_a_model_rule_message_lands_on_the_question(host_page: Page) -> None:
    page = host_page
    page.get_by_role("link", name="New quiz").click()
    page.locator("#f-title").fill("Rules")
    page.locator("#f-questions-0-kind").select_option("multiple")
    page.locator("#f-questions-0-text").fill("Pick")
    for j in range(4):
        page.locator(f"#f-questions-0-choices-{j}-text").fill(f"Choice {j}")
    page.get_by_label("Answer 1 is correct", exact=True).uncheck()
    page.get_by_role("button", name="Save quiz").click()
    expect(page.locator("#f-questions-0-error")).to_contain_text("at least one correct choice")


def test_every_question_kind_round_trips_through_export_and_import(host_page: Page) -> None:
    page = host_page
    quiz_id = build_quiz_in_editor(page, "Round trip", QUIZ)
    saved = api(page, "GET", f"/api/quizzes/{quiz_id}")["quiz"]
    assert [q["kind"] for q in saved["questions"]] == [q.kind for q in QUIZ]
    assert [q["correct"] for q in saved["questions"]] == [q.correct for q in QUIZ]
    assert [q["points"] for q in saved["questions"]] == [q.points for q in QUIZ]
    assert [q["time_limit_seconds"] for q in saved["questions"]] == [q.time_limit for q in QUIZ]

    page.goto("/host")
    item = page.locator("#quiz-list > li").filter(has_text="Round trip")
    with page.expect_download() as download_info:
        item.get_by_role("button", name="Export JSON").click()
    download = download_info.value
    assert download.suggested_filename == "round-trip.quiz.json"
    exported = json.loads(Path(download.path()).read_text())
    assert exported == saved

    page.locator("#import-file").set_input_files(download.path())
    expect(page.locator("#list-done")).to_have_text("Imported “Round trip”.")
    expect(page.locator("#quiz-list > li").filter(has_text="Round trip")).to_have_count(2)
    quizzes = api(page, "GET", "/api/quizzes")
    imported = next(q for q in quizzes if q["id"] != quiz_id)
    assert api(page, "GET", f"/api/quizzes/{imported['id']}")["quiz"] == saved


def test_a_broken_import_lists_each_problem_with_its_path(
    fresh_host_page: Page, tmp_path: Path
) -> None:
    page = fresh_host_page
    bad = tmp_path / "bad.quiz.json"
    bad.write_text(json.dumps({"title": "Bad", "questions": [{"text": "Q", "choices": []}]}))
    page.locator("#import-file").set_input_files(bad)
    expect(page.locator("#list-status")).to_contain_text("Import failed")
    expect(page.locator("#import-errors")).to_contain_text("questions.0.choices")
    expect(page.locator("#quiz-list")).to_contain_text("No quizzes yet")


def test_duplicate_makes_a_copy_with_the_same_questions(host_page: Page) -> None:
    page = host_page
    quiz_id = build_quiz_in_editor(page, "Original", QUIZ[:1])
    page.goto("/host")
    page.locator("#quiz-list > li").filter(has_text="Original").get_by_role(
        "button", name="Duplicate"
    ).click()
    expect(page.locator("#list-done")).to_have_text("Created “Copy of Original”.")
    copy = next(q for q in api(page, "GET", "/api/quizzes") if q["id"] != quiz_id)
    original = api(page, "GET", f"/api/quizzes/{quiz_id}")["quiz"]
    assert (
        api(page, "GET", f"/api/quizzes/{copy['id']}")["quiz"]["questions"] == original["questions"]
    )


def test_the_editor_makes_type_answer_slider_and_ordering_questions(
    host_page: Page, shoot: Callable[[Page, str], Path]
) -> None:
    page = host_page
    page.get_by_role("link", name="New quiz").click()
    page.locator("#f-title").fill("Three new kinds")
    page.locator("#f-questions-0-kind").select_option("type_answer")
    page.locator("#f-questions-0-text").fill("Capital of Switzerland?")
    page.get_by_label("Question 1, accepted answer 1").fill("Bern")
    page.get_by_role("button", name="Add an accepted answer to question 1").click()
    page.get_by_label("Question 1, accepted answer 2").fill("berne")

    page.get_by_role("button", name="Add a question").click()
    page.locator("#f-questions-1-kind").select_option("slider")
    page.locator("#f-questions-1-text").fill("Eiffel Tower finished in?")
    for field, value in (("min", "1850"), ("max", "1950"), ("answer", "1889"), ("tolerance", "3")):
        page.locator(f"#f-questions-1-slider-{field}").fill(value)
    page.locator("#f-questions-1-slider-step").fill("2")

    page.get_by_role("button", name="Add a question").click()
    page.locator("#f-questions-2-kind").select_option("ordering")
    page.locator("#f-questions-2-text").fill("Smallest first")
    page.get_by_role("button", name="Remove item 4 of question 3").click()
    for j, text in enumerate(["Cat", "Ant", "Horse"]):
        page.get_by_label(f"Question 3, item {j + 1}").fill(text)
    page.get_by_role("button", name="Move item 2 of question 3 up").click()
    expect(page.get_by_label("Question 3, item 1")).to_have_value("Ant")

    # The slider's steps do not fit its tolerance (3 is not a whole number of 2s): said there.
    page.get_by_role("button", name="Save quiz").click()
    expect(page.locator("#f-questions-1-slider-error")).to_contain_text("whole number of steps")
    page.locator("#f-questions-1-slider-tolerance").fill("4")
    page.locator("#f-questions-1-slider-answer").fill("1890")
    page.get_by_role("button", name="Save quiz").click()
    expect(page.locator("#form-status")).to_contain_text("Saved")
    # The three questions at once, on a tall window, from the first one down.
    page.set_viewport_size({"width": 1280, "height": 1800})
    page.locator("fieldset.question").first.evaluate("el => el.scrollIntoView({block: 'start'})")
    shoot(page, "host-editor-new-kinds")
    quiz = api(page, "GET", f"/api/quizzes/{page.url.rsplit('/', 1)[-1]}")["quiz"]
    typed, slider, ordering = quiz["questions"]
    assert (typed["kind"], typed["accepted"], typed["choices"]) == (
        "type_answer",
        ["Bern", "berne"],
        [],
    )
    assert slider["slider"] == {
        "min": 1850,
        "max": 1950,
        "step": 2,
        "answer": 1890,
        "tolerance": 4,
        "unit": "",
    }
    assert [c["text"] for c in ordering["choices"]] == ["Ant", "Cat", "Horse"]
    assert "accepted" not in slider
    assert "slider" not in ordering
