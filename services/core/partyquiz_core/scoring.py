"""Scoring: how many points one answer earns and what it does to the player's streak.

Owns the Kahoot-compatible formula, partial credit and the streak bonus. It decides nothing
about phases, deadlines or duplicates (``partyquiz_core.game`` does) and reads no clock.

The rules, all of them:

* A fully correct answer earns ``round(P * (1 - (t / T) / 2))`` where ``P`` is the question's
  base points (1000 standard, 2000 double, 0 none), ``t`` the seconds it took (to the
  millisecond, clamped to ``0..T``) and ``T`` the time limit. Answers faster than 0.5 s earn full
  ``P``. The arithmetic is exact (integers), and ``round`` rounds halves up (``987.5 -> 988``),
  as players expect, not to even.
* Multiple choice gives partial credit: ``fraction = max(0, right picks - wrong picks) / number
  of correct choices``, and earns ``round(P * fraction * time factor)``. Only an answer with every
  correct choice and no wrong one is *correct* (and keeps a streak going).
* Single choice and true/false: the one correct choice or nothing.
* Type answer: full credit when the typed text matches one of the accepted answers, ignoring
  case, accents and spaces (``partyquiz_core.matching``); nothing otherwise.
* Ordering: full credit for exactly the right order, nothing for any other (no partial
  credit: two swapped items are as wrong as a reversed list).
* Slider: full credit within the tolerance of the right number. Outside it, partial credit
  that starts at half and falls linearly to nothing a quarter of the scale further out:
  with ``d`` the distance beyond the tolerance and ``R = max - min``, ``fraction = max(0,
  R - 4 d) / (2 R)``. Only a pick within the tolerance is *correct*.
* Poll questions (and info slides, which take no answers) score nothing, and neither break
  nor extend a streak, answered or not.
* Streak: a correct answer adds one, anything else (wrong, partial, no answer) resets it to 0.
  With ``ScoringRules.streak_bonus`` a correct answer that makes a streak of ``n >= 2`` earns
  ``min(streak_step * (n - 1), streak_cap)`` extra, only on questions that award points.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from partyquiz_core.quiz import UNSCORED_KINDS, Question, QuestionKind

FULL_POINTS_SECONDS = 0.5


class ScoringRules(BaseModel):
    """Per-game scoring options; the defaults match Kahoot's classic scoring (no streak bonus).

    Saved with every game: fields it does not know (from a newer version) are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    streak_bonus: bool = False
    """Award ``streak_step`` extra points per consecutive correct answer beyond the first."""
    streak_step: int = Field(default=100, ge=0, le=10_000)
    """Bonus points per streak step (points)."""
    streak_cap: int = Field(default=500, ge=0, le=100_000)
    """Largest bonus a single answer can earn from its streak (points)."""


class ScoredAnswer(NamedTuple):
    """What an answer is worth: ``points`` includes any streak bonus; ``streak`` is the new one."""

    correct: bool
    fraction: float
    points: int
    streak: int


def round_half_up(value: float) -> int:
    """Round to the nearest integer, halves up (for the non-negative points here)."""
    return math.floor(value + 0.5)


def _elapsed_ms(elapsed: float, time_limit: int) -> int:
    return min(max(round(elapsed * 1000), 0), time_limit * 1000)


def _time_factor(elapsed: float, time_limit: int) -> tuple[int, int]:
    """Return the time factor as an exact ratio ``(numerator, denominator)``."""
    limit_ms = time_limit * 1000
    t_ms = _elapsed_ms(elapsed, time_limit)
    if t_ms < FULL_POINTS_SECONDS * 1000:
        return 1, 1
    return 2 * limit_ms - t_ms, 2 * limit_ms


def time_factor(elapsed: float, time_limit: int) -> float:
    """Return the share of points a correct answer keeps after ``elapsed`` seconds."""
    num, den = _time_factor(elapsed, time_limit)
    return num / den


