"""The game state machine: one live game as data, and the rules that move it on.

Owns phases, players, answers, deadlines and the outgoing events of each command. Pure: time
comes in as ``now`` (server epoch seconds), ids come in with the commands, nothing is read or
written anywhere. It does not authenticate anyone (the game service checks host tokens).

``apply(state, command, now)`` returns a ``Transition`` with a NEW state and its events and
never mutates its input. States are frozen and copy-on-write: untouched parts (the quiz, the
player map's other buckets) are shared, so an answer among 10 000 players costs microseconds;
only closing a question touches every player. An illegal command raises a ``PartyQuizError``
and, being validated before anything is built, leaves nothing behind. Commands that change
nothing (a ``Tick`` before the deadline, a presence change that is already so) return the same
state and no events; every other one bumps ``version`` by exactly one.
``apply_answers(state, answers)`` applies a run of answers as one ``apply`` each would (the
same receipts, refusals and final state, one version per accepted answer) but builds a single
new state for the run: the game service's owner applies the answers it reads together so.

Phases: lobby -Start-> question -(Skip | Tick at deadline | everyone answered)-> reveal -Next
(or Tick after ``reveal_seconds``)-> leaderboard -Next (or Tick after ``leaderboard_seconds``)->
question ... -Next after the last-> podium -Next-> ended. End from anywhere -> ended (an open
question is closed and scored first, without a reveal, because answers that got a receipt
count). Pause/Resume only while a question is open; Lock/Unlock and Kick in any phase but
ended (locking a locked game changes nothing); Join until the podium.

A question is shown first and answered after: answers open ``read_seconds`` after it comes up
(plus ``get_ready_seconds`` before the first question), and its time limit starts then, so
``deadline = opens_at + time_limit``. Host commands that move the game on carry the version
of the view they were issued from; one issued before the current phase began
(``phase_version``) is refused with ``stale_command``, so a double-click never skips a phase.

Rules worth knowing: an answer is late when ``now > deadline`` (Tick closes at ``now >=
deadline``) and early before ``opens_at``; the recorded elapsed time excludes pauses; kicking
removes the player and their open answer and bans their device for this game; a join with a
nickname taken by a player of the same device is that player coming back. Error codes:
``illegal_transition``, ``stale_command``, ``no_players``, ``game_over``, ``unknown_player``,
``player_exists``, ``banned``, ``joining_locked``, ``game_full``, ``invalid_nickname``,
``nickname_taken``, and for answers ``closed``, ``not_open``, ``wrong_question``, ``paused``,
``late``, ``duplicate``, ``invalid_choice``.

Deviation from the agreed outline: players carry neither their answers nor their score. The
open question's answers are in ``GameState.answers``, closed ones in the append-only
``GameState.log`` (``[choices, elapsed, points]`` per player, which ``partyquiz_core.results``
turns into final results), and scores and streaks in ``GameState.scores`` (saved inside each
player, the layout of earlier versions). ``lobby`` and ``answer_count`` go to the host only;
presence changes emit nothing.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple, TypeAlias, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    field_serializer,
    field_validator,
    model_validator,
)

from partyquiz_core.cowmap import CowMap
from partyquiz_core.errors import (
    AnswerRejectedError,
    ConflictError,
    ForbiddenError,
    GameStateError,
    IllegalTransitionError,
    NotFoundError,
    PartyQuizError,
    ValidationError,
)
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_core.matching import answer_key
from partyquiz_core.nicknames import nickname_keys, normalize_nickname
from partyquiz_core.protocol import (
    AnswerCountMsg,
    AnswerMsg,
    AnswerReceiptMsg,
    ClientMessage,
    EndedMsg,
    EndMsg,
    EndReason,
    HostStatusMsg,
    JoinMsg,
    KickedMsg,
    KickMsg,
    LeaderboardEntry,
    LeaderboardMsg,
    LobbyMsg,
    LockMsg,
    NextMsg,
    PausedMsg,
    PauseMsg,
    PersonalResult,
    Phase,
    PlayerSummary,
    PodiumMsg,
    QuestionMsg,
    QuestionView,
    ResultRow,
    ResumedMsg,
    ResumeGameMsg,
    RevealMsg,
    RevealView,
    ServerMessage,
    SkipMsg,
    SliderView,
    Snapshot,
    Standing,
    StartMsg,
    UnlockMsg,
)
from partyquiz_core.quiz import (
    CHOICE_KINDS,
    MAX_TYPED_ANSWER_CHARS,
    UNSCORED_KINDS,
    Question,
    QuestionKind,
    Quiz,
    image_url,
    read_stored_quiz,
)
from partyquiz_core.scoring import (
    ScoringRules,
    credit,
    is_fully_correct,
    score_answer,
    streak_after,
)

__all__ = [
    "Answer",
    "AnswerBatch",
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
    "HostPresence",
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
    "Tally",
    "Tick",
    "Transition",
    "UnlockJoining",
    "apply",
    "apply_answers",
    "command_from_message",
    "host_snapshot",
    "joined_player",
    "new_game",
    "next_deadline",
    "player_snapshot",
    "ranked_players",
    "settings_for",
    "shown_order",
    "tally_of",
    "validate_nickname",
]


class GameSettings(BaseModel):
    """Per-game options, fixed when the game is created.

    This model and every other one saved with a game (the state, players, logs, commands in
    the inbox) ignores fields it does not know: a replica of an older version, during a rolling
    update or after a rollback, reads what a newer one saved and leaves the rest alone.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    scoring: ScoringRules = ScoringRules()
    leaderboard_size: int = Field(default=5, ge=1, le=100)
    """How many players the leaderboard and podium show (top N)."""
    max_players: int = Field(default=10_000, ge=1, le=100_000)
    """Joins beyond this are refused with ``game_full``."""
    reveal_seconds: float | None = Field(default=None, gt=0, le=600)
    """Move from reveal to leaderboard on its own after this many seconds; None: the host does."""
    leaderboard_seconds: float | None = Field(default=None, gt=0, le=600)
    """Move from the leaderboard to the next question (or the podium) on its own after this
    many seconds; None: the host does."""
    get_ready_seconds: float = Field(default=0, ge=0, le=60)
    """The "get ready" countdown between Start and the first question being shown."""
    close_when_all_answered: bool = True
    """Close a question as soon as every player has answered instead of waiting for the deadline."""


class PlayerState(BaseModel):
    """One player; ``seq`` is the join order, the tie-break on equal scores."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: PlayerId
    nickname: str
    device_id: DeviceId
    seq: int
    connected: bool = True


class Tally(NamedTuple):
    """A player's score and streak of fully correct answers; serialised as ``[score, streak]``.

    Tallies live apart from ``PlayerState``, in ``GameState.scores``: closing a question gives
    every player a new one, and building 10 000 tuples costs a fraction of copying as many
    models (about 1 us against 4 each, on the path from the deadline to the reveal).
    """

    score: int
    streak: int


NO_TALLY = Tally(0, 0)  # a player before their first scored question


class AnswerRecord(NamedTuple):
    """One accepted answer; serialised as ``[choices, elapsed, points]`` to stay compact.

    ``choices`` is the answer in the form scoring reads (``partyquiz_core.scoring``): the
    picked choices, sorted; an ordering question's items in the player's order (item
    indices, not the shuffled positions shown); ``(position,)`` on a slider's scale; the index
    of the accepted answer a typed text matched, or nothing (the text is in ``texts``).
    """

    choices: tuple[int, ...]
    elapsed: float  # seconds, rounded to milliseconds
    points: int  # including any streak bonus


class QuestionLog(BaseModel):
    """The answers of one closed question; never changes once written."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    index: int
    closed_at: float
    answers: CowMap[PlayerId, AnswerRecord]
    distribution: tuple[int, ...]
    """How many answers picked each choice; type answer, slider and ordering: how many were
    right, partly right and wrong."""
    texts: CowMap[PlayerId, str] = Field(default_factory=CowMap, exclude_if=lambda t: not t)
    """Type answer: what each player typed (saved only when there is some)."""


