"""Turn a finished game's stored rows into per-player and per-question results and CSV.

Pure: works on the quiz snapshot and plain rows handed in, never touches the database.
CSV cells that a spreadsheet would run as a formula are neutralised (nicknames come from
players, so they are untrusted).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from partyquiz_core.quiz import CHOICE_KINDS, QuestionKind, Quiz
from partyquiz_web.schemas import PlayerAnswer, PlayerResult, QuestionResult

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class PlayerRow:
    player_id: str
    nickname: str
    score: int
    rank: int


@dataclass(frozen=True)
class AnswerRow:
    player_id: str
    question_index: int
    choices: Sequence[int]
    elapsed: float
    correct: bool
    points: int
    text: str | None = None
    value: float | None = None


def player_results(
    players: Sequence[PlayerRow], answers: Sequence[AnswerRow]
) -> list[PlayerResult]:
    """Each player's standing with their answers, best rank first."""
    by_player: dict[str, list[AnswerRow]] = defaultdict(list)
    for answer in answers:
        by_player[answer.player_id].append(answer)
    results = []
    for p in sorted(players, key=lambda p: (p.rank, p.nickname.lower(), p.player_id)):
        mine = sorted(by_player.get(p.player_id, []), key=lambda a: a.question_index)
        results.append(
            PlayerResult(
                player_id=p.player_id,
                nickname=p.nickname,
                score=p.score,
                rank=p.rank,
                correct_answers=sum(1 for a in mine if a.correct),
                answers=[
                    PlayerAnswer(
                        question_index=a.question_index,
                        choices=list(a.choices),
                        text=a.text,
                        value=a.value,
                        correct=a.correct,
                        points=a.points,
                        elapsed=a.elapsed,
                    )
                    for a in mine
                ],
            )
        )
    return results


def question_results(quiz: Quiz, answers: Sequence[AnswerRow]) -> list[QuestionResult]:
    """Per question: how many answered, how many correctly, how fast, which choices."""
    results = []
    for index, question in enumerate(quiz.questions):
        mine = [a for a in answers if a.question_index == index]
        by_choice = question.kind in CHOICE_KINDS
        counts = [0] * (len(question.choices) if by_choice else 0)
        for answer in mine if by_choice else ():
            for choice in set(answer.choices):
                if 0 <= choice < len(counts):
                    counts[choice] += 1
        correct = list(question.correct)
        if question.kind is QuestionKind.ORDERING:
            correct = list(range(len(question.choices)))
        results.append(
            QuestionResult(
                index=index,
                text=question.text,
                kind=question.kind,
                correct=correct,
                answered=len(mine),
                answered_correctly=sum(1 for a in mine if a.correct),
                average_elapsed=(
                    round(sum(a.elapsed for a in mine) / len(mine), 3) if mine else None
                ),
                choice_counts=counts,
            )
        )
    return results


def safe_cell(value: str) -> str:
    """Prefix text a spreadsheet would evaluate as a formula with a quote."""
    return f"'{value}" if value.startswith(_FORMULA_PREFIXES) else value


def _answer_text(quiz: Quiz, index: int, answer: PlayerAnswer) -> str:
    """An answer in words: the choices picked, the items in order, the text typed or the
    number picked (with the slider's unit)."""
    question = quiz.questions[index]
    if question.kind is QuestionKind.TYPE_ANSWER:
        return answer.text or ""
    if question.kind is QuestionKind.SLIDER:
        if answer.value is None:
            return ""
        unit = question.slider.unit if question.slider is not None else ""
        return f"{answer.value:g} {unit}".strip()
    texts = question.choices
    picked = [texts[c].text for c in answer.choices if 0 <= c < len(texts)]
    return (" > " if question.kind is QuestionKind.ORDERING else " | ").join(picked)


def render_csv(quiz: Quiz, players: Sequence[PlayerResult]) -> str:
    """One row per player: rank, nickname, score, correct answers (polls never count), then
    the answer given (choices, items in order, text typed or number) and the points earned
    per question.

    Starts with a UTF-8 byte order mark so spreadsheet programs read accented and emoji
    nicknames as UTF-8 rather than the system's legacy code page.
    """
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    question_columns = [
        column
        for i in range(len(quiz.questions))
        for column in (f"q{i + 1}_answer", f"q{i + 1}_points")
    ]
    writer.writerow(["rank", "nickname", "score", "correct_answers", *question_columns])
    for player in players:
        given = {a.question_index: a for a in player.answers}
        cells: list[str | int] = []
        for i in range(len(quiz.questions)):
            answer = given.get(i)
            if answer is None:
                cells += ["", ""]
            else:
                cells += [safe_cell(_answer_text(quiz, i, answer)), answer.points]
        writer.writerow(
            [player.rank, safe_cell(player.nickname), player.score, player.correct_answers, *cells]
        )
    return out.getvalue()
