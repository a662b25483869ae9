"""Type answer, slider and ordering questions: authoring rules, matching, scoring, the game's
messages (nothing right before the reveal) and final results."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError
from tests.unit.core.core_builders import Game, choices, make_game

from partyquiz_core.errors import AnswerRejectedError
from partyquiz_core.game import (
    Answer,
    GameState,
    Skip,
    host_snapshot,
    player_snapshot,
    shown_order,
)
from partyquiz_core.ids import GameId, PlayerId
from partyquiz_core.matching import answer_key
from partyquiz_core.protocol import AnswerMsg, parse_client_message
from partyquiz_core.quiz import PointsMode, Question, QuestionKind, Quiz, Slider
from partyquiz_core.results import final_results
from partyquiz_core.scoring import ScoringRules, credit, is_fully_correct, score_answer

A, B, C = PlayerId("p-ann"), PlayerId("p-bob"), PlayerId("p-cid")
PLANETS = ("Mercury", "Venus", "Earth", "Mars")
NO_STREAK_RULES = ScoringRules()


def type_answer(**changes: Any) -> Question:
    fields: dict[str, Any] = {
        "kind": QuestionKind.TYPE_ANSWER,
        "text": "Capital of Switzerland?",
        "accepted": ("Bern", "Berne"),
        "read_seconds": 0,
    }
    return Question(**{**fields, **changes})


def slider(**scale: Any) -> Question:
    fields: dict[str, Any] = {"min": 0, "max": 100, "step": 1, "answer": 42, "tolerance": 2}
    return Question(
        kind=QuestionKind.SLIDER,
        text="How many?",
        slider=Slider(**{**fields, **scale}),
        read_seconds=0,
    )


def ordering() -> Question:
    return Question(
        kind=QuestionKind.ORDERING,
        text="Closest to the sun first",
        choices=choices(*PLANETS),
        read_seconds=0,
    )


def quiz_of(*questions: Question) -> Quiz:
    return Quiz(title="New kinds", questions=questions)


def started(*questions: Question) -> Game:
    return make_game("ann", "bob", "cid", quiz=quiz_of(*questions), started=True)


def refusal(game: Game, **answer: Any) -> str:
    with pytest.raises(AnswerRejectedError) as refused:
        game.do(Answer(player_id=A, question_index=0, **{"choices": [], **answer}))
    return refused.value.code


# --- authoring -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ({"kind": "type_answer", "text": "Q"}, "at least one accepted answer"),
        (
            {"kind": "type_answer", "text": "Q", "accepted": ["Zürich", " zurich"]},
            "differ by more than case, accents and spaces",
        ),
        (
            {"kind": "type_answer", "text": "Q", "accepted": ["A"], "choices": [{"text": "A"}]},
            "has no choices",
        ),
        (
            {
                "kind": "single",
                "text": "Q",
                "choices": [{"text": "a"}, {"text": "b"}],
                "correct": [0],
                "accepted": ["a"],
            },
            "only a type-answer question has accepted answers",
        ),
        ({"kind": "slider", "text": "Q"}, "needs its slider"),
        ({"kind": "slider", "text": "Q", "slider": {"min": 5, "max": 5, "answer": 5}}, "max must"),
        (
            {
                "kind": "slider",
                "text": "Q",
                "slider": {"min": 0, "max": 10, "step": 3, "answer": 3},
            },
            "whole number of steps",
        ),
        (
            {"kind": "slider", "text": "Q", "slider": {"min": 0, "max": 10, "answer": 11}},
            "between min and max",
        ),
        (
            {
                "kind": "slider",
                "text": "Q",
                "slider": {"min": 0, "max": 1, "step": 0.1, "answer": 0.25},
            },
            "on the scale",
        ),
        (
            {"kind": "slider", "text": "Q", "slider": {"min": 0, "max": 100000, "answer": 1}},
            "at most 10000 steps",
        ),
        (
            {"kind": "ordering", "text": "Q", "choices": [{"text": "a"}, {"text": "b"}]},
            "at least 3 items",
        ),
        (
            {
                "kind": "ordering",
                "text": "Q",
                "choices": [{"text": "a"}, {"text": "b"}, {"text": "c"}],
                "correct": [0],
            },
            "the right order is the order of its items",
        ),
    ],
)
def test_a_question_of_a_new_kind_that_breaks_a_rule_says_which(
    question: dict[str, Any], message: str
) -> None:
    with pytest.raises(PydanticValidationError) as refused:
        Question.model_validate(question)
    assert message in str(refused.value)


def test_a_decimal_slider_is_exact_on_its_steps() -> None:
    scale = Slider(min=0, max=1, step=0.1, answer=0.3, tolerance=0.1)
    assert (scale.steps, scale.answer_position, scale.tolerance_steps) == (10, 3, 1)
    assert [scale.value_at(p) for p in (0, 3, 7, 10)] == [0.0, 0.3, 0.7, 1.0]
    assert scale.position(0.34) == 3
    assert scale.position(-5) == 0


def test_quizzes_without_the_new_kinds_are_written_as_before() -> None:
    question = Question(text="Q", choices=choices("a", "b"), correct=(0,))
    assert set(json.loads(question.model_dump_json())) == {
        "kind",
        "text",
        "choices",
        "correct",
        "time_limit_seconds",
        "points",
        "read_seconds",
    }


# --- matching and scoring --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "right"),
    [
        ("Zürich", True),
        ("zurich", True),
        ("  ZU RICH ", True),
        ("Zu\u0308rich", True),  # the umlaut as a combining mark
        ("zu\u200brich", True),  # an invisible space inside
        ("\uff3a\uff35\uff32\uff29\uff23\uff28", True),  # full-width letters
        ("Zurich!", False),
        ("Zurch", False),
    ],
)
def test_a_typed_answer_matches_ignoring_case_accents_and_spaces(typed: str, right: bool) -> None:
    assert (answer_key(typed) == answer_key("Zürich")) is right


def test_strasse_and_its_sharp_s_are_the_same_answer() -> None:
    assert answer_key("Straße") == answer_key("STRASSE")


@pytest.mark.parametrize(
    ("position", "fraction"),
    [
        (42, 1.0),
        (40, 1.0),
        (44, 1.0),
        (45, 0.48),
        (39, 0.48),
        (60, 0.18),
        (66, 0.06),
        (68, 0.02),
        (69, 0.0),
        (100, 0.0),
        (0, 0.0),
    ],
)
def test_a_slider_pick_earns_full_credit_inside_the_tolerance_and_less_outside(
    position: int, fraction: float
) -> None:
    question = slider()
    assert credit(question, (position,)) == pytest.approx(fraction)
    assert is_fully_correct(question, (position,)) is (fraction == 1.0)


def test_a_slider_pick_just_outside_earns_half_points_scaled_by_time() -> None:
    scored = score_answer(slider(), (45,), 0.0, 0, NO_STREAK_RULES)
    assert (scored.correct, scored.points) == (False, 480)
    assert scored.streak == 0
    assert score_answer(slider(), (43,), 0.0, 3, NO_STREAK_RULES).streak == 4


def test_only_the_exact_order_earns_points() -> None:
    question = ordering()
    assert score_answer(question, (0, 1, 2, 3), 0.0, 0, NO_STREAK_RULES).points == 1000
    for almost in ((1, 0, 2, 3), (0, 1, 3, 2), (3, 2, 1, 0)):
        assert score_answer(question, almost, 0.0, 0, NO_STREAK_RULES).points == 0


def test_a_matched_typed_answer_earns_points_and_no_match_earns_nothing() -> None:
    question = type_answer(points=PointsMode.DOUBLE)
    assert score_answer(question, (1,), 0.0, 0, NO_STREAK_RULES).points == 2000
    assert score_answer(question, (), 0.0, 0, NO_STREAK_RULES).points == 0


# --- in a game -------------------------------------------------------------------------------


def test_a_typed_answer_gets_a_receipt_that_never_says_whether_it_is_right() -> None:
    game = started(type_answer())
    right = game.do(Answer(player_id=A, question_index=0, choices=[], text="  berne "), at=1001)
    wrong = game.do(Answer(player_id=B, question_index=0, choices=[], text="Zurich"), at=1001)
    receipts = [t.events[0].message.model_dump(mode="json") for t in (right, wrong)]
    assert [(r["choices"], r["text"]) for r in receipts] == [([], "berne"), ([], "Zurich")]
    assert receipts[0].keys() == receipts[1].keys()
    snaps = [player_snapshot(game.state, p, 1002).model_dump(mode="json") for p in (A, B)]
    assert [(s["my_answer"], s["my_answer_text"]) for s in snaps] == [([], "berne"), ([], "Zurich")]
    assert "Bern" not in json.dumps(snaps) + json.dumps(receipts)

    reveal = game.do(Skip(), at=1003).events[0].message
    assert (reveal.accepted, reveal.correct, reveal.distribution) == (
        ["Bern", "Berne"],
        [],
        [1, 0, 1],
    )
    assert reveal.results[A].correct is True
    assert (reveal.results[B].correct, reveal.results[C].answered) == (False, False)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"text": "   "}, "invalid_choice"),
        ({"text": "x" * 61}, "invalid_choice"),
        ({"text": "Bern\x00"}, "invalid_choice"),
        ({"text": "Be\x1brn"}, "invalid_choice"),
        ({"text": "Bern\x7f"}, "invalid_choice"),
        ({"choices": [0]}, "invalid_choice"),
        ({"value": 3.0}, "invalid_choice"),
        ({}, "invalid_choice"),
    ],
)
def test_a_type_answer_of_the_wrong_shape_is_refused(answer: dict[str, Any], code: str) -> None:
    assert refusal(started(type_answer()), **answer) == code


def test_a_slider_answer_lands_on_the_nearest_step_and_the_reveal_shows_the_number() -> None:
    game = started(slider(min=1850, max=1950, answer=1889, tolerance=2))
    receipt = game.do(Answer(player_id=A, question_index=0, choices=[], value=1890.4)).events[0]
    assert receipt.message.model_dump(mode="json") | {"version": 0} == {
        "type": "answer_receipt",
        "version": 0,
        "question_index": 0,
        "choices": [],
        "elapsed": 0.0,
        "value": 1890.0,
    }
    game.do(Answer(player_id=B, question_index=0, choices=[], value=1895))
    snap = player_snapshot(game.state, A, 1000)
    assert (snap.my_answer, snap.my_answer_value) == ([], 1890.0)
    view = host_snapshot(game.state, 1000).question
    assert view is not None
    assert view.slider is not None
    assert view.slider.model_dump() == {"min": 1850, "max": 1950, "step": 1, "unit": ""}
    assert "1889" not in snap.model_dump_json() + host_snapshot(game.state, 1000).model_dump_json()

    reveal = game.do(Skip()).events[0].message
    assert (reveal.correct_value, reveal.tolerance, reveal.distribution) == (1889, 2, [1, 1, 0])
    assert reveal.results[A].correct is True
    assert reveal.results[A].points == 1000
    assert reveal.results[B].correct is False
    assert reveal.results[B].points == round(1000 * (100 - 4 * 4) / 200)


@pytest.mark.parametrize("value", [1849.0, 1951.0])
def test_a_number_off_the_slider_is_refused(value: float) -> None:
    game = started(slider(min=1850, max=1950, answer=1889))
    assert refusal(game, value=value) == "invalid_choice"


def test_ordering_items_come_shuffled_and_the_reveal_gives_the_right_order() -> None:
    game = started(ordering())
    question = game.messages("question")[0]
    order = shown_order(game.state.game_id, 0, 4)
    assert question.choices == [PLANETS[i] for i in order]
    assert question.choices != list(PLANETS)
    right = [order.index(item) for item in range(4)]  # shown positions, closest first
    receipt = game.do(Answer(player_id=A, question_index=0, choices=right)).events[0].message
    assert receipt.choices == right
    game.do(Answer(player_id=B, question_index=0, choices=list(reversed(right))))
    assert player_snapshot(game.state, A, 1000).my_answer == right
    reveal = game.do(Skip()).events[0].message
    assert [question.choices[i] for i in reveal.correct] == list(PLANETS)
    assert reveal.distribution == [1, 0, 1]
    assert (reveal.results[A].correct, reveal.results[B].points) == (True, 0)
    rows = {r.player_id: r for r in final_results(game.state).answers}
    assert rows[A].choices == [0, 1, 2, 3]
    assert rows[B].choices == [3, 2, 1, 0]


@pytest.mark.parametrize("sent", [[0, 1, 2], [0, 1, 2, 2], [0, 1, 2, 4], []])
def test_an_ordering_that_leaves_out_or_repeats_an_item_is_refused(sent: list[int]) -> None:
    assert refusal(started(ordering()), choices=sent) == "invalid_choice"


def test_the_shown_order_is_the_same_everywhere_and_never_the_right_one() -> None:
    for n in (3, 4, 5, 6):
        for index in range(40):
            order = shown_order(GameId(f"game-{n}"), index, n)
            assert sorted(order) == list(range(n))
            assert order != tuple(range(n))
            assert order == shown_order(GameId(f"game-{n}"), index, n)


def test_a_choice_question_refuses_a_text_or_a_number() -> None:
    game = make_game("ann", started=True)
    assert refusal(game, choices=[0], text="Paris") == "invalid_choice"


def test_typed_texts_are_kept_with_the_game_and_in_its_results() -> None:
    game = started(type_answer(), slider())
    game.do(Answer(player_id=A, question_index=0, choices=[], text="Bern"))
    saved = GameState.model_validate_json(game.state.model_dump_json())
    assert saved == game.state
    game.do(Skip())
    results = final_results(game.state)
    assert [(r.player_id, r.text, r.correct) for r in results.answers] == [(A, "Bern", True)]
    assert results.questions[0].distribution == [1, 0, 0]


def test_an_answer_frame_carries_text_or_value_and_stays_strict() -> None:
    assert parse_client_message('{"type":"answer","question_index":1,"text":"Bern"}') == AnswerMsg(
        question_index=1, text="Bern"
    )
    assert parse_client_message('{"type":"answer","question_index":1,"value":3}').value == 3.0
    for bad in ('"value":"3"', '"value":NaN', '"text":5'):
        with pytest.raises(Exception, match="answer"):
            parse_client_message(f'{{"type":"answer","question_index":1,{bad}}}')
