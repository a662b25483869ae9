"""The wire protocol: every message a client and the game service exchange, as pydantic models.

Owns message shapes, their ``type`` discriminators and size limits; docs/protocol.md documents
them. It holds no game rules (``partyquiz_core.game`` builds the server messages) and does no
I/O. Every server message carries ``version``, the game state version it reflects, so clients
drop anything older than what they have shown. Times are server epoch seconds (floats).

Deviations from the agreed outline, kept small: ``lobby`` carries the change (``joined``,
``left``, ``player_count``) rather than the whole list, which is in ``state``/``host_welcome``;
``PersonalResult`` adds ``answered`` and its ``correct`` is ``None`` on polls; ``pong`` echoes
the client's ``t`` with ``server_now`` so clients can estimate their clock offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Literal, NamedTuple, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from partyquiz_core.errors import ValidationError
from partyquiz_core.ids import GameId, PlayerId
from partyquiz_core.quiz import MAX_CHOICES, MAX_TYPED_ANSWER_CHARS, PointsMode, QuestionKind

MAX_FRAME_BYTES = 4096

# Tokens are checked by the service that verifies them: an empty or oversized one is refused as
# ``token_invalid`` there, like any other token that does not verify, not as a malformed frame.
MAX_TOKEN_CHARS = 2048
ShortText = Annotated[str, StringConstraints(max_length=64)]
# A nickname is limited in grapheme clusters (``partyquiz_core.nicknames``); this only bounds
# what a frame may carry, room for 20 joined emoji of up to 10 code points each.
NicknameText = Annotated[str, StringConstraints(max_length=256)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Phase(StrEnum):
    LOBBY = "lobby"
    QUESTION = "question"  # open: answers are accepted until the deadline
    REVEAL = "reveal"  # correct choices, distribution and personal results shown
    LEADERBOARD = "leaderboard"
    PODIUM = "podium"
    ENDED = "ended"


class EndReason(StrEnum):
    FINISHED = "finished"  # the host went past the podium
    ENDED_BY_HOST = "ended_by_host"  # the host stopped the game early


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------------------------
# Client -> server


class _ClientMessage(_Message):
    """What a client sends is read strictly: a field takes exactly the JSON type the protocol
    names (``"0"``, ``0.0`` or ``true`` are not the integer 0), and numbers are finite."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class JoinMsg(_ClientMessage):
    """A player joins a game with the code on the big screen."""

    type: Literal["join"] = "join"
    code: ShortText
    nickname: NicknameText
    device_id: Id


class ResumeMsg(_ClientMessage):
    """A player reconnects with the resume token from ``welcome``."""

    type: Literal["resume"] = "resume"
    resume_token: str


class HostMsg(_ClientMessage):
    """The host authenticates with the host token issued by the web service."""

    type: Literal["host"] = "host"
    host_token: str


class AnswerMsg(_ClientMessage):
    """A player answers the open question: indices into its ``choices`` (the picked ones, or
    all of them in the player's order for an ordering question), the ``text`` typed for a
    type-answer question, or the ``value`` picked on a slider."""

    type: Literal["answer"] = "answer"
    question_index: int = Field(ge=0, le=10_000)
    choices: list[Annotated[int, Field(ge=0, le=1000)]] = Field(
        default_factory=list, max_length=MAX_CHOICES
    )
    # A little room beyond the limit, so a long answer is refused with words, not as a frame.
    text: str | None = Field(default=None, max_length=4 * MAX_TYPED_ANSWER_CHARS)
    value: float | None = None


class _HostCommandMsg(_ClientMessage):
    """A host command; ``version`` is the state version of the view it was issued from.

    A command that moves the game on (start, next, skip, pause, resume_game) issued from a view
    of an earlier phase is refused with ``stale_command`` and changes nothing: a double-click,
    or a second host screen, never skips a phase. Without ``version`` nothing is checked.
    """

    version: int | None = Field(default=None, ge=0)


class StartMsg(_HostCommandMsg):
    type: Literal["start"] = "start"