@dataclass(frozen=True, slots=True)
class _Standings:
    """Players in leaderboard order and their competition ranks ("1, 1, 3")."""

    order: tuple[PlayerId, ...]
    ranks: dict[PlayerId, int]


class GameState(BaseModel):
    """A game, JSON round-trippable (``model_dump_json``/``model_validate_json``).

    Players' answers live in ``answers`` (the current question) and ``log`` (closed questions,
    append-only: a snapshot writer may store closed entries once).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

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
    phase_version: int = 0
    """The version at which the current phase (or question) began: host commands issued from
    an older view are stale."""
    phase_at: float | None = None
    """When the current phase (or question) began."""
    joining_locked: bool = False
    hosts_connected: int = 0
    """Open host connections (screens and remotes), as the game service reported them."""
    players: CowMap[PlayerId, PlayerState] = Field(default_factory=CowMap)
    scores: CowMap[PlayerId, Tally] = Field(default_factory=CowMap, exclude=True)
    """Each player's tally as of the last closed question (``NO_TALLY`` from their join on)."""
    next_seq: int = 0
    banned_devices: frozenset[DeviceId] = frozenset()
    answers: CowMap[PlayerId, AnswerRecord] = Field(default_factory=CowMap)
    credits: CowMap[PlayerId, float] = Field(default_factory=CowMap, exclude_if=lambda c: not c)
    """Seconds of the open question a player lost to a failed game-service replica (see
    ``Reconnect``): its answer may come that much after the deadline, and its recorded time
    leaves them out. Saved only when there are some, so older replicas read every other game."""
    texts: CowMap[PlayerId, str] = Field(default_factory=CowMap, exclude_if=lambda t: not t)
    """Type answer: what each player typed for the open question (``answers`` holds which
    accepted answer it matched). Saved only when there is some."""
    log: tuple[QuestionLog, ...] = ()
    ended_reason: EndReason | None = None

    # Derived indexes, rebuilt on demand and never serialised.
    _nicknames: CowMap[str, PlayerId] | None = PrivateAttr(default=None)
    _standings: _Standings | None = PrivateAttr(default=None)

    # Saved, each player carries their score and streak, as they did in memory before
    # ``scores`` existed: replicas of the previous version and of this one run side by side
    # during a rolling update (or a rollback) and take over each other's games.

    @field_serializer("players", mode="wrap")
    def _players_carry_their_tallies(
        self, players: CowMap[PlayerId, PlayerState], handler: SerializerFunctionWrapHandler
    ) -> Any:
        saved = handler(players)
        tally = self.scores.get
        for player_id, player in saved.items():
            player["score"], player["streak"] = tally(player_id, NO_TALLY)
        return saved

    @field_validator("quiz", mode="before")
    @classmethod
    def _quiz_as_stored(cls, quiz: Any) -> Any:
        # A saved game's quiz may hold fields of a newer version: read it as stored.
        return read_stored_quiz(quiz) if isinstance(quiz, dict) else quiz

    @model_validator(mode="before")
    @classmethod
    def _tallies_from_players(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "scores" in data:
            return data  # built in Python, with its tallies
        players = data.get("players")
        if not isinstance(players, dict):
            return data
        moved, scores = {}, {}
        for player_id, player in players.items():
            if isinstance(player, dict):
                player = dict(player)
                scores[player_id] = (player.pop("score", 0), player.pop("streak", 0))
            moved[player_id] = player
        return {**data, "players": moved, "scores": scores}

    @field_serializer("banned_devices")
    def _sorted_devices(self, devices: frozenset[DeviceId]) -> list[DeviceId]:
        return sorted(devices)  # not in set iteration order, which varies between processes

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GameState):
            return NotImplemented
        return self.__dict__ == other.__dict__


# --------------------------------------------------------------------------------------------
# Commands


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


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
    # Saved only when given, so replicas of earlier versions read every other answer.
    text: str | None = Field(default=None, exclude_if=lambda text: text is None)
    value: float | None = Field(default=None, exclude_if=lambda value: value is None)


class _PhaseCommand(_Command):
    """A host command that moves the game on; ``version`` is the version of the host's view
    (None: not checked)."""

    version: int | None = None


class Start(_PhaseCommand):
    type: Literal["start"] = "start"


class Next(_PhaseCommand):
    type: Literal["next"] = "next"


class Skip(_PhaseCommand):
    """Close the open question now (answers so far count) and reveal."""

    type: Literal["skip"] = "skip"


class Pause(_PhaseCommand):
    type: Literal["pause"] = "pause"


class Resume(_PhaseCommand):
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
    """A player is back. ``outage_since`` (server time) is set by the game service when the
    replica the player was connected through failed: the last moment it was known alive. It
    travels beside the command in the inbox, never inside it (``exclude``)."""

    type: Literal["reconnect"] = "reconnect"
    player_id: PlayerId
    outage_since: float | None = Field(default=None, exclude=True)


class HostPresence(_Command):
    """A host connection opened (``connected``) or closed; players hear when none is left."""

    type: Literal["host_presence"] = "host_presence"
    connected: bool


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
    | Reconnect
    | HostPresence,
    Field(discriminator="type"),
]
CommandAdapter: TypeAdapter[Command] = TypeAdapter(Command)


# --------------------------------------------------------------------------------------------
# Events


# Named tuples, not validated models: every answer creates two events and a transition, and
# everything in them comes from this module. A tuple is immutable, like a frozen dataclass,
# and built at about half its cost.


class Everyone(NamedTuple):
    kind: Literal["everyone"] = "everyone"


class Host(NamedTuple):
    kind: Literal["host"] = "host"


class Player(NamedTuple):
    player_id: PlayerId
    kind: Literal["player"] = "player"


Audience: TypeAlias = Everyone | Host | Player


class Event(NamedTuple):
    """A server message and who receives it.

    ``host_message``, for an event to everyone: what the host's connections receive instead
    of ``message`` (a question with its picture, when players' phones do not show it).
    """

    audience: Audience
    message: ServerMessage
    host_message: ServerMessage | None = None


class Transition(NamedTuple):
    state: GameState
    events: list[Event]


# --------------------------------------------------------------------------------------------
# Public functions

PODIUM_SIZE = 3
# Most time a failed replica's player gets back (and the question stays open for it).
MAX_OUTAGE_CREDIT_SECONDS = 10.0
_EVERYONE = Everyone()
_HOST = Host()
_NO_ANSWERS: CowMap[PlayerId, AnswerRecord] = CowMap()
_NO_CREDITS: CowMap[PlayerId, float] = CowMap()
_NO_TEXTS: CowMap[PlayerId, str] = CowMap()


def settings_for(quiz: Quiz) -> GameSettings:
    """Return the game settings the quiz asks for."""
    chosen = quiz.settings
    auto = chosen.auto_advance_seconds
    return GameSettings(
        scoring=ScoringRules(streak_bonus=chosen.streak_bonus),
        leaderboard_size=chosen.leaderboard_size,
        reveal_seconds=auto,
        leaderboard_seconds=auto,
        get_ready_seconds=chosen.get_ready_seconds,
    )


def new_game(game_id: GameId, quiz: Quiz, settings: GameSettings | None = None) -> GameState:
    """Return a game in the lobby for ``quiz`` (with the quiz's own settings by default)."""
    return GameState(
        game_id=game_id, quiz=quiz, settings=settings if settings else settings_for(quiz)
    )


