"""Scoring: the Kahoot formula, the 0.5 s rule, partial credit, point modes, polls and streaks."""

from __future__ import annotations

import pytest

from partyquiz_core.quiz import Choice, PointsMode, Question, QuestionKind
from partyquiz_core.scoring import (
    ScoringRules,
    credit,
    round_half_up,
    score_answer,
    score_missed,
    time_factor,
)

NO_STREAK = ScoringRules()
STREAKS = ScoringRules(streak_bonus=True, streak_step=100, streak_cap=500)


def question(
    kind: QuestionKind = QuestionKind.SINGLE,
    *,
    n: int = 4,
    correct: tuple[int, ...] = (0,),
    points: PointsMode = PointsMode.STANDARD,
    limit: int = 20,
) -> Question:
    return Question(
        kind=kind,
        text="q",
        choices=tuple(Choice(text=f"c{i}") for i in range(n)),
        correct=() if kind is QuestionKind.POLL else correct,
        points=points,
        time_limit_seconds=limit,
    )


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (0.0, 1000),
        (0.25, 1000),
        (0.499, 1000),  # under 0.5 s: full points
        (0.5, 988),  # 1000 * (1 - 0.025 / 2) = 987.5, halves round up
        (1.0, 975),
        (5.0, 875),
        (10.0, 750),
        (15.0, 625),
        (19.999, 500),
        (20.0, 500),
        (25.0, 500),  # clamped to the limit
        (-3.0, 1000),  # clamped to zero
    ],
)
def test_correct_single_choice_earns_points_by_time(elapsed: float, expected: int) -> None:
    scored = score_answer(question(), frozenset({0}), elapsed, 0, NO_STREAK)
    assert scored.correct
    assert scored.fraction == 1.0
    assert scored.points == expected


@pytest.mark.parametrize(
    ("mode", "elapsed", "expected"),
    [
        (PointsMode.STANDARD, 10.0, 750),
        (PointsMode.DOUBLE, 10.0, 1500),
        (PointsMode.DOUBLE, 0.1, 2000),
        (PointsMode.NONE, 0.1, 0),
        (PointsMode.NONE, 10.0, 0),
    ],
)
def test_point_modes_scale_the_base_points(mode: PointsMode, elapsed: float, expected: int) -> None:
    assert score_answer(question(points=mode), frozenset({0}), elapsed, 0, NO_STREAK).points == (
        expected
    )


def test_wrong_single_choice_earns_nothing_and_breaks_the_streak() -> None:
    scored = score_answer(question(), frozenset({1}), 1.0, 4, NO_STREAK)
    assert (scored.correct, scored.fraction, scored.points, scored.streak) == (False, 0.0, 0, 0)


def test_true_false_scores_like_single_choice() -> None:
    tf = question(QuestionKind.TRUE_FALSE, n=2, correct=(1,), limit=10)
    assert score_answer(tf, frozenset({1}), 5.0, 0, NO_STREAK).points == 750
    assert score_answer(tf, frozenset({0}), 5.0, 0, NO_STREAK).points == 0


@pytest.mark.parametrize(
    ("chosen", "fraction", "correct", "points_at_10s"),
    [
        ({0, 1}, 1.0, True, 750),  # all right, nothing wrong
        ({0}, 0.5, False, 375),  # half the right ones
        ({1}, 0.5, False, 375),
        ({0, 1, 2}, 0.5, False, 375),  # two right minus one wrong
        ({0, 2}, 0.0, False, 0),  # one right minus one wrong
        ({2, 3}, 0.0, False, 0),  # floored at zero
        ({0, 1, 2, 3}, 0.0, False, 0),  # picking everything earns nothing
    ],
)
def test_multiple_choice_gives_partial_credit(
    chosen: set[int], fraction: float, correct: bool, points_at_10s: int
) -> None:
    multi = question(QuestionKind.MULTIPLE, correct=(0, 1))
    scored = score_answer(multi, frozenset(chosen), 10.0, 0, NO_STREAK)
    assert scored.fraction == fraction
    assert scored.correct is correct
    assert scored.points == points_at_10s
    assert scored.streak == (1 if correct else 0)


def test_partial_credit_uses_the_point_mode_and_the_time_rule() -> None:
    multi = question(QuestionKind.MULTIPLE, correct=(0, 1, 2), points=PointsMode.DOUBLE)
    # 2000 * 2/3 = 1333.33 under 0.5 s
    assert score_answer(multi, frozenset({0, 1}), 0.2, 0, NO_STREAK).points == 1333
    # 2000 * 1/3 * 0.75 = 500
    assert score_answer(multi, frozenset({2}), 10.0, 0, NO_STREAK).points == 500


@pytest.mark.parametrize("rules", [NO_STREAK, STREAKS])
def test_poll_scores_nothing_and_keeps_the_streak(rules: ScoringRules) -> None:
    poll = question(QuestionKind.POLL, n=3)
    scored = score_answer(poll, frozenset({2}), 0.1, 3, rules)
    assert (scored.correct, scored.points, scored.streak) == (False, 0, 3)
    assert score_missed(poll, 3).streak == 3


def test_missing_an_answer_breaks_the_streak() -> None:
    missed = score_missed(question(), 5)
    assert (missed.correct, missed.points, missed.streak) == (False, 0, 0)


@pytest.mark.parametrize(
    ("streak_before", "bonus"),
    [(0, 0), (1, 100), (2, 200), (3, 300), (4, 400), (5, 500), (6, 500), (40, 500)],
)
def test_streak_bonus_grows_per_correct_answer_up_to_the_cap(
    streak_before: int, bonus: int
) -> None:
    scored = score_answer(question(), frozenset({0}), 10.0, streak_before, STREAKS)
    assert scored.streak == streak_before + 1
    assert scored.points == 750 + bonus


def test_streak_bonus_off_adds_nothing_but_still_counts_the_streak() -> None:
    scored = score_answer(question(), frozenset({0}), 10.0, 7, NO_STREAK)
    assert (scored.points, scored.streak) == (750, 8)


def test_streak_bonus_is_configurable() -> None:
    rules = ScoringRules(streak_bonus=True, streak_step=50, streak_cap=120)
    assert score_answer(question(), frozenset({0}), 10.0, 1, rules).points == 800
    assert score_answer(question(), frozenset({0}), 10.0, 9, rules).points == 870


def test_no_streak_bonus_on_questions_without_points_or_wrong_answers() -> None:
    none = question(points=PointsMode.NONE)
    assert score_answer(none, frozenset({0}), 1.0, 4, STREAKS).points == 0
    assert score_answer(question(), frozenset({1}), 1.0, 4, STREAKS).points == 0
    partial = question(QuestionKind.MULTIPLE, correct=(0, 1))
    assert score_answer(partial, frozenset({0}), 10.0, 4, STREAKS).points == 375


def test_helpers_follow_the_documented_formula() -> None:
    assert time_factor(0.49, 20) == 1.0
    assert time_factor(10, 20) == 0.75
    assert round_half_up(0.5) == 1
    assert round_half_up(2.5) == 3
    assert round_half_up(2.4999) == 2
    assert credit(question(QuestionKind.POLL, n=2), frozenset({0})) == 0.0