def _credit(question: Question, answer: Collection[int]) -> tuple[int, int]:
    """Return the credit as an exact ratio ``(numerator, denominator)``.

    ``answer`` is what a game records: the chosen choices (any order), the items in the
    player's order (ordering), ``(position,)`` on the scale (slider), or ``(i,)`` for the
    accepted answer the typed text matched and ``()`` for none (type answer).
    """
    kind = question.kind
    if kind in UNSCORED_KINDS:
        return 0, 1
    if kind is QuestionKind.TYPE_ANSWER:
        return (1 if answer else 0), 1
    if kind is QuestionKind.ORDERING:
        return (1 if tuple(answer) == tuple(range(len(question.choices))) else 0), 1
    if kind is QuestionKind.SLIDER:
        slider = question.slider
        assert slider is not None
        (position,) = answer
        beyond = abs(position - slider.answer_position) - slider.tolerance_steps
        if beyond <= 0:
            return 1, 1
        return max(0, slider.steps - 4 * beyond), 2 * slider.steps
    chosen = frozenset(answer)
    correct = frozenset(question.correct)
    if kind is QuestionKind.MULTIPLE:
        right = len(chosen & correct)
        wrong = len(chosen) - right
        return max(0, right - wrong), len(correct)
    return (1 if chosen == correct else 0), 1


def credit(question: Question, answer: Collection[int]) -> float:
    """Return the fraction of the question's points an answer deserves (0..1); see
    ``_credit`` for the recorded form of each kind's answer."""
    num, den = _credit(question, answer)
    return num / den


def is_fully_correct(question: Question, answer: Collection[int]) -> bool:
    """Whether ``answer`` is entirely right: every correct choice and no wrong one, the exact
    order, a number within the tolerance, an accepted text (never on a poll). Only such an
    answer keeps a streak going."""
    if question.kind in UNSCORED_KINDS:
        return False
    credit_num, credit_den = _credit(question, answer)
    return credit_num == credit_den


def streak_bonus(streak: int, rules: ScoringRules) -> int:
    """Return the bonus a correct answer that makes a streak of ``streak`` earns."""
    if not rules.streak_bonus or streak < 2:
        return 0
    return min(rules.streak_step * (streak - 1), rules.streak_cap)


def streak_after(question: Question, streak: int, *, correct: bool) -> int:
    """Return the streak after a question: a poll leaves it as it was, a fully correct answer
    extends it, anything else (wrong, partial, no answer) ends it."""
    if question.kind in UNSCORED_KINDS:
        return streak
    return streak + 1 if correct else 0


def score_answer(
    question: Question,
    answer: Collection[int],
    elapsed: float,
    streak: int,
    rules: ScoringRules,
) -> ScoredAnswer:
    """Score ``answer`` (in its recorded form) given after ``elapsed`` seconds by a player on
    a ``streak``."""
    if question.kind in UNSCORED_KINDS:
        return ScoredAnswer(correct=False, fraction=0.0, points=0, streak=streak)
    credit_num, credit_den = _credit(question, answer)
    correct = credit_num == credit_den
    new_streak = streak_after(question, streak, correct=correct)
    base = question.base_points
    points = 0
    if credit_num and base:
        time_num, time_den = _time_factor(elapsed, question.time_limit_seconds)
        # round_half_up(base * credit * time) in integers: floor((2a + b) / 2b) for a/b.
        a = base * credit_num * time_num
        b = credit_den * time_den
        points = (2 * a + b) // (2 * b)
        if correct:
            points += streak_bonus(new_streak, rules)
    return ScoredAnswer(
        correct=correct, fraction=credit_num / credit_den, points=points, streak=new_streak
    )


def score_missed(question: Question, streak: int) -> ScoredAnswer:
    """Score a player who did not answer: nothing, and the streak ends (except on polls)."""
    return ScoredAnswer(
        correct=False, fraction=0.0, points=0, streak=streak_after(question, streak, correct=False)
    )