def joined_player(state: GameState, join: Join) -> PlayerId | None:
    """Return the player a successful ``join`` made or brought back, if it is in ``state``."""
    if join.player_id in state.players:
        return join.player_id
    try:
        keys = _nickname_entries(validate_nickname(join.nickname))
    except ValidationError:
        return None
    found = _holder(_nicknames(state), keys)
    if found is not None and state.players[found].device_id == join.device_id:
        return found
    return None


def validate_nickname(raw: str) -> str:
    """Return the nickname as stored or raise ``ValidationError`` (``invalid_nickname``); the
    rules are ``partyquiz_core.nicknames``'s."""
    return normalize_nickname(raw)


def apply(state: GameState, command: Command, now: float) -> Transition:
    """Apply one command at server time ``now``; raise a ``PartyQuizError`` if it is illegal."""
    handler = _HANDLERS[type(command)]
    version = command.version if isinstance(command, _PhaseCommand) else None
    if version is not None and version < state.phase_version:
        raise GameStateError(
            "the game has moved on since this was pressed; nothing changed",
            code="stale_command",
        )
    return handler(state, command, now)


def next_deadline(state: GameState) -> float | None:
    """Return when the owner must apply a ``Tick``, or None when no timer runs."""
    if state.phase is Phase.QUESTION and not state.paused:
        if state.credits and state.deadline is not None:
            waiting = [c for pid, c in state.credits.items() if pid not in state.answers]
            return state.deadline + max(waiting, default=0.0)
        return state.deadline
    if state.phase is Phase.REVEAL and state.settings.reveal_seconds is not None:
        assert state.revealed_at is not None
        return state.revealed_at + state.settings.reveal_seconds
    seconds = state.settings.leaderboard_seconds
    if state.phase is Phase.LEADERBOARD and seconds is not None and state.phase_at is not None:
        return state.phase_at + seconds
    return None


def player_snapshot(state: GameState, player_id: PlayerId, now: float) -> Snapshot:
    """Return what ``player_id`` needs to draw the current phase."""
    player = _player(state, player_id)
    tally = tally_of(state, player_id)
    fields = _common_snapshot(state, now, host=False)
    credit = state.credits.get(player_id) if state.credits else None
    if credit and fields.get("deadline") is not None:
        # Its own deadline: the time it lost to a failed replica is given back.
        fields["deadline"] += credit
        fields["remaining"] = max(fields["deadline"] - now, 0.0)
    rank = _rank(state, player_id)
    fields["me"] = Standing(
        player_id=player.id,
        nickname=player.nickname,
        score=tally.score,
        rank=rank,
        streak=tally.streak,
    )
    record: AnswerRecord | None = None
    typed: str | None = None
    if state.phase is Phase.QUESTION:
        record = state.answers.get(player_id)
        typed = state.texts.get(player_id) if state.texts else None
    elif state.phase is Phase.REVEAL and state.log:
        record = state.log[-1].answers.get(player_id)
        typed = state.log[-1].texts.get(player_id) if state.log[-1].texts else None
        fields["my_result"] = _personal_result(
            state.quiz.questions[state.question_index], record, tally, rank
        )
    if record is not None:
        question = state.quiz.questions[state.question_index]
        fields.update(_shown_answer(state, question, record, typed))
        fields["my_answer_elapsed"] = record.elapsed
    return Snapshot(**fields)


def host_snapshot(state: GameState, now: float) -> Snapshot:
    """Return what the host's big screen needs to draw the current phase."""
    fields = _common_snapshot(state, now, host=True)
    players = sorted(state.players.values(), key=lambda p: p.seq)
    fields["players"] = [PlayerSummary(player_id=p.id, nickname=p.nickname) for p in players]
    return Snapshot(**fields)


def tally_of(state: GameState, player_id: PlayerId) -> Tally:
    """Return a player's score and streak (``NO_TALLY`` before their first closed question)."""
    tally: Tally = state.scores.get(player_id, NO_TALLY)
    return tally


def ranked_players(state: GameState) -> list[tuple[PlayerState, Tally, int]]:
    """Return every player with their tally and rank, best first (score desc, then earliest
    join)."""
    standings = _standings(state)
    return [
        (state.players[pid], tally_of(state, pid), standings.ranks[pid]) for pid in standings.order
    ]


def command_from_message(message: ClientMessage, player_id: PlayerId | None) -> Command:
    """Translate a client message into a command for the connection's player (or the host).

    ``player_id`` is the connection's player, or the new player's id for ``join``. Raises
    ``ValidationError`` (``not_a_command``) for connection-level messages (host, resume, ping).
    """
    if isinstance(message, JoinMsg | AnswerMsg):
        if player_id is None:
            raise ForbiddenError("only players join and answer", code="not_a_player")
        if isinstance(message, JoinMsg):
            return Join(
                player_id=player_id,
                device_id=DeviceId(message.device_id),
                nickname=message.nickname,
            )
        # The message was validated when it was parsed (the same field types).
        return _unchecked(
            Answer,
            player_id=player_id,
            question_index=message.question_index,
            choices=list(message.choices),
            text=message.text,
            value=message.value,
        )
    if isinstance(message, KickMsg):
        return Kick(player_id=PlayerId(message.player_id))
    phase_command = _PHASE_COMMANDS.get(type(message))
    if phase_command is not None:
        version = getattr(message, "version", None)
        return (
            phase_command
            if version is None
            else phase_command.model_copy(update={"version": version})
        )
    simple = _SIMPLE_COMMANDS.get(type(message))
    if simple is None:
        raise ValidationError(f"'{message.type}' is not a game command", code="not_a_command")
    return simple


# Commands that move the game on carry the host's view version; the others mean the same in
# any phase (kick this player, lock, end), so they are never stale.
_PHASE_COMMANDS: dict[type[BaseModel], Command] = {
    StartMsg: Start(),
    NextMsg: Next(),
    SkipMsg: Skip(),
    PauseMsg: Pause(),
    ResumeGameMsg: Resume(),
}
_SIMPLE_COMMANDS: dict[type[BaseModel], Command] = {
    LockMsg: LockJoining(),
    UnlockMsg: UnlockJoining(),
    EndMsg: End(),
}


# --------------------------------------------------------------------------------------------
# Command handlers: each validates everything first, then builds the new state.


def _join(state: GameState, cmd: Join, now: float) -> Transition:
    if cmd.player_id in state.players or any(cmd.player_id in e.answers for e in state.log):
        # A kicked player's answers stay in the log: their id never stands for someone new.
        raise ConflictError("this player id is already in the game", code="player_exists")
    if cmd.device_id in state.banned_devices:
        raise ForbiddenError("this device was removed from the game", code="banned")
    nickname = validate_nickname(cmd.nickname)
    keys = _nickname_entries(nickname)
    nicknames = _nicknames(state)
    taken_by = _holder(nicknames, keys)
    if taken_by is not None and state.players[taken_by].device_id == cmd.device_id:
        # The same phone typed the code and its own name again: it comes back as itself,
        # with its score, whatever the phase and even when joining is locked.
        return _set_connected(state, taken_by, connected=True)
    if state.phase in (Phase.PODIUM, Phase.ENDED):
        raise GameStateError("the game is over", code="game_over")
    if state.joining_locked:
        raise ForbiddenError("the host has locked joining", code="joining_locked")
    if len(state.players) >= state.settings.max_players:
        raise ConflictError("the game is full", code="game_full")
    if taken_by is not None:
        raise ConflictError(
            "this nickname is taken (or looks too much like one that is)", code="nickname_taken"
        )

    player = PlayerState(
        id=cmd.player_id, nickname=nickname, device_id=cmd.device_id, seq=state.next_seq
    )
    new = _evolve(
        state,
        players=state.players.set(player.id, player),
        scores=state.scores.set(player.id, NO_TALLY),
        next_seq=state.next_seq + 1,
        nicknames=nicknames.set(keys[0], player.id).set(keys[1], player.id),
    )
    standings = (state.__pydantic_private__ or {}).get("_standings")
    if standings is not None:
        # A newcomer has 0 points and joined last: they go at the end, tied with the other
        # zero scores, so late joins do not re-sort 10 000 players for their welcome.
        last = standings.order[-1] if standings.order else None
        zero_rank = (
            standings.ranks[last]
            if last is not None and tally_of(state, last).score == 0
            else len(standings.order) + 1
        )
        ranks = dict(standings.ranks)
        ranks[player.id] = zero_rank
        new._standings = _Standings((*standings.order, player.id), ranks)
    events = [
        _to(
            _HOST,
            LobbyMsg(
                version=new.version,
                joined=[PlayerSummary(player_id=player.id, nickname=nickname)],
                player_count=len(new.players),
                joining_locked=new.joining_locked,
            ),
        )
    ]
    if new.phase is Phase.QUESTION:
        events.append(_answer_count(new))
    return Transition(new, events)


