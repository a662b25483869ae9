"""Quizzes and questions: the content a host authors and a game plays.

Owns the shape and the authoring rules of a quiz (question kinds, choices, which choices are
correct, time limits, read-the-question pauses, point modes) and the quiz's game settings
(streak bonus, leaderboard size, auto-advance, get-ready countdown). It is also the documented
JSON import/export format. It knows nothing about games in progress or scoring.

What a person sends is read strictly (an unknown field is refused: a typo never disappears);
what was stored is read with ``read_stored_quiz``, which ignores fields it does not know, so a
version rolled back, or an older replica during a rolling update, reads what a newer one wrote.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

MIN_TIME_LIMIT_SECONDS = 5
MAX_TIME_LIMIT_SECONDS = 240
MIN_CHOICES = 2
MAX_CHOICES = 6
MAX_QUESTIONS = 100
DEFAULT_READ_SECONDS = 5
MAX_READ_SECONDS = 30

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

STORED: dict[str, Any] = {"stored": True}
"""Validation context for stored payloads: unknown fields are dropped instead of refused."""


class _Authored(BaseModel):
    """A part of a quiz: strict as input, tolerant of unknown fields when read as stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_unknown_fields_when_stored(cls, data: Any, info: ValidationInfo) -> Any:
        context = info.context
        if not isinstance(data, dict) or not context or not context.get("stored"):
            return data
        known = cls.model_fields
        if all(key in known for key in data):
            return data
        return {key: value for key, value in data.items() if key in known}


class QuestionKind(StrEnum):
    SINGLE = "single"  # exactly one correct choice
    MULTIPLE = "multiple"  # one or more correct choices; partial credit
    TRUE_FALSE = "true_false"  # choices are exactly "True" and "False"
    POLL = "poll"  # opinion: no correct choice, scores nothing
    INFO = "info"  # a slide between questions (a section title, a fact): no choices, no answers


UNSCORED_KINDS = frozenset({QuestionKind.POLL, QuestionKind.INFO})
"""Kinds that score nothing and neither break nor extend a streak."""


class PointsMode(StrEnum):
    STANDARD = "standard"
    DOUBLE = "double"
    NONE = "none"


POINTS_BY_MODE: dict[PointsMode, int] = {
    PointsMode.STANDARD: 1000,
    PointsMode.DOUBLE: 2000,
    PointsMode.NONE: 0,
}


class Choice(_Authored):
    text: Annotated[Text, StringConstraints(max_length=120)]


class Question(_Authored):
    """One question; ``correct`` holds indices into ``choices``."""

    kind: QuestionKind = QuestionKind.SINGLE
    text: Annotated[Text, StringConstraints(max_length=300)]
    choices: tuple[Choice, ...] = Field(default=(), max_length=MAX_CHOICES, validate_default=True)
    correct: tuple[int, ...] = ()
    time_limit_seconds: int = Field(
        default=20, ge=MIN_TIME_LIMIT_SECONDS, le=MAX_TIME_LIMIT_SECONDS
    )
    points: PointsMode = PointsMode.STANDARD
    read_seconds: int = Field(default=DEFAULT_READ_SECONDS, ge=0, le=MAX_READ_SECONDS)
    """Seconds the question is shown before answers open; the time limit starts after them."""

    @field_validator("choices")
    @classmethod
    def _enough_choices(
        cls, choices: tuple[Choice, ...], info: ValidationInfo
    ) -> tuple[Choice, ...]:
        # ``kind`` is declared first, so it is known here (absent only if it was invalid).
        if info.data.get("kind") is QuestionKind.INFO:
            if choices:
                raise ValueError("an info slide has no choices")
        elif len(choices) < MIN_CHOICES:
            raise ValueError(f"a question needs at least {MIN_CHOICES} choices")
        return choices

    @model_validator(mode="after")
    def _check_correct_choices(self) -> Self:
        n = len(self.choices)
        if self.kind is QuestionKind.INFO:
            if self.correct:
                raise ValueError("an info slide has no correct choice")
            return self
        if any(i < 0 or i >= n for i in self.correct):
            raise ValueError(f"correct choice indices must be between 0 and {n - 1}")
        if len(set(self.correct)) != len(self.correct):
            raise ValueError("correct choice indices must not repeat")
        if self.kind is QuestionKind.POLL:
            if self.correct:
                raise ValueError("a poll question has no correct choice")
        elif self.kind is QuestionKind.MULTIPLE:
            if not self.correct:
                raise ValueError("a multiple-choice question needs at least one correct choice")
        elif len(self.correct) != 1:
            raise ValueError(f"a {self.kind.value} question needs exactly one correct choice")
        if self.kind is QuestionKind.TRUE_FALSE and n != 2:
            raise ValueError("a true/false question has exactly two choices")
        return self

    @property
    def base_points(self) -> int:
        """Points a correct answer earns before the time factor; polls and info slides earn 0."""
        if self.kind in UNSCORED_KINDS:
            return 0
        return POINTS_BY_MODE[self.points]


class QuizSettings(_Authored):
    """How a game of this quiz runs; every field is optional in the quiz format."""

    streak_bonus: bool = False
    """Pay extra points for consecutive fully correct answers (see ``partyquiz_core.scoring``)."""
    leaderboard_size: int = Field(default=5, ge=1, le=50)
    """How many players the leaderboard between questions shows."""
    auto_advance_seconds: int | None = Field(default=None, ge=3, le=120)
    """Move on from the reveal and from the leaderboard by itself after this many seconds;
    None: the host moves on. The podium always waits for the host."""
    get_ready_seconds: int = Field(default=5, ge=0, le=30)
    """The "get ready" countdown before the first question."""


class Quiz(_Authored):
    """A quiz as authored, imported and exported (format version 1)."""

    format_version: int = Field(default=1, ge=1, le=1)
    title: Annotated[Text, StringConstraints(max_length=120)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    questions: tuple[Question, ...] = Field(min_length=1, max_length=MAX_QUESTIONS)
    settings: QuizSettings = QuizSettings()


def read_stored_quiz(data: Any) -> Quiz:
    """Validate a quiz that was stored (a database row, a snapshot, another service's copy),
    ignoring fields this version does not know."""
    if isinstance(data, str | bytes):
        return Quiz.model_validate_json(data, context=STORED)
    return Quiz.model_validate(data, context=STORED)