class NextMsg(_HostCommandMsg):
    type: Literal["next"] = "next"


class SkipMsg(_HostCommandMsg):
    type: Literal["skip"] = "skip"


class PauseMsg(_HostCommandMsg):
    type: Literal["pause"] = "pause"


class ResumeGameMsg(_HostCommandMsg):
    type: Literal["resume_game"] = "resume_game"


class LockMsg(_HostCommandMsg):
    type: Literal["lock"] = "lock"


class UnlockMsg(_HostCommandMsg):
    type: Literal["unlock"] = "unlock"


class KickMsg(_HostCommandMsg):
    type: Literal["kick"] = "kick"
    player_id: Id


class EndMsg(_HostCommandMsg):
    type: Literal["end"] = "end"


class PingMsg(_ClientMessage):
    """Keep-alive; ``t`` is the client's own clock, echoed back in ``pong``."""

    type: Literal["ping"] = "ping"
    t: float | None = None


ClientMessage: TypeAlias = Annotated[
    JoinMsg
    | ResumeMsg
    | HostMsg
    | AnswerMsg
    | StartMsg
    | NextMsg
    | SkipMsg
    | PauseMsg
    | ResumeGameMsg
    | LockMsg
    | UnlockMsg
    | KickMsg
    | EndMsg
    | PingMsg,
    Field(discriminator="type"),
]
ClientMessageAdapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)

HOST_MESSAGE_TYPES = frozenset(
    {"start", "next", "skip", "pause", "resume_game", "lock", "unlock", "kick", "end"}
)


def parse_client_message(data: str | bytes) -> ClientMessage:
    """Parse one frame; raise ``ValidationError`` (code ``bad_frame``) if it is not a message."""
    size = len(data.encode()) if isinstance(data, str) else len(data)
    if size > MAX_FRAME_BYTES:
        raise ValidationError(f"frames are at most {MAX_FRAME_BYTES} bytes", code="too_large")
    try:
        return ClientMessageAdapter.validate_json(data)
    except PydanticValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "frame"
        raise ValidationError(f"{where}: {first['msg']}", code="bad_frame") from None


# --------------------------------------------------------------------------------------------
# Pieces of server messages


def _absent(value: object) -> bool:
    return value is None


class SliderView(_Message):
    """A slider's scale as players see it: never the right number or the tolerance."""

    min: float
    max: float
    step: float
    unit: str


class QuestionView(_Message):
    """A question as players see it while it is open: never the correct choices (an ordering
    question's items come shuffled, a type-answer question has no choices)."""

    index: int
    total: int
    text: str
    kind: QuestionKind
    choices: list[str]
    time_limit: int
    points: PointsMode
    slider: SliderView | None = Field(default=None, exclude_if=_absent)  # slider questions
    # The question's picture (an address on the web service): always to the host's screens,
    # to players only when the quiz shows pictures on phones.
    image: str | None = Field(default=None, exclude_if=_absent)


class PlayerSummary(_Message):
    player_id: PlayerId
    nickname: str


class LeaderboardEntry(_Message):
    rank: int
    player_id: PlayerId
    nickname: str
    score: int
    streak: int


class PersonalResult(_Message):
    """One player's result for one question, with their total and rank after it."""

    answered: bool
    correct: bool | None  # None: a poll, nothing was right or wrong
    points: int
    score: int
    rank: int
    streak: int


class ResultRow(NamedTuple):
    """One player's result inside a reveal: ``PersonalResult``'s fields, in a compact tuple.

    A reveal holds one per player (10 000 of them in a big game), so it is a plain tuple,
    built without validation by the state machine and sent as a ``PersonalResult``.
    """

    answered: bool
    correct: bool | None
    points: int
    score: int
    rank: int
    streak: int

    def result(self) -> PersonalResult:
        return PersonalResult(**self._asdict())


class Standing(_Message):
    """A player's own place in the game right now."""

    player_id: PlayerId
    nickname: str
    score: int
    rank: int
    streak: int