_AFTER_A_QUESTION = (Phase.REVEAL, Phase.LEADERBOARD)


def _answer(state: GameState, cmd: Answer, now: float) -> Transition:
    player_id, record, typed = _checked_answer(state, cmd, now, None)
    question = state.quiz.questions[state.question_index]
    texts = {} if typed is None else {player_id: typed}
    new = _with_answers(state, {player_id: record}, texts, state.version + 1)
    receipt = _receipt(question, cmd, record, typed, new.version, new.question_index)
    events = [_to(Player(player_id=player_id), receipt), _answer_count(new)]
    if new.settings.close_when_all_answered and len(new.answers) >= len(new.players):
        closed, reveal = _close_question(new, now, bump=False)
        return Transition(closed, [*events, reveal])
    return Transition(new, events)


class AnswerBatch(NamedTuple):
    """What ``apply_answers`` made of answers applied in one call.

    ``replies`` holds one item per answer taken, in order: its receipt (whose ``version`` is
    the state's version after that answer, as one ``apply`` each would give it) or the error
    that refused it (the state's version is then that of the last receipt before it, or of
    the state given). ``events`` are what the batch adds for everyone else: the host's
    latest ``answer_count`` (one for the batch: counts only grow) and, when an answer left
    everyone answered, the reveal. ``taken`` answers were applied: fewer than given when the
    question closed, since the rest belong after the reveal (``apply`` refuses them there).
    """

    state: GameState
    replies: list[AnswerReceiptMsg | PartyQuizError]
    events: list[Event]
    taken: int


def apply_answers(state: GameState, answers: Sequence[tuple[Answer, float]]) -> AnswerBatch:
    """Apply answers, each at its own server time, as ``apply`` would one after the other,
    and build ONE new state for all of them instead of one per answer.

    An owner reads its inbox hundreds of entries at a time in a burst; every accepted answer
    still bumps the version by one, is checked (against the answers before it too: a second
    answer of a player in the batch is a duplicate) and scored as ``apply`` does it, and the
    receipts and the final state are the ones ``apply`` would give. Never mutates ``state``.
    """
    base = state
    pending: dict[PlayerId, AnswerRecord] = {}
    typed_texts: dict[PlayerId, str] = {}
    replies: list[AnswerReceiptMsg | PartyQuizError] = []
    version = state.version
    index = state.question_index
    question = state.quiz.questions[index] if index >= 0 else None
    close = state.settings.close_when_all_answered
    players, answered = len(state.players), len(state.answers)
    taken = 0
    for cmd, now in answers:
        taken += 1
        try:
            player_id, record, typed = _checked_answer(state, cmd, now, pending)
        except PartyQuizError as exc:
            replies.append(exc)
            continue
        assert question is not None
        version += 1
        pending[player_id] = record
        if typed is not None:
            typed_texts[player_id] = typed
        replies.append(_receipt(question, cmd, record, typed, version, index))
        if close and answered + len(pending) >= players:
            new = _with_answers(state, pending, typed_texts, version)
            closed, reveal = _close_question(new, now, bump=False)
            return AnswerBatch(closed, replies, [_answer_count(new), reveal], taken)
    if not pending:
        return AnswerBatch(base, replies, [], taken)
    new = _with_answers(state, pending, typed_texts, version)
    return AnswerBatch(new, replies, [_answer_count(new)], taken)


def _with_answers(
    state: GameState,
    pending: dict[PlayerId, AnswerRecord],
    typed: dict[PlayerId, str],
    version: int,
) -> GameState:
    changes: dict[str, Any] = {"answers": state.answers.update(pending.items())}
    if typed:
        changes["texts"] = state.texts.update(typed.items())
    return _evolve(state, keep_standings=True, bump=False, version=version, **changes)


def _checked_answer(
    state: GameState, cmd: Answer, now: float, pending: dict[PlayerId, AnswerRecord] | None
) -> tuple[PlayerId, AnswerRecord, str | None]:
    """Check an answer against ``state`` (and the answers ``pending`` with it) and score it:
    the player, the answer's record and the typed text (type answer only)."""
    player = _player(state, cmd.player_id)
    if state.phase is not Phase.QUESTION:
        if cmd.question_index == state.question_index and state.phase in _AFTER_A_QUESTION:
            # The question this answer is for has just closed (its deadline, a skip or the
            # last answer): late, however long ago, like an answer the deadline beat.
            raise AnswerRejectedError("time is up: the question has closed", code="late")
        raise AnswerRejectedError("no question is open", code="closed")
    if cmd.question_index != state.question_index:
        raise AnswerRejectedError(
            f"question {cmd.question_index} is not the open one", code="wrong_question"
        )
    if state.paused:
        raise AnswerRejectedError("the game is paused", code="paused")
    assert state.deadline is not None
    credit = state.credits.get(cmd.player_id, 0.0) if state.credits else 0.0
    if now > state.deadline + credit:
        raise AnswerRejectedError("time is up", code="late")
    question = state.quiz.questions[state.question_index]
    limit = question.time_limit_seconds
    if state.deadline - now > limit:
        raise AnswerRejectedError("answers open once the question has been read", code="not_open")
    if cmd.player_id in state.answers or (pending is not None and cmd.player_id in pending):
        raise AnswerRejectedError("you already answered this question", code="duplicate")
    if question.kind is QuestionKind.INFO:
        raise AnswerRejectedError("an info slide takes no answers", code="invalid_choice")
    if question.kind in CHOICE_KINDS:
        recorded, typed = _valid_choices(question, cmd), None
    else:
        recorded, typed = _recorded_answer(state, question, cmd)

    elapsed = round(min(max(limit - (state.deadline - now) - credit, 0.0), float(limit)), 3)
    streak = tally_of(state, player.id).streak
    scored = score_answer(question, recorded, elapsed, streak, state.settings.scoring)
    return player.id, AnswerRecord(recorded, elapsed, scored.points), typed


def _receipt(
    question: Question,
    cmd: Answer,
    record: AnswerRecord,
    typed: str | None,
    version: int,
    question_index: int,
) -> AnswerReceiptMsg:
    """The receipt of an accepted answer, stamped with the version it brought the game to."""
    if typed is not None:
        return _unchecked(
            AnswerReceiptMsg,
            version=version,
            question_index=question_index,
            choices=[],
            elapsed=record.elapsed,
            text=typed,
        )
    receipt = _unchecked(
        AnswerReceiptMsg,
        version=version,
        question_index=question_index,
        choices=list(record.choices) if question.kind in CHOICE_KINDS else cmd.choices,
        elapsed=record.elapsed,
    )
    if question.kind is QuestionKind.SLIDER:
        receipt = _shown_slider_receipt(question, receipt, record.choices)
    return receipt


def _start(state: GameState, cmd: Start, now: float) -> Transition:
    if state.phase is not Phase.LOBBY:
        raise IllegalTransitionError("the game has already started")
    if not state.players:
        raise IllegalTransitionError("nobody has joined yet", code="no_players")
    return _open_question(state, 0, now)


