"""Quizzes and questions: the content a host authors and a game plays.

Owns the shape and the authoring rules of a quiz (question kinds, choices, which choices are
correct, accepted typed answers, slider scales, items to put in order, time limits,
read-the-question pauses, point modes, pictures) and the quiz's game settings
(streak bonus, leaderboard size, auto-advance, get-ready countdown, pictures on phones).
Pictures are named by the SHA-256 of the stored image (``partyquiz_web.images``); that they
exist is for the web service to check. It is also the documented
JSON import/export format. It knows nothing about games in progress or scoring.

What a person sends is read strictly (an unknown field is refused: a typo never disappears);
what was stored is read with ``read_stored_quiz``, which ignores fields it does not know, so a
version rolled back, or an older replica during a rolling update, reads what a newer one wrote.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from partyquiz_core.matching import answer_key

MIN_TIME_LIMIT_SECONDS = 5
MAX_TIME_LIMIT_SECONDS = 240
MIN_CHOICES = 2
MAX_CHOICES = 6
MAX_QUESTIONS = 100
DEFAULT_READ_SECONDS = 5
MAX_READ_SECONDS = 30
MIN_ORDERING_ITEMS = 3
MAX_ACCEPTED_ANSWERS = 10
MAX_TYPED_ANSWER_CHARS = 60
MAX_SLIDER_STEPS = 10_000
MAX_SLIDER_NUMBER = 1e12  # slider numbers stay within +-this (exact in binary floating point)
MIN_SLIDER_STEP = 1e-6

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

_IMAGE_REF = re.compile(r"(?:/images/)?([0-9a-f]{64})")


def _image_digest(value: Any) -> Any:
    """An image's SHA-256, given as such or as its address (``/images/<sha256>``)."""
    if isinstance(value, str):
        match = _IMAGE_REF.fullmatch(value.strip().lower())
        if match is None:
            raise ValueError("an image is named by its SHA-256 (64 hex digits) or /images/<sha256>")
        return match.group(1)
    return value


ImageDigest = Annotated[str, BeforeValidator(_image_digest)]
"""An uploaded image, by the SHA-256 of its stored content (hex)."""


def image_url(digest: str) -> str:
    """Where an image is served: the address never changes what it shows."""
    return f"/images/{digest}"


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
    TYPE_ANSWER = "type_answer"  # players type the answer; any of ``accepted`` is right
    SLIDER = "slider"  # players pick a number on ``slider``'s scale
    ORDERING = "ordering"  # players put ``choices`` (authored in the right order) in order


UNSCORED_KINDS = frozenset({QuestionKind.POLL, QuestionKind.INFO})
"""Kinds that score nothing and neither break nor extend a streak."""

CHOICE_KINDS = frozenset(
    {QuestionKind.SINGLE, QuestionKind.MULTIPLE, QuestionKind.TRUE_FALSE, QuestionKind.POLL}
)
"""Kinds answered by picking some of the choices (the answer is a set of choice indices)."""

_WITHOUT_CHOICES = frozenset({QuestionKind.INFO, QuestionKind.TYPE_ANSWER, QuestionKind.SLIDER})
_LABELS = {
    QuestionKind.INFO: "an info slide",
    QuestionKind.TYPE_ANSWER: "a type-answer question",
    QuestionKind.SLIDER: "a slider question",
    QuestionKind.ORDERING: "an ordering question",
}


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


def _whole(value: float) -> bool:
    """Whether ``value`` is a whole number, allowing for binary floating point (0.1 + 0.2)."""
    return abs(value - round(value)) <= 1e-6 * max(1.0, abs(value))


