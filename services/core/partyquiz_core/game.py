"""The game state machine: one live game as data, and the rules that move it on.

Owns phases, players, answers, deadlines and the outgoing events of each command. Pure: time
comes in as ``now`` (server epoch seconds), ids come in with the commands, nothing is read or
written anywhere. It does not authenticate anyone (the game service checks host tokens).

``apply(state, command, now)`` returns a ``Transition`` with a NEW state and its events and
never mutates its input. States are frozen and copy-on-write: untouched parts (the quiz, the
player map's other buckets) are shared, so an answer among 10 000 players costs microseconds.
An illegal command raises a ``PartyQuizError`` and, being validated before anything is built,
leaves nothing behind. Commands that change nothing (a ``Tick`` before the deadline, a presence
change that is already so) return the same state and no events; every other one bumps
``version`` by exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, NamedTuple, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from partyquiz_core.cowmap import CowMap
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_core.protocol import (
    ClientMessage,
    EndReason,
    Phase,
    ServerMessage,
    Snapshot,
)
from partyquiz_core.quiz import Quiz
from partyquiz_core.scoring import ScoringRules

__all__ = [
    "Answer",
    "AnswerRecord",
    "Command",
    "CommandAdapter",
    "Disconnect",
    "End",
    "EndReason",
    "Event",
    "Everyone",
    "GameSettings",
    "GameState",
    "Host",
    "Join",
    "Kick",
    "LockJoining",
    "Next",
    "Pause",
    "Phase",
    "Player",
    "PlayerState",
    "QuestionLog",
    "Reconnect",
    "Resume",
    "Skip",
    "Start",
    "Tick",
    "Transition",
    "UnlockJoining",
    "apply",
    "command_from_message",
    "host_snapshot",
    "new_game",
    "next_deadline",
    "player_snapshot",
    "validate_nickname",
]

NICKNAME_MAX_LENGTH = 20


class GameSettings(BaseModel):
    """Per-game options, fixed when the game is created."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scoring: ScoringRules = ScoringRules()
    leaderboard_size: int = Field(default=5, ge=1, le=100)
    """How many players the leaderboard and podium show (top N)."""
    max_players: int = Field(default=10_000, ge=1, le=100_000)
    """Joins beyond this are refused with ``game_full``."""
    reveal_seconds: float | None = Field(default=None, gt=0, le=600)
    """Move from reveal to leaderboard on its own after this many seconds; None: the host does."""
    close_when_all_answered: bool = True
    """Close a question as soon as every player has answered instead of waiting for the deadline."""


class PlayerState(BaseModel):
    """One player; ``seq`` is the join order, the tie-break on equal scores."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: PlayerId
    nickname: str
    device_id: DeviceId
    seq: int
    score: int = 0
    streak: int = 0
    connected: bool = True


class AnswerRecord(NamedTuple):
    """One accepted answer; serialised as ``[choices, elapsed, points]`` to stay compact."""

    choices: tuple[int, ...]
    elapsed: float  # seconds, rounded to milliseconds
    points: int  # including any streak bonus


class QuestionLog(BaseModel):
    """The answers of one closed question; never changes once written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    closed_at: float
    answers: CowMap[PlayerId, AnswerRecord]