def _on_info_slide(state: GameState) -> bool:
    return (
        state.phase is Phase.QUESTION
        and state.quiz.questions[state.question_index].kind is QuestionKind.INFO
    )


def _move_on(state: GameState, now: float) -> Transition:
    """Open the next question, or show the podium after the last one."""
    if state.question_index + 1 < len(state.quiz.questions):
        return _open_question(state, state.question_index + 1, now)
    new = _evolve(
        state, keep_standings=True, phase=Phase.PODIUM, phase_at=now, deadline=None, paused=False
    )
    message = PodiumMsg(
        version=new.version,
        entries=_leaderboard(new, PODIUM_SIZE),
        player_count=len(new.players),
    )
    return Transition(new, [_to(_EVERYONE, message)])


def _next(state: GameState, cmd: Next, now: float) -> Transition:
    if state.phase is Phase.REVEAL:
        return _show_leaderboard(state, now)
    if state.phase is Phase.LEADERBOARD or _on_info_slide(state):
        # An info slide has nothing to reveal or rank: it moves straight on.
        return _move_on(state, now)
    if state.phase is Phase.PODIUM:
        return _finish(state, EndReason.FINISHED, now)
    hint = {
        Phase.LOBBY: "start the game first",
        Phase.QUESTION: "skip closes the open question",
        Phase.ENDED: "the game has ended",
    }[state.phase]
    raise IllegalTransitionError(f"next is not possible now: {hint}")


def _skip(state: GameState, cmd: Skip, now: float) -> Transition:
    if state.phase is not Phase.QUESTION:
        raise IllegalTransitionError("skip closes an open question; none is open")
    if _on_info_slide(state):
        return _move_on(state, now)
    new, reveal = _close_question(state, now)
    return Transition(new, [reveal])


def _pause(state: GameState, cmd: Pause, now: float) -> Transition:
    if state.phase is not Phase.QUESTION:
        raise IllegalTransitionError("only an open question can be paused")
    if state.paused:
        raise IllegalTransitionError("the game is already paused")
    assert state.deadline is not None
    if now >= state.deadline:
        raise IllegalTransitionError("the question's time is already up")
    remaining = state.deadline - now
    new = _evolve(state, keep_standings=True, paused=True, deadline=None, remaining=remaining)
    message = PausedMsg(version=new.version, question_index=new.question_index, remaining=remaining)
    return Transition(new, [_to(_EVERYONE, message)])


def _resume(state: GameState, cmd: Resume, now: float) -> Transition:
    if state.phase is not Phase.QUESTION or not state.paused:
        raise IllegalTransitionError("the game is not paused")
    assert state.remaining is not None
    deadline = now + state.remaining
    new = _evolve(state, keep_standings=True, paused=False, deadline=deadline, remaining=None)
    message = ResumedMsg(
        version=new.version,
        question_index=new.question_index,
        deadline=deadline,
        remaining=state.remaining,
        server_now=now,
    )
    return Transition(new, [_to(_EVERYONE, message)])


def _lock(state: GameState, cmd: LockJoining, now: float) -> Transition:
    return _set_joining_locked(state, locked=True)


def _unlock(state: GameState, cmd: UnlockJoining, now: float) -> Transition:
    return _set_joining_locked(state, locked=False)


def _kick(state: GameState, cmd: Kick, now: float) -> Transition:
    if state.phase is Phase.ENDED:
        raise IllegalTransitionError("the game has ended")
    player = _player(state, cmd.player_id)
    answers = state.answers.remove(player.id) if player.id in state.answers else state.answers
    texts = state.texts.remove(player.id) if player.id in state.texts else state.texts
    new = _evolve(
        state,
        players=state.players.remove(player.id),
        scores=state.scores.remove(player.id) if player.id in state.scores else state.scores,
        banned_devices=state.banned_devices | {player.device_id},
        answers=answers,
        texts=texts,
        nicknames=_without_nickname(_nicknames(state), player.nickname),
    )
    events = [
        _to(Player(player_id=player.id), KickedMsg(version=new.version)),
        _to(
            _HOST,
            LobbyMsg(
                version=new.version,
                left=[player.id],
                player_count=len(new.players),
                joining_locked=new.joining_locked,
            ),
        ),
    ]
    if new.phase is Phase.QUESTION:
        events.append(_answer_count(new))
        everyone_answered = new.players and len(new.answers) >= len(new.players)
        if new.settings.close_when_all_answered and everyone_answered:
            closed, reveal = _close_question(new, now, bump=False)
            return Transition(closed, [*events, reveal])
    return Transition(new, events)


def _end(state: GameState, cmd: End, now: float) -> Transition:
    if state.phase is Phase.ENDED:
        raise IllegalTransitionError("the game has already ended")
    if state.phase is Phase.QUESTION and not _on_info_slide(state):
        # Answers that got a receipt still count: close (scoring them), show the reveal and
        # everyone's own result, then end; one command, one version.
        closed, reveal = _close_question(state, now)
        ended = _finish(closed, EndReason.ENDED_BY_HOST, now, bump=False)
        return Transition(ended.state, [reveal, *ended.events])
    reason = EndReason.FINISHED if state.phase is Phase.PODIUM else EndReason.ENDED_BY_HOST
    return _finish(state, reason, now)


def _tick(state: GameState, cmd: Tick, now: float) -> Transition:
    due = next_deadline(state)
    if due is None or now < due:
        return Transition(state, [])
    if _on_info_slide(state):
        return _move_on(state, now)  # shown for its time: on to the next question
    if state.phase is Phase.QUESTION:
        new, reveal = _close_question(state, now)
        return Transition(new, [reveal])
    if state.phase is Phase.REVEAL:
        return _show_leaderboard(state, now)
    return _next(state, Next(), now)


def _disconnect(state: GameState, cmd: Disconnect, now: float) -> Transition:
    return _set_connected(state, cmd.player_id, connected=False)


def _reconnect(state: GameState, cmd: Reconnect, now: float) -> Transition:
    back = _set_connected(state, cmd.player_id, connected=True)
    credit = _outage_credit(state, cmd, now)
    if not credit:
        return back
    new = _evolve(
        back.state,
        keep_standings=True,
        bump=back.state is state,
        credits=back.state.credits.set(cmd.player_id, credit),
    )
    return Transition(new, back.events)


def _outage_credit(state: GameState, cmd: Reconnect, now: float) -> float:
    """The open question's time a player lost to a failed replica: from the failure (or the
    question opening for answers, if later) to now, at most ``MAX_OUTAGE_CREDIT_SECONDS``;
    0 when it does not apply (no failure, no open question, already answered)."""
    since = cmd.outage_since
    if since is None or state.phase is not Phase.QUESTION or state.paused:
        return 0.0
    if state.deadline is None or cmd.player_id in state.answers:
        return 0.0
    limit = state.quiz.questions[state.question_index].time_limit_seconds
    opened = state.deadline - limit
    if since >= state.deadline:
        return 0.0  # the question was over for it before the failure
    credit = min(now - max(since, opened), MAX_OUTAGE_CREDIT_SECONDS)
    return round(credit, 3) if credit > 0 else 0.0


def _host_presence(state: GameState, cmd: HostPresence, now: float) -> Transition:
    if state.phase is Phase.ENDED:
        return Transition(state, [])
    before = state.hosts_connected
    after = before + 1 if cmd.connected else max(0, before - 1)
    if after == before:
        return Transition(state, [])
    new = _evolve(state, keep_standings=True, hosts_connected=after)
    if (before > 0) == (after > 0):
        return Transition(new, [])  # a second screen came or went: nothing players notice
    return Transition(
        new, [_to(_EVERYONE, HostStatusMsg(version=new.version, connected=after > 0))]
    )


