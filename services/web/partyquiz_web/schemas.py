"""Request and response bodies of the HTTP API, named for their role.

Owns the public shapes (``*Create``, ``*Public``, ``*Summary``) and the internal contract
bodies the game service sends. Quizzes themselves use ``partyquiz_core.quiz.Quiz`` as is:
it is the documented import/export format. No database or HTTP code here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from partyquiz_core.quiz import QuestionKind, Quiz

GameStatus = Literal["created", "running", "ended"]

# Control characters (NUL above all: PostgreSQL text cannot hold it) never reach the database.
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        max_length=254,
        pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$",
    ),
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80, pattern=_NO_CONTROL),
]
ResourceId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
PlayerIdText = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_NO_CONTROL)]
NicknameText = Annotated[str, StringConstraints(max_length=64, pattern=_NO_CONTROL)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostCreate(_Body):
    email: Email
    password: Password
    display_name: DisplayName | None = None


class LoginRequest(_Body):
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class HostPublic(BaseModel):
    id: str
    email: str
    display_name: str
    created_at: datetime


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type name
    expires_in: int = Field(description="Seconds until the token expires.")


class QuizSummary(BaseModel):
    id: str
    title: str
    question_count: int
    created_at: datetime
    updated_at: datetime


class SampleSummary(BaseModel):
    name: str = Field(description="Stable name; copy it with POST /api/quizzes/samples/{name}.")
    title: str
    description: str
    question_count: int


class QuizPublic(QuizSummary):
    quiz: Quiz


class GameCreate(_Body):
    quiz_id: ResourceId


class GameCreated(BaseModel):
    game_id: str
    join_code: str
    status: GameStatus
    host_token: str = Field(description="Present to the game service as the host (12 h).")
    ws_url: str
    join_url: str = Field(description="The link (and QR code) players join with.")
    created_at: datetime


class HostToken(BaseModel):
    game_id: str
    join_code: str
    host_token: str = Field(description="Present to the game service as the host (12 h).")
    ws_url: str
    join_url: str = Field(description="The link (and QR code) players join with.")


class GameSummary(BaseModel):
    game_id: str
    join_code: str
    quiz_id: str | None
    quiz_title: str
    status: GameStatus
    player_count: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


class PlayerAnswer(BaseModel):
    question_index: int
    choices: list[int] = Field(
        description="The picked choices; ordering: every item, in the player's order."
    )
    text: str | None = Field(default=None, description="Type answer: what the player typed.")
    value: float | None = Field(default=None, description="Slider: the number picked.")
    correct: bool
    points: int
    elapsed: float


class PlayerResult(BaseModel):
    player_id: str
    nickname: str
    score: int
    rank: int
    correct_answers: int
    answers: list[PlayerAnswer]


class QuestionResult(BaseModel):
    index: int
    text: str
    kind: QuestionKind
    correct: list[int] = Field(
        description="The correct choices; ordering: every item, in the right order."
    )
    answered: int
    answered_correctly: int
    average_elapsed: float | None
    choice_counts: list[int] = Field(
        description="How many players picked each choice (empty for the kinds without picks)."
    )


class GameDetail(GameSummary):
    players: list[PlayerResult]
    questions: list[QuestionResult]


class CodeLookup(BaseModel):
    game_id: str
    join_code: str
    status: GameStatus
    ws_url: str


class HealthStatus(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    failing: list[str] = []


# Internal contract with the game service.


class InternalGame(BaseModel):
    game_id: str
    join_code: str
    status: GameStatus
    quiz: Quiz
    host_id: str


class StartedGames(BaseModel):
    game_ids: Annotated[
        list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=1000)
    ]


class ResultPlayer(BaseModel):
    player_id: PlayerIdText
    nickname: NicknameText
    score: int
    rank: Annotated[int, Field(ge=1)]


class ImagePublic(BaseModel):
    id: str = Field(description="The SHA-256 of the stored image (hex): what a quiz refers to.")
    url: str = Field(description="Where it is served, cached for a year.")
    media_type: str
    width: int
    height: int


class ResultAnswer(BaseModel):
    player_id: PlayerIdText
    question_index: Annotated[int, Field(ge=0)]
    choices: list[int]
    text: Annotated[str, StringConstraints(max_length=60, pattern=_NO_CONTROL)] | None = None
    value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    elapsed: Annotated[float, Field(ge=0)]
    correct: bool
    points: int


class GameResults(BaseModel):
    ended_at: float
    players: list[ResultPlayer]
    answers: list[ResultAnswer]
