"""Final results of a game: per player, per question and per answer, ready to be stored.

Derived from a ``GameState`` (usually an ended one) and nothing else; it does not write
anywhere. Players the host kicked are left out everywhere, so every answer row refers to a
player row; the question statistics count the answers of the players listed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from partyquiz_core.game import GameState, ranked_players
from partyquiz_core.ids import GameId, PlayerId
from partyquiz_core.protocol import EndReason
from partyquiz_core.quiz import CHOICE_KINDS, UNSCORED_KINDS, Question, QuestionKind
from partyquiz_core.scoring import credit, is_fully_correct


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlayerResult(_Result):
    player_id: PlayerId
    nickname: str
    rank: int
    score: int
    answered: int  # questions answered
    correct: int  # questions answered fully correctly (polls never count)


class QuestionResult(_Result):
    index: int
    text: str
    kind: QuestionKind
    answered: int
    correct: int | None  # fully correct answers; None for polls
    # Answers per choice; type answer, slider and ordering: [right, partly right, wrong].
    distribution: list[int]
    average_elapsed: float | None  # seconds; None when nobody answered


class AnswerRow(_Result):
    """One answer: ``choices`` are the picked choices, or an ordering question's items in the
    player's order; ``text`` is what was typed (type answer), ``value`` the number picked
    (slider)."""

    question_index: int
    player_id: PlayerId
    choices: list[int]
    text: str | None = None
    value: float | None = None
    elapsed: float
    points: int
    correct: bool | None  # None for polls


class GameResults(_Result):
    game_id: GameId
    title: str
    ended_reason: EndReason | None
    players: list[PlayerResult]  # in rank order (score, then join order)
    questions: list[QuestionResult]  # closed questions only, in play order
    answers: list[AnswerRow]


def _given(question: Question, recorded: tuple[int, ...], typed: str | None) -> dict[str, Any]:
    """An answer's ``choices``, ``text`` and ``value`` from its recorded form."""
    if question.kind is QuestionKind.TYPE_ANSWER:
        return {"choices": [], "text": typed}
    if question.kind is QuestionKind.SLIDER:
        assert question.slider is not None
        return {"choices": [], "value": question.slider.value_at(recorded[0])}
    return {"choices": list(recorded)}


def final_results(state: GameState) -> GameResults:
    """Return everything worth keeping about ``state``'s game."""
    answered: dict[PlayerId, int] = dict.fromkeys(state.players, 0)
    correct: dict[PlayerId, int] = dict.fromkeys(state.players, 0)
    questions: list[QuestionResult] = []
    rows: list[AnswerRow] = []
    for entry in state.log:
        question = state.quiz.questions[entry.index]
        is_poll = question.kind in UNSCORED_KINDS
        by_choice = question.kind in CHOICE_KINDS
        distribution = [0] * (len(question.choices) if by_choice else 3)
        n_answered = n_correct = 0
        total_elapsed = 0.0
        for player_id, record in entry.answers.items():
            if player_id not in answered:
                continue  # kicked
            right = None if is_poll else is_fully_correct(question, record.choices)
            n_answered += 1
            total_elapsed += record.elapsed
            answered[player_id] += 1
            if right:
                n_correct += 1
                correct[player_id] += 1
            if by_choice:
                for choice in record.choices:
                    distribution[choice] += 1
            else:
                distribution[0 if right else 1 if credit(question, record.choices) else 2] += 1
            rows.append(
                AnswerRow(
                    question_index=entry.index,
                    player_id=player_id,
                    elapsed=record.elapsed,
                    points=record.points,
                    correct=right,
                    **_given(question, record.choices, entry.texts.get(player_id)),
                )
            )
        questions.append(
            QuestionResult(
                index=entry.index,
                text=question.text,
                kind=question.kind,
                answered=n_answered,
                correct=None if is_poll else n_correct,
                distribution=distribution,
                average_elapsed=round(total_elapsed / n_answered, 3) if n_answered else None,
            )
        )
    players = [
        PlayerResult(
            player_id=player.id,
            nickname=player.nickname,
            rank=rank,
            score=tally.score,
            answered=answered[player.id],
            correct=correct[player.id],
        )
        for player, tally, rank in ranked_players(state)
    ]
    rows.sort(key=lambda r: (r.question_index, state.players[r.player_id].seq))
    return GameResults(
        game_id=state.game_id,
        title=state.quiz.title,
        ended_reason=state.ended_reason,
        players=players,
        questions=questions,
        answers=rows,
    )