class RevealView(_Message):
    correct: list[int]  # ordering: every item, in the right order
    distribution: list[int]  # answers per choice; type answer, slider, ordering: see RevealMsg
    answered: int
    total: int
    accepted: list[str] | None = Field(default=None, exclude_if=_absent)  # type answer
    correct_value: float | None = Field(default=None, exclude_if=_absent)  # slider
    tolerance: float | None = Field(default=None, exclude_if=_absent)  # slider


class Snapshot(_Message):
    """Everything a (re)connecting client needs to draw the current phase.

    ``me``/``my_answer``/``my_result`` only for players, ``players`` only for the host.
    """

    game_id: GameId
    phase: Phase
    server_now: float
    joining_locked: bool
    player_count: int
    question_count: int
    question: QuestionView | None = None  # the current or last question
    deadline: float | None = None  # while open and not paused
    opens_at: float | None = None  # when answers open (after the read pause), while not paused
    shows_at: float | None = None  # when the question is shown (before: get ready)
    remaining: float | None = None  # seconds left, read pause included (frozen while paused)
    paused: bool = False
    answered: int | None = None  # answers to the open question
    reveal: RevealView | None = None  # in the reveal phase
    leaderboard: list[LeaderboardEntry] | None = None  # in leaderboard and podium
    ended_reason: EndReason | None = None
    me: Standing | None = None
    my_answer: list[int] | None = None  # the player's recorded choices for the current question
    my_answer_text: str | None = Field(default=None, exclude_if=_absent)  # type answer
    my_answer_value: float | None = Field(default=None, exclude_if=_absent)  # slider
    # The recorded answer time of ``my_answer``: a receipt lost with a dropped connection
    # is recovered from the snapshot on resume.
    my_answer_elapsed: float | None = None
    my_result: PersonalResult | None = None  # in the reveal phase
    players: list[PlayerSummary] | None = None
    host_connected: bool = True  # whether a host screen (or remote) is connected
    # The quiz's cover picture, for the lobby: to hosts; to players as ``QuestionView.image``.
    cover: str | None = Field(default=None, exclude_if=_absent)


# --------------------------------------------------------------------------------------------
# Server -> client


class _ServerMessage(_Message):
    version: int = Field(ge=0)


class WelcomeMsg(_ServerMessage):
    """A player is in (joined or resumed); keep ``resume_token`` to come back."""

    type: Literal["welcome"] = "welcome"
    player_id: PlayerId
    nickname: str
    resume_token: str
    state: Snapshot


class HostWelcomeMsg(_ServerMessage):
    type: Literal["host_welcome"] = "host_welcome"
    join_code: str | None = None
    state: Snapshot


class LobbyMsg(_ServerMessage):
    """Who joined or left since the last update (to the host)."""

    type: Literal["lobby"] = "lobby"
    joined: list[PlayerSummary] = Field(default_factory=list)
    left: list[PlayerId] = Field(default_factory=list)
    player_count: int
    joining_locked: bool


class QuestionMsg(_ServerMessage):
    """A question comes up: shown from ``shows_at`` (before it, "get ready"), answers open at
    ``opens_at`` and close at ``deadline`` (server clock; see ``server_now``)."""

    type: Literal["question"] = "question"
    index: int
    total: int
    text: str
    kind: QuestionKind
    choices: list[str]
    time_limit: int
    points: PointsMode
    deadline: float
    server_now: float
    opens_at: float
    shows_at: float
    slider: SliderView | None = Field(default=None, exclude_if=_absent)  # slider questions
    image: str | None = Field(default=None, exclude_if=_absent)  # as in QuestionView


class AnswerReceiptMsg(_ServerMessage):
    """The answer counts; ``elapsed`` is the time recorded for scoring (seconds). It repeats
    the answer as recorded, and never says whether it is right."""

    type: Literal["answer_receipt"] = "answer_receipt"
    question_index: int
    choices: list[int]
    elapsed: float
    text: str | None = Field(default=None, exclude_if=_absent)  # type answer
    value: float | None = Field(default=None, exclude_if=_absent)  # slider, on the scale


