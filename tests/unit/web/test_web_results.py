"""Results: per-player and per-question summaries and the CSV export."""

from __future__ import annotations

import csv
import io

from partyquiz_core.quiz import Quiz
from partyquiz_web.results import (
    AnswerRow,
    PlayerRow,
    player_results,
    question_results,
    render_csv,
    safe_cell,
)

QUIZ = Quiz.model_validate(
    {
        "title": "Capitals",
        "questions": [
            {"text": "France?", "choices": [{"text": "Paris"}, {"text": "Lyon"}], "correct": [0]},
            {
                "kind": "multiple",
                "text": "Cities on the Rhine?",
                "choices": [{"text": "Basel"}, {"text": "Cologne"}, {"text": "Vienna"}],
                "correct": [0, 1],
            },
        ],
    }
)
PLAYERS = [PlayerRow("p2", "Bob", 800, 2), PlayerRow("p1", "=cmd()", 1500, 1)]
ANSWERS = [
    AnswerRow("p1", 0, [0], 1.5, True, 950),
    AnswerRow("p2", 0, [1], 2.5, False, 0),
    AnswerRow("p1", 1, [0, 1], 3.0, True, 550),
    AnswerRow("p2", 1, [0], 4.0, False, 800),
]


def test_players_are_ordered_by_rank_with_their_answers() -> None:
    results = player_results(PLAYERS, ANSWERS)
    assert [p.player_id for p in results] == ["p1", "p2"]
    assert results[0].correct_answers == 2
    assert [a.question_index for a in results[0].answers] == [0, 1]
    assert results[1].correct_answers == 0


def test_question_results_count_answers_choices_and_speed() -> None:
    first, second = question_results(QUIZ, ANSWERS)
    assert (first.answered, first.answered_correctly, first.choice_counts) == (2, 1, [1, 1])
    assert first.average_elapsed == 2.0
    assert second.choice_counts == [2, 1, 0]
    assert second.correct == [0, 1]


def test_question_without_answers_has_no_average() -> None:
    results = question_results(QUIZ, [])
    assert [r.average_elapsed for r in results] == [None, None]
    assert [r.answered for r in results] == [0, 0]


def test_csv_has_one_row_per_player_with_each_answer_and_its_points() -> None:
    text = render_csv(QUIZ, player_results(PLAYERS, ANSWERS))
    # A byte order mark first, so spreadsheets read the file as UTF-8.
    assert text.startswith("\ufeffrank,")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == [
        "rank",
        "nickname",
        "score",
        "correct_answers",
        "q1_answer",
        "q1_points",
        "q2_answer",
        "q2_points",
    ]
    assert rows[1] == ["1", "'=cmd()", "1500", "2", "Paris", "950", "Basel | Cologne", "550"]
    assert rows[2] == ["2", "Bob", "800", "0", "Lyon", "0", "Basel", "800"]


def test_csv_keeps_accented_and_emoji_nicknames_and_answers() -> None:
    players = [PlayerRow("p1", "Zoë 👩‍💻", 1000, 1)]
    text = render_csv(QUIZ, player_results(players, [AnswerRow("p1", 0, [0], 1.0, True, 1000)]))
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbfrank,")
    assert "Zoë 👩‍💻,1000,1,Paris,1000" in text


def test_csv_leaves_unanswered_questions_empty() -> None:
    text = render_csv(QUIZ, player_results([PlayerRow("p3", "Cy", 0, 3)], []))
    assert text.splitlines()[1] == "3,Cy,0,0,,,,"


def test_polls_never_count_as_correct_answers() -> None:
    quiz = Quiz.model_validate(
        {
            "title": "Mixed",
            "questions": [
                {
                    "text": "France?",
                    "choices": [{"text": "Paris"}, {"text": "Lyon"}],
                    "correct": [0],
                },
                {"kind": "poll", "text": "Tea?", "choices": [{"text": "Yes"}, {"text": "No"}]},
            ],
        }
    )
    answers = [AnswerRow("p1", 0, [0], 1.0, True, 1000), AnswerRow("p1", 1, [1], 1.0, False, 0)]
    (player,) = player_results([PlayerRow("p1", "Ann", 1000, 1)], answers)
    assert player.correct_answers == 1
    assert render_csv(quiz, [player]).splitlines()[1] == "1,Ann,1000,1,Paris,1000,No,0"


def test_formula_like_cells_are_neutralised() -> None:
    assert [safe_cell(v) for v in ["=1+1", "+1", "-1", "@A1", "plain"]] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@A1",
        "plain",
    ]


NEW_KINDS = Quiz.model_validate(
    {
        "title": "New kinds",
        "questions": [
            {"kind": "type_answer", "text": "Capital of Switzerland?", "accepted": ["Bern"]},
            {
                "kind": "slider",
                "text": "Boiling point?",
                "slider": {"min": 0, "max": 200, "answer": 100, "tolerance": 5, "unit": "°C"},
            },
            {
                "kind": "ordering",
                "text": "Smallest first",
                "choices": [{"text": "Ant"}, {"text": "Cat"}, {"text": "Horse"}],
            },
        ],
    }
)


def test_results_of_typed_slider_and_ordering_answers_read_as_given() -> None:
    answers = [
        AnswerRow("p1", 0, [], 2.0, True, 900, text="bern"),
        AnswerRow("p1", 1, [], 3.0, False, 400, value=108.0),
        AnswerRow("p1", 2, [1, 0, 2], 4.0, False, 0),
    ]
    (player,) = player_results([PlayerRow("p1", "Ann", 1300, 1)], answers)
    assert [(a.text, a.value) for a in player.answers] == [
        ("bern", None),
        (None, 108.0),
        (None, None),
    ]
    row = render_csv(NEW_KINDS, [player]).splitlines()[1]
    assert row == "1,Ann,1300,1,bern,900,108 °C,400,Cat > Ant > Horse,0"
    typed, slider, ordering = question_results(NEW_KINDS, answers)
    assert (typed.choice_counts, typed.answered_correctly) == ([], 1)
    assert slider.choice_counts == []
    assert ordering.correct == [0, 1, 2]
    assert ordering.choice_counts == []