def _decimals(value: float) -> int:
    exponent = Decimal(repr(value)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class Slider(_Authored):
    """The scale of a slider question: players pick a number from ``min`` to ``max`` in
    ``step``s; ``answer`` is right, and so is anything within ``tolerance`` of it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    min: float = Field(ge=-MAX_SLIDER_NUMBER, le=MAX_SLIDER_NUMBER)
    max: float = Field(ge=-MAX_SLIDER_NUMBER, le=MAX_SLIDER_NUMBER)
    step: float = Field(default=1, ge=MIN_SLIDER_STEP, le=MAX_SLIDER_NUMBER)
    answer: float = Field(ge=-MAX_SLIDER_NUMBER, le=MAX_SLIDER_NUMBER)
    tolerance: float = Field(default=0, ge=0, le=MAX_SLIDER_NUMBER)
    """How far from ``answer`` a pick still earns full points (a whole number of steps)."""
    unit: Annotated[str, StringConstraints(strip_whitespace=True, max_length=12)] = ""
    """Shown after every number (``km``, ``%``, ``°C``); empty for none."""

    @model_validator(mode="after")
    def _a_scale_of_whole_steps(self) -> Self:
        if self.max <= self.min:
            raise ValueError("max must be greater than min")
        steps = (self.max - self.min) / self.step
        if not _whole(steps):
            raise ValueError("max - min must be a whole number of steps")
        if round(steps) > MAX_SLIDER_STEPS:
            raise ValueError(f"a slider has at most {MAX_SLIDER_STEPS} steps; use a larger step")
        if not self.min <= self.answer <= self.max:
            raise ValueError("the answer must be between min and max")
        if not _whole((self.answer - self.min) / self.step):
            raise ValueError("the answer must be on the scale: min plus a whole number of steps")
        if not _whole(self.tolerance / self.step):
            raise ValueError("the tolerance must be a whole number of steps")
        return self

    @property
    def steps(self) -> int:
        """How many steps the scale has (positions ``0..steps``)."""
        return round((self.max - self.min) / self.step)

    @property
    def answer_position(self) -> int:
        return round((self.answer - self.min) / self.step)

    @property
    def tolerance_steps(self) -> int:
        return round(self.tolerance / self.step)

    def position(self, value: float) -> int:
        """The position on the scale nearest to ``value`` (which must be finite)."""
        return min(max(round((value - self.min) / self.step), 0), self.steps)

    def value_at(self, position: int) -> float:
        """The number at ``position``, rounded to the decimals of ``min`` and ``step``."""
        decimals = max(_decimals(self.min), _decimals(self.step))
        return round(self.min + position * self.step, decimals)


AcceptedAnswer = Annotated[Text, StringConstraints(max_length=MAX_TYPED_ANSWER_CHARS)]


class Question(_Authored):
    """One question; ``correct`` holds indices into ``choices``.

    A type-answer question has ``accepted`` answers instead of choices, a slider question its
    ``slider``, and an ordering question lists its ``choices`` in the right order (players see
    them shuffled).
    """

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
    # Written only when set: a quiz without them is stored exactly as earlier versions wrote it.
    accepted: tuple[AcceptedAnswer, ...] = Field(
        default=(), max_length=MAX_ACCEPTED_ANSWERS, exclude_if=lambda accepted: not accepted
    )
    """Type answer: every answer that counts as right (compared by ``matching.answer_key``)."""
    slider: Slider | None = Field(default=None, exclude_if=lambda slider: slider is None)
    """Slider: the scale, the right number and the tolerance."""
    image: ImageDigest | None = Field(default=None, exclude_if=lambda image: image is None)
    """A picture shown with the question (any kind, info slides too)."""

    @field_validator("choices")
    @classmethod
    def _enough_choices(
        cls, choices: tuple[Choice, ...], info: ValidationInfo
    ) -> tuple[Choice, ...]:
        # ``kind`` is declared first, so it is known here (absent only if it was invalid).
        kind = info.data.get("kind")
        if kind in _WITHOUT_CHOICES:
            if choices:
                raise ValueError(f"{_LABELS[kind]} has no choices")
        elif kind is QuestionKind.ORDERING:
            if len(choices) < MIN_ORDERING_ITEMS:
                raise ValueError(
                    f"an ordering question needs at least {MIN_ORDERING_ITEMS} items to order"
                )
        elif len(choices) < MIN_CHOICES:
            raise ValueError(f"a question needs at least {MIN_CHOICES} choices")
        return choices

    @model_validator(mode="after")
    def _check_correct_choices(self) -> Self:
        n = len(self.choices)
        kind = self.kind
        if kind is not QuestionKind.TYPE_ANSWER and self.accepted:
            raise ValueError("only a type-answer question has accepted answers")
        if kind is not QuestionKind.SLIDER and self.slider is not None:
            raise ValueError("only a slider question has a slider")
        if kind not in CHOICE_KINDS:
            if self.correct:
                what = (
                    "the right order is the order of its items"
                    if kind is QuestionKind.ORDERING
                    else "it has no choices to mark"
                )
                raise ValueError(f"{_LABELS[kind]} has no correct choice indices: {what}")
            if kind is QuestionKind.TYPE_ANSWER:
                self._check_accepted()
            if kind is QuestionKind.SLIDER and self.slider is None:
                raise ValueError("a slider question needs its slider: min, max, step and answer")
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

    def _check_accepted(self) -> None:
        if not self.accepted:
            raise ValueError("a type-answer question needs at least one accepted answer")
        keys = [answer_key(text) for text in self.accepted]
        if not all(keys):
            raise ValueError("an accepted answer needs letters, digits or punctuation")
        if len(set(keys)) != len(keys):
            raise ValueError("accepted answers must differ by more than case, accents and spaces")

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
    images_on_phones: bool = Field(default=False, exclude_if=lambda shown: not shown)
    """Show questions' pictures on players' phones too; off, only the big screen shows them
    (a phone's small screen is for the answers)."""


class Quiz(_Authored):
    """A quiz as authored, imported and exported (format version 1)."""

    format_version: int = Field(default=1, ge=1, le=1)
    title: Annotated[Text, StringConstraints(max_length=120)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    questions: tuple[Question, ...] = Field(min_length=1, max_length=MAX_QUESTIONS)
    settings: QuizSettings = QuizSettings()
    cover: ImageDigest | None = Field(default=None, exclude_if=lambda cover: cover is None)
    """A picture shown in the lobby while players join."""

    def pictures(self) -> list[tuple[str, str]]:
        """Every picture the quiz shows, as (where, digest): ``cover``, ``questions.2.image``."""
        found = [] if self.cover is None else [("cover", self.cover)]
        for number, question in enumerate(self.questions):
            if question.image is not None:
                found.append((f"questions.{number}.image", question.image))
        return found


def read_stored_quiz(data: Any) -> Quiz:
    """Validate a quiz that was stored (a database row, a snapshot, another service's copy),
    ignoring fields this version does not know."""
    if isinstance(data, str | bytes):
        return Quiz.model_validate_json(data, context=STORED)
    return Quiz.model_validate(data, context=STORED)