_HANDLERS: dict[type[BaseModel], Callable[[GameState, Any, float], Transition]] = {
    Join: _join,
    Answer: _answer,
    Start: _start,
    Next: _next,
    Skip: _skip,
    Pause: _pause,
    Resume: _resume,
    LockJoining: _lock,
    UnlockJoining: _unlock,
    Kick: _kick,
    End: _end,
    Tick: _tick,
    Disconnect: _disconnect,
    Reconnect: _reconnect,
    HostPresence: _host_presence,
}


# --------------------------------------------------------------------------------------------
# Shared steps


_CARRY: Any = object()


def _evolve(
    state: GameState,
    *,
    keep_standings: bool = False,
    nicknames: CowMap[str, PlayerId] | None = _CARRY,
    bump: bool = True,
    **changes: Any,
) -> GameState:
    """Return a copy of ``state`` with ``changes`` and the next version; shares the rest."""
    if bump:
        changes["version"] = state.version + 1
    phase = changes.get("phase")
    if (phase is not None and phase is not state.phase) or changes.get(
        "question_index", state.question_index
    ) != state.question_index:
        changes["phase_version"] = changes.get("version", state.version)
    # Private attributes are read through their dict: pydantic's __getattr__ is slow.
    old = state.__pydantic_private__ or {}
    private = {
        "_nicknames": old.get("_nicknames") if nicknames is _CARRY else nicknames,
        "_standings": old.get("_standings") if keep_standings else None,
    }
    return _trusted_copy(state, changes, private)


_M = TypeVar("_M", bound=BaseModel)
# ``ResultRow(*fields)`` and ``Tally(*fields)`` minus the Python-level ``__new__`` named tuples
# add (one of each per player when a question closes).
_new_row: Callable[[type[ResultRow], tuple[Any, ...]], ResultRow] = tuple.__new__
_new_tally: Callable[[type[Tally], tuple[Any, ...]], Tally] = tuple.__new__


def _trusted_copy(model: _M, changes: dict[str, Any], private: dict[str, Any] | None = None) -> _M:
    """What ``model.model_copy(update=changes)`` does, minus its generic overhead, for values
    this module computed itself: it runs per answer."""
    fields = model.__dict__.copy()
    fields.update(changes)
    fields_set = model.__pydantic_fields_set__
    if not fields_set.issuperset(changes):
        fields_set = fields_set | changes.keys()
    return _assemble(type(model), fields, fields_set, private)


def _assemble(
    cls: type[_M], fields: dict[str, Any], fields_set: set[str], private: dict[str, Any] | None
) -> _M:
    """An instance of ``cls`` holding ``fields`` as they are (what pydantic's constructors end
    with, after validation)."""
    new = cls.__new__(cls)
    object.__setattr__(new, "__dict__", fields)
    object.__setattr__(new, "__pydantic_fields_set__", fields_set)
    object.__setattr__(new, "__pydantic_extra__", None)
    object.__setattr__(new, "__pydantic_private__", private)
    return new


_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}


def _unchecked(cls: type[_M], **fields: Any) -> _M:
    """``cls(**fields)`` without validation, for models this module fills with values it
    computed itself and that are built per answer (a receipt, a command, the host's count).
    Only for models whose defaults are plain values (no factories)."""
    defaults = _DEFAULTS.get(cls)
    if defaults is None:
        defaults = _DEFAULTS[cls] = {
            name: info.default for name, info in cls.model_fields.items() if not info.is_required()
        }
    values = defaults.copy()
    values.update(fields)
    return _assemble(cls, values, set(fields), None)


def _to(audience: Everyone | Host | Player, message: ServerMessage) -> Event:
    return Event(audience=audience, message=message)


def _player(state: GameState, player_id: PlayerId) -> PlayerState:
    player = state.players.get(player_id)
    if player is None:
        raise NotFoundError("no such player in this game", code="unknown_player")
    assert isinstance(player, PlayerState)
    return player


def _nickname_entries(nickname: str) -> tuple[str, str]:
    """The nickname index's keys for ``nickname``: both of its folded forms, kept apart."""
    keys = nickname_keys(nickname)
    return "a:" + keys.look_alike, "c:" + keys.case_first


def _nicknames(state: GameState) -> CowMap[str, PlayerId]:
    if state._nicknames is None:
        state._nicknames = CowMap(
            (key, p.id) for p in state.players.values() for key in _nickname_entries(p.nickname)
        )
    return state._nicknames


def _holder(nicknames: CowMap[str, PlayerId], keys: tuple[str, str]) -> PlayerId | None:
    """The player whose nickname has one of ``keys``, if any."""
    for key in keys:
        found: PlayerId | None = nicknames.get(key)
        if found is not None:
            return found
    return None


def _without_nickname(nicknames: CowMap[str, PlayerId], nickname: str) -> CowMap[str, PlayerId]:
    for key in _nickname_entries(nickname):
        if key in nicknames:
            nicknames = nicknames.remove(key)
    return nicknames


def _standings(state: GameState) -> _Standings:
    if state._standings is None:
        state._standings = _rank_players(state)
    return state._standings


def _rank_players(state: GameState) -> _Standings:
    """Order players by score (best first; the earlier joiner first on a tie) and rank them."""
    keyed = [(-tally_of(state, p.id).score, p.seq, p.id) for p in state.players.values()]
    ranks = {key[2]: rank for rank, key in _competition_ranks(keyed)}
    return _Standings(tuple(key[2] for key in keyed), ranks)


_Key = TypeVar("_Key", bound=tuple[Any, ...])


def _competition_ranks(keyed: list[_Key]) -> Iterator[tuple[int, _Key]]:
    """Sort ``keyed`` in place and yield each key with its competition rank ("1, 1, 3").

    Keys are plain tuples starting ``(-score, seq, id, ...)``, which compare in C (``seq`` is
    unique, so the sort never looks past it): this runs for every player of a 10 000-player
    game when a question closes.
    """
    keyed.sort()
    previous: int | None = None
    rank = 0
    for position, key in enumerate(keyed, start=1):
        if key[0] != previous:
            rank, previous = position, key[0]
        yield rank, key


def _rank(state: GameState, player_id: PlayerId) -> int:
    if state.phase is Phase.LOBBY:
        return 1  # nobody has scored yet; skip sorting 10 000 players on every join
    return _standings(state).ranks[player_id]


def _leaderboard(state: GameState, size: int) -> list[LeaderboardEntry]:
    standings = _standings(state)
    entries = []
    for player_id in standings.order[:size]:
        tally = tally_of(state, player_id)
        entries.append(
            LeaderboardEntry(
                rank=standings.ranks[player_id],
                player_id=player_id,
                nickname=state.players[player_id].nickname,
                score=tally.score,
                streak=tally.streak,
            )
        )
    return entries


def _valid_choices(question: Question, cmd: Answer) -> tuple[int, ...]:
    """The picked choices of a choice question, sorted (its recorded answer)."""
    choices = cmd.choices
    chosen = frozenset(choices)
    if cmd.text is not None or cmd.value is not None:
        raise AnswerRejectedError("this question is answered by picking", code="invalid_choice")
    if not choices:
        raise AnswerRejectedError("pick at least one choice", code="invalid_choice")
    if len(chosen) != len(choices):
        raise AnswerRejectedError("a choice is picked twice", code="invalid_choice")
    if min(chosen) < 0 or max(chosen) >= len(question.choices):
        raise AnswerRejectedError("no such choice", code="invalid_choice")
    if question.kind is not QuestionKind.MULTIPLE and len(chosen) != 1:
        raise AnswerRejectedError("pick exactly one choice", code="invalid_choice")
    return tuple(sorted(chosen))