class AnswerCountMsg(_ServerMessage):
    type: Literal["answer_count"] = "answer_count"
    question_index: int
    answered: int
    total: int


class PersonalResultMsg(_ServerMessage):
    type: Literal["personal_result"] = "personal_result"
    question_index: int
    result: PersonalResult


class RevealMsg(_ServerMessage):
    """The question closed: correct choices, distribution, and everyone's own result.

    It travels once per game; each game-service replica sends ``public()`` to screens and
    ``personal(player_id)`` to each of its players.
    """

    type: Literal["reveal"] = "reveal"
    question_index: int
    correct: list[int]  # ordering: every item, in the right order
    # Answers per choice; type answer, slider and ordering: [right, partly right, wrong].
    distribution: list[int]
    answered: int
    total: int
    accepted: list[str] | None = Field(default=None, exclude_if=_absent)  # type answer
    correct_value: float | None = Field(default=None, exclude_if=_absent)  # slider
    tolerance: float | None = Field(default=None, exclude_if=_absent)  # slider
    results: dict[PlayerId, ResultRow] = Field(default_factory=dict)

    def public(self) -> RevealMsg:
        """Return this reveal without the per-player results."""
        return self.model_copy(update={"results": {}})

    def personal(self, player_id: PlayerId) -> PersonalResultMsg | None:
        """Return ``player_id``'s own result, or None if they were not in the game."""
        row = self.results.get(player_id)
        if row is None:
            return None
        return PersonalResultMsg(
            version=self.version, question_index=self.question_index, result=row.result()
        )

    def split(self) -> Iterator[tuple[PlayerId, PersonalResultMsg]]:
        """Yield every player's own result message."""
        for player_id, row in self.results.items():
            yield (
                player_id,
                PersonalResultMsg(
                    version=self.version, question_index=self.question_index, result=row.result()
                ),
            )


class LeaderboardMsg(_ServerMessage):
    type: Literal["leaderboard"] = "leaderboard"
    question_index: int
    entries: list[LeaderboardEntry]
    player_count: int


class PodiumMsg(_ServerMessage):
    type: Literal["podium"] = "podium"
    entries: list[LeaderboardEntry]
    player_count: int


class PausedMsg(_ServerMessage):
    type: Literal["paused"] = "paused"
    question_index: int
    remaining: float


class ResumedMsg(_ServerMessage):
    type: Literal["resumed"] = "resumed"
    question_index: int
    deadline: float
    remaining: float
    server_now: float


class KickedMsg(_ServerMessage):
    """The host removed this player; the device cannot join this game again."""

    type: Literal["kicked"] = "kicked"


class EndedMsg(_ServerMessage):
    type: Literal["ended"] = "ended"
    reason: EndReason


class ErrorMsg(_ServerMessage):
    """A frame was refused; ``code`` is one of the stable codes in docs/protocol.md."""

    type: Literal["error"] = "error"
    version: int = Field(default=0, ge=0)
    code: str
    message: str


class PongMsg(_ServerMessage):
    type: Literal["pong"] = "pong"
    t: float | None = None
    server_now: float


class HostStatusMsg(_ServerMessage):
    """To everyone: the host's last screen lost its connection, or a host screen is back."""

    type: Literal["host_status"] = "host_status"
    connected: bool


class StateMsg(_ServerMessage):
    """The whole current phase, for a client that (re)connects or fell behind."""

    type: Literal["state"] = "state"
    state: Snapshot


ServerMessage: TypeAlias = Annotated[
    WelcomeMsg
    | HostWelcomeMsg
    | LobbyMsg
    | QuestionMsg
    | AnswerReceiptMsg
    | AnswerCountMsg
    | RevealMsg
    | PersonalResultMsg
    | LeaderboardMsg
    | PodiumMsg
    | PausedMsg
    | ResumedMsg
    | KickedMsg
    | EndedMsg
    | ErrorMsg
    | PongMsg
    | StateMsg
    | HostStatusMsg,
    Field(discriminator="type"),
]
ServerMessageAdapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)