class GameState(BaseModel):
    """A game, JSON round-trippable (``model_dump_json``/``model_validate_json``).

    Players' answers live in ``answers`` (the current question) and ``log`` (closed questions,
    append-only: a snapshot writer may store closed entries once).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    game_id: GameId
    quiz: Quiz
    settings: GameSettings = GameSettings()
    phase: Phase = Phase.LOBBY
    version: int = 0
    question_index: int = -1
    """The open or last question; -1 before the first."""
    opened_at: float | None = None
    deadline: float | None = None
    """When the open question closes; None while paused and outside the question phase."""
    paused: bool = False
    remaining: float | None = None
    """Seconds left on the open question while paused."""
    revealed_at: float | None = None
    joining_locked: bool = False
    players: CowMap[PlayerId, PlayerState] = Field(default_factory=CowMap)
    next_seq: int = 0
    banned_devices: frozenset[DeviceId] = frozenset()
    answers: CowMap[PlayerId, AnswerRecord] = Field(default_factory=CowMap)
    log: tuple[QuestionLog, ...] = ()
    ended_reason: EndReason | None = None

    # Derived indexes, rebuilt on demand and never serialised.
    _nicknames: CowMap[str, PlayerId] | None = PrivateAttr(default=None)
    _standings: object | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GameState):
            return NotImplemented
        return self.__dict__ == other.__dict__


# --------------------------------------------------------------------------------------------
# Commands


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Join(_Command):
    type: Literal["join"] = "join"
    player_id: PlayerId
    device_id: DeviceId
    nickname: str


class Answer(_Command):
    type: Literal["answer"] = "answer"
    player_id: PlayerId
    question_index: int
    choices: list[int]


class Start(_Command):
    type: Literal["start"] = "start"


class Next(_Command):
    type: Literal["next"] = "next"


class Skip(_Command):
    """Close the open question now (answers so far count) and reveal."""

    type: Literal["skip"] = "skip"


class Pause(_Command):
    type: Literal["pause"] = "pause"


class Resume(_Command):
    type: Literal["resume"] = "resume"


class LockJoining(_Command):
    type: Literal["lock_joining"] = "lock_joining"


class UnlockJoining(_Command):
    type: Literal["unlock_joining"] = "unlock_joining"


class Kick(_Command):
    type: Literal["kick"] = "kick"
    player_id: PlayerId


class End(_Command):
    type: Literal["end"] = "end"


class Tick(_Command):
    """The owner's timer: closes the open question once its deadline has passed."""

    type: Literal["tick"] = "tick"


class Disconnect(_Command):
    type: Literal["disconnect"] = "disconnect"
    player_id: PlayerId


class Reconnect(_Command):
    type: Literal["reconnect"] = "reconnect"
    player_id: PlayerId


Command: TypeAlias = Annotated[
    Join
    | Answer
    | Start
    | Next
    | Skip
    | Pause
    | Resume
    | LockJoining
    | UnlockJoining
    | Kick
    | End
    | Tick
    | Disconnect
    | Reconnect,
    Field(discriminator="type"),
]
CommandAdapter: TypeAdapter[Command] = TypeAdapter(Command)


# --------------------------------------------------------------------------------------------
# Events


class Everyone(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["everyone"] = "everyone"


class Host(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["host"] = "host"


class Player(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["player"] = "player"
    player_id: PlayerId


Audience: TypeAlias = Annotated[Everyone | Host | Player, Field(discriminator="kind")]


class Event(BaseModel):
    """A server message and who receives it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    audience: Audience
    message: ServerMessage


@dataclass(frozen=True, slots=True)
class Transition:
    state: GameState
    events: list[Event]


# --------------------------------------------------------------------------------------------
# Public functions


def new_game(game_id: GameId, quiz: Quiz, settings: GameSettings | None = None) -> GameState:
    """Return a game in the lobby for ``quiz``."""
    return GameState(game_id=game_id, quiz=quiz, settings=settings or GameSettings())


def validate_nickname(raw: str) -> str:
    """Return the trimmed nickname or raise ``ValidationError`` (``invalid_nickname``)."""
    raise NotImplementedError


def apply(state: GameState, command: Command, now: float) -> Transition:
    """Apply one command at server time ``now``; raise a ``PartyQuizError`` if it is illegal."""
    raise NotImplementedError


def next_deadline(state: GameState) -> float | None:
    """Return when the owner must apply a ``Tick``, or None when no timer runs."""
    raise NotImplementedError


def player_snapshot(state: GameState, player_id: PlayerId, now: float) -> Snapshot:
    """Return what ``player_id`` needs to draw the current phase."""
    raise NotImplementedError


def host_snapshot(state: GameState, now: float) -> Snapshot:
    """Return what the host's big screen needs to draw the current phase."""
    raise NotImplementedError


def command_from_message(message: ClientMessage, player_id: PlayerId | None) -> Command:
    """Translate a client message into a command for the connection's player (or the host)."""
    raise NotImplementedError