def _recorded_answer(
    state: GameState, question: Question, cmd: Answer
) -> tuple[tuple[int, ...], str | None]:
    """Check a type-answer, slider or ordering answer; return its recorded form (see
    ``AnswerRecord``) and the typed text (type answer only)."""
    kind = question.kind
    if kind is QuestionKind.TYPE_ANSWER:
        if cmd.choices or cmd.value is not None or cmd.text is None:
            raise AnswerRejectedError("type your answer", code="invalid_choice")
        typed = " ".join(cmd.text.split())
        if not answer_key(typed):
            raise AnswerRejectedError("type your answer", code="invalid_choice")
        # Kept with the game's results, which refuse control characters: refused here, where
        # the player hears why, not when the game ends and every result would be refused.
        if any(unicodedata.category(c) == "Cc" for c in typed):
            raise AnswerRejectedError(
                "an answer cannot contain control characters", code="invalid_choice"
            )
        if len(typed) > MAX_TYPED_ANSWER_CHARS:
            raise AnswerRejectedError(
                f"an answer is at most {MAX_TYPED_ANSWER_CHARS} characters", code="invalid_choice"
            )
        key = answer_key(typed)
        matched = [i for i, accepted in enumerate(question.accepted) if answer_key(accepted) == key]
        return tuple(matched[:1]), typed
    if kind is QuestionKind.SLIDER:
        slider = question.slider
        assert slider is not None
        value = cmd.value
        if cmd.choices or cmd.text is not None or value is None:
            raise AnswerRejectedError("pick a number on the slider", code="invalid_choice")
        margin = slider.step / 2
        if not slider.min - margin <= value <= slider.max + margin:
            raise AnswerRejectedError(
                f"pick a number from {slider.min:g} to {slider.max:g}", code="invalid_choice"
            )
        return (slider.position(value),), None
    # Ordering: every shown position once, in the player's order.
    order = shown_order(state.game_id, state.question_index, len(question.choices))
    if (
        cmd.text is not None
        or cmd.value is not None
        or sorted(cmd.choices) != list(range(len(order)))
    ):
        raise AnswerRejectedError("put every item in order, each once", code="invalid_choice")
    return tuple(order[position] for position in cmd.choices), None


def _shown_slider_receipt(
    question: Question, receipt: AnswerReceiptMsg, recorded: tuple[int, ...]
) -> AnswerReceiptMsg:
    assert question.slider is not None
    return receipt.model_copy(update={"value": question.slider.value_at(recorded[0])})


def shown_order(game_id: GameId, index: int, items: int) -> tuple[int, ...]:
    """The order an ordering question's items are shown in: item index by shown position.

    Shuffled the same way on every replica (seeded by the game and the question, never by a
    clock), and never the right order itself.
    """
    seed = int.from_bytes(hashlib.sha256(f"{game_id}/{index}".encode()).digest()[:8], "big")
    order = list(range(items))
    random.Random(seed).shuffle(order)
    if order == sorted(order):
        order = order[1:] + order[:1]
    return tuple(order)


def _shown_answer(
    state: GameState, question: Question, record: AnswerRecord, typed: str | None
) -> dict[str, Any]:
    """A recorded answer as its player gave it (``my_answer`` and friends of a snapshot)."""
    kind = question.kind
    if kind is QuestionKind.ORDERING:
        order = shown_order(state.game_id, state.question_index, len(question.choices))
        return {"my_answer": [order.index(item) for item in record.choices]}
    if kind is QuestionKind.SLIDER:
        assert question.slider is not None
        return {"my_answer": [], "my_answer_value": question.slider.value_at(record.choices[0])}
    if kind is QuestionKind.TYPE_ANSWER:
        # Never the matched index: that would tell whether it is right before the reveal.
        return {"my_answer": [], "my_answer_text": typed}
    return {"my_answer": list(record.choices)}


def _question_fields(state: GameState, index: int, *, host: bool) -> dict[str, Any]:
    """What the host's screen (``host``) or players see of question ``index``: never what is
    right, and its picture on phones only if the quiz shows pictures there."""
    question = state.quiz.questions[index]
    texts = [c.text for c in question.choices]
    if question.kind is QuestionKind.ORDERING:
        texts = [texts[item] for item in shown_order(state.game_id, index, len(texts))]
    fields: dict[str, Any] = {
        "index": index,
        "total": len(state.quiz.questions),
        "text": question.text,
        "kind": question.kind,
        "choices": texts,
        "time_limit": question.time_limit_seconds,
        "points": question.points,
    }
    slider = question.slider
    if slider is not None:
        fields["slider"] = SliderView(
            min=slider.min, max=slider.max, step=slider.step, unit=slider.unit
        )
    if question.image is not None and (host or state.quiz.settings.images_on_phones):
        fields["image"] = image_url(question.image)
    return fields


def _solution_fields(state: GameState, question: Question) -> dict[str, Any]:
    """What is right, for a reveal: the correct choices, or the right order as shown
    positions, the accepted answers, or the right number and its tolerance."""
    kind = question.kind
    if kind is QuestionKind.ORDERING:
        order = shown_order(state.game_id, state.question_index, len(question.choices))
        return {"correct": [order.index(item) for item in range(len(order))]}
    if kind is QuestionKind.TYPE_ANSWER:
        return {"correct": [], "accepted": list(question.accepted)}
    if kind is QuestionKind.SLIDER:
        assert question.slider is not None
        slider = question.slider
        return {"correct": [], "correct_value": slider.answer, "tolerance": slider.tolerance}
    return {"correct": list(question.correct)}


def _grade(question: Question, recorded: tuple[int, ...]) -> int:
    """Where an answer counts in a type-answer, slider or ordering question's distribution:
    0 right, 1 partly right, 2 wrong."""
    if is_fully_correct(question, recorded):
        return 0
    return 1 if credit(question, recorded) > 0 else 2


def _answer_count(state: GameState) -> Event:
    return _to(
        _HOST,
        _unchecked(
            AnswerCountMsg,
            version=state.version,
            question_index=state.question_index,
            answered=len(state.answers),
            total=len(state.players),
        ),
    )


def _open_question(state: GameState, index: int, now: float) -> Transition:
    question = state.quiz.questions[index]
    shows_at = now + (state.settings.get_ready_seconds if index == 0 else 0.0)
    # An info slide is only read: it shows for its time limit and takes no answers.
    reading = 0 if question.kind is QuestionKind.INFO else question.read_seconds
    opens_at = shows_at + reading
    deadline = opens_at + question.time_limit_seconds
    new = _evolve(
        state,
        keep_standings=True,
        phase=Phase.QUESTION,
        phase_at=now,
        question_index=index,
        opened_at=now,
        deadline=deadline,
        paused=False,
        remaining=None,
        revealed_at=None,
        answers=_NO_ANSWERS,
        credits=_NO_CREDITS,
        texts=_NO_TEXTS,
    )
    timing = {
        "version": new.version,
        "deadline": deadline,
        "server_now": now,
        "opens_at": opens_at,
        "shows_at": shows_at,
    }
    message = QuestionMsg(**_question_fields(new, index, host=False), **timing)
    if message.image is None and question.image is not None:  # the picture for screens only
        host_message = QuestionMsg(**_question_fields(new, index, host=True), **timing)
        return Transition(new, [Event(_EVERYONE, message, host_message)])
    return Transition(new, [_to(_EVERYONE, message)])


def _close_question(state: GameState, now: float, *, bump: bool = True) -> tuple[GameState, Event]:
    """Score the open question for every player and move to the reveal (the O(players) step).

    ``bump=False`` when ``state`` is already this command's bumped copy (an answer or a kick
    that leaves everyone answered): one command, one version.

    An answer's points were scored when it arrived (a streak only changes here, so they are
    what scoring it now would give); what is left per player is the verdict, which depends on
    the choices alone and is worked out once per distinct answer, and the new tally. This
    loop runs for every player of a 10 000-player game between the deadline and the reveal,
    so it builds no models: tallies and results are tuples (``Tally``, ``ResultRow``).
    """
    question = state.quiz.questions[state.question_index]
    answers = state.answers
    # Plain dicts: their lookups run in C.
    find, find_tally = answers.to_dict().get, state.scores.to_dict().get
    is_poll = question.kind in UNSCORED_KINDS
    by_choice = question.kind in CHOICE_KINDS
    # Choice questions count answers per choice; the others right, partly right and wrong.
    distribution = [0] * (len(question.choices) if by_choice else 3)
    verdicts: dict[tuple[int, ...], bool] = {}
    grades: dict[tuple[int, ...], int] = {}
    tallies: list[Tally] = []  # in the order of ``state.players``
    tally = _new_tally
    missed = None if is_poll else False  # the verdict on a player who did not answer
    # (-score, seq, id, answered, correct, points, streak) per player: leaderboard order once
    # sorted (seq is unique, so the sort never compares past it), with the rest of the row.
    keyed: list[tuple[int, int, PlayerId, bool, bool | None, int, int]] = []
    for player_id, player in state.players.items():
        score, streak = find_tally(player_id, NO_TALLY)
        record = find(player_id)
        if record is None:
            correct, points = missed, 0
            streak = streak_after(question, streak, correct=False)
        else:
            choices = record.choices
            if by_choice:
                for choice in choices:
                    distribution[choice] += 1
            else:
                grade = grades.get(choices)
                if grade is None:
                    grade = grades[choices] = _grade(question, choices)
                distribution[grade] += 1
            verdict = verdicts.get(choices)
            if verdict is None:
                verdict = verdicts[choices] = is_fully_correct(question, choices)
            correct, points = None if is_poll else verdict, record.points
            streak = streak_after(question, streak, correct=verdict)
        score += points
        tallies.append(tally(Tally, (score, streak)))
        keyed.append((-score, player.seq, player_id, record is not None, correct, points, streak))
    entry = QuestionLog(
        index=state.question_index,
        closed_at=now,
        answers=answers,
        distribution=tuple(distribution),
        texts=state.texts,
    )
    new = _evolve(
        state,
        bump=bump,
        phase=Phase.REVEAL,
        deadline=None,
        paused=False,
        remaining=None,
        revealed_at=now,
        phase_at=now,
        scores=state.players.with_values(tallies),
        answers=_NO_ANSWERS,
        credits=_NO_CREDITS,
        texts=_NO_TEXTS,
        log=(*state.log, entry),
    )
    # The standings of the new state and every player's row in one pass.
    ranks: dict[PlayerId, int] = {}
    results: dict[PlayerId, ResultRow] = {}
    row = _new_row
    for rank, (negated, _seq, player_id, answered, correct, points, streak) in _competition_ranks(
        keyed
    ):
        ranks[player_id] = rank
        results[player_id] = row(ResultRow, (answered, correct, points, -negated, rank, streak))
    new._standings = _Standings(tuple(key[2] for key in keyed), ranks)
    reveal = RevealMsg(
        version=new.version,
        question_index=new.question_index,
        **_solution_fields(new, question),
        distribution=distribution,
        answered=len(answers),
        total=len(tallies),
    )
    # The rows are this function's own tuples: set them after validation, not through it.
    reveal.__dict__["results"] = results
    return new, _to(_EVERYONE, reveal)


def _personal_result(
    question: Question, record: AnswerRecord | None, tally: Tally, rank: int
) -> PersonalResult:
    correct: bool | None
    if question.kind in UNSCORED_KINDS:
        correct = None
    elif record is None:
        correct = False
    else:
        correct = is_fully_correct(question, record.choices)
    return PersonalResult(
        answered=record is not None,
        correct=correct,
        points=record.points if record is not None else 0,
        score=tally.score,
        rank=rank,
        streak=tally.streak,
    )


def _show_leaderboard(state: GameState, now: float) -> Transition:
    new = _evolve(state, keep_standings=True, phase=Phase.LEADERBOARD, phase_at=now)
    message = LeaderboardMsg(
        version=new.version,
        question_index=new.question_index,
        entries=_leaderboard(new, new.settings.leaderboard_size),
        player_count=len(new.players),
    )
    return Transition(new, [_to(_EVERYONE, message)])


def _finish(state: GameState, reason: EndReason, now: float, *, bump: bool = True) -> Transition:
    # ``bump=False`` when ``state`` is already a fresh, bumped copy from this same command.
    new = _evolve(
        state,
        keep_standings=True,
        bump=bump,
        phase=Phase.ENDED,
        phase_at=now,
        deadline=None,
        paused=False,
        remaining=None,
        ended_reason=reason,
    )
    return Transition(new, [_to(_EVERYONE, EndedMsg(version=new.version, reason=reason))])


def _set_joining_locked(state: GameState, *, locked: bool) -> Transition:
    if state.phase is Phase.ENDED:
        raise IllegalTransitionError("the game has ended")
    if state.joining_locked == locked:
        return Transition(state, [])  # a second press (or a second host screen) is harmless
    new = _evolve(state, keep_standings=True, joining_locked=locked)
    message = LobbyMsg(version=new.version, player_count=len(new.players), joining_locked=locked)
    return Transition(new, [_to(_EVERYONE, message)])


def _set_connected(state: GameState, player_id: PlayerId, *, connected: bool) -> Transition:
    player = _player(state, player_id)
    if player.connected == connected or state.phase is Phase.ENDED:
        return Transition(state, [])
    updated = player.model_copy(update={"connected": connected})
    new = _evolve(state, keep_standings=True, players=state.players.set(player_id, updated))
    return Transition(new, [])


def _common_snapshot(state: GameState, now: float, *, host: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "game_id": state.game_id,
        "phase": state.phase,
        "server_now": now,
        "joining_locked": state.joining_locked,
        "player_count": len(state.players),
        "question_count": len(state.quiz.questions),
        "paused": state.paused,
        "ended_reason": state.ended_reason,
        "host_connected": state.hosts_connected > 0,
    }
    cover = state.quiz.cover
    if cover is not None and (host or state.quiz.settings.images_on_phones):
        fields["cover"] = image_url(cover)
    phase = state.phase
    if phase in (Phase.QUESTION, Phase.REVEAL, Phase.LEADERBOARD):
        index = state.question_index
        question = state.quiz.questions[index]
        fields["question"] = QuestionView(**_question_fields(state, index, host=host))
        if phase is Phase.QUESTION:
            fields["answered"] = len(state.answers)
            if state.paused:
                fields["remaining"] = state.remaining
            else:
                assert state.deadline is not None
                opens_at = state.deadline - question.time_limit_seconds
                fields["deadline"] = state.deadline
                fields["opens_at"] = opens_at
                # Shown when the question came up, or once the first question's "get ready"
                # is over, even for a page that asks during it; never later than its reading
                # time before answers open (a pause moves that on, not the showing).
                reading = 0 if question.kind is QuestionKind.INFO else question.read_seconds
                get_ready = state.settings.get_ready_seconds if index == 0 else 0.0
                opened = state.opened_at
                shown = now if opened is None else max(now, opened + get_ready)
                fields["shows_at"] = min(opens_at - reading, shown)
                fields["remaining"] = max(state.deadline - now, 0.0)
        elif phase is Phase.REVEAL:
            entry = state.log[-1]
            fields["reveal"] = RevealView(
                **_solution_fields(state, question),
                distribution=list(entry.distribution),
                answered=len(entry.answers),
                total=len(state.players),
            )
    if phase is Phase.LEADERBOARD or (phase in (Phase.PODIUM, Phase.ENDED) and state.log):
        fields["leaderboard"] = _leaderboard(state, state.settings.leaderboard_size)
    return fields
