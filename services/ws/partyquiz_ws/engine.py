"""The owner's side of a batch: inbox envelopes in, new state and routed frames out.

Owns the envelope format of the inbox, how core events become pre-encoded frames addressed
to the game channel or to the replica a command came from, and the per-player reveal rows.
Game rules stay in ``partyquiz_core.game``; this module only calls ``apply`` and encodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from partyquiz_core import game
from partyquiz_core.errors import (
    AnswerRejectedError,
    ForbiddenError,
    NotFoundError,
    PartyQuizError,
)
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_core.protocol import (
    AnswerCountMsg,
    ErrorMsg,
    HostWelcomeMsg,
    KickedMsg,
    LobbyMsg,
    Phase,
    RevealMsg,
    WelcomeMsg,
)
from partyquiz_core.results import final_results
from partyquiz_ws.backends import Payload, Snapshot, game_channel, payload_bytes, replica_channel

# (player, game, device, now, the replica that holds the player's connection) -> token
SignResume = Callable[[PlayerId, GameId, DeviceId, float, str], str]

# A player may still resume into its ended game this long, to see the final standings.
RESUME_AFTER_END_SECONDS = 600.0

# Envelope kinds: a plain command, a join, a resume (reconnect + welcome), a host hello.
KIND_COMMAND, KIND_JOIN, KIND_RESUME, KIND_HOST = "cmd", "join", "resume", "host"


class Envelope(NamedTuple):
    """One inbox entry: a command (a host hello has none) as the replica that received it saw
    it, at ``at`` on its clock, from connection ``conn`` on replica ``src``.

    The embedded inbox keeps the object itself, so the owner applies the very command the
    handler validated; Redis stores ``encode()``'s JSON and the owner validates it again
    (``decode_envelope``), since any replica -- of any version -- may have written it. A named
    tuple: immutable, and built once per answer at a third of a frozen dataclass's cost.
    """

    kind: str
    command: game.Command | None
    at: float
    src: str
    conn: int
    device: str | None = None
    code: str | None = None  # a host hello's join code
    # A resume's: when the replica the player was on last said it was alive, if it failed.
    since: float | None = None

    def encode(self) -> bytes:
        command = self.command
        fields: dict[str, Any] = {
            "k": self.kind,
            "c": (
                _answer_json(command)
                if type(command) is game.Answer
                else None
                if command is None
                else command.model_dump(mode="json")
            ),
            "at": self.at,
            "src": self.src,
            "conn": self.conn,
            "device": self.device,
        }
        if self.code is not None:
            fields["code"] = self.code
        if self.since is not None:
            fields["since"] = self.since
        return orjson.dumps(fields)


# The fields of an answer, in the order ``model_dump`` gives them; ``text`` and ``value`` only
# when given (as the model's ``exclude_if`` does).
_ANSWER_FIELDS = ("type", "player_id", "question_index", "choices", "text", "value")


def _answer_json(answer: game.Answer) -> dict[str, Any]:
    """``answer.model_dump(mode="json")``, built from its fields: every player's answer is
    encoded once on its way to the inbox, and the model's serializer cost more than the rest
    of the envelope."""
    fields: dict[str, Any] = {
        "type": answer.type,
        "player_id": answer.player_id,
        "question_index": answer.question_index,
        "choices": answer.choices,
    }
    if answer.text is not None:
        fields["text"] = answer.text
    if answer.value is not None:
        fields["value"] = answer.value
    return fields


def decode_envelope(raw: bytes) -> tuple[Envelope, Any]:
    """Read an encoded envelope: the envelope without its command, and the command's JSON
    (validated by the caller, whose refusal goes back to the sender). Raises ``ValueError``,
    ``KeyError`` or ``TypeError`` when it is not an envelope at all."""
    env = orjson.loads(raw)
    device, code, since = env.get("device"), env.get("code"), env.get("since")
    envelope = Envelope(
        kind=str(env["k"]),
        command=None,
        at=float(env["at"]),
        src=str(env["src"]),
        conn=int(env["conn"]),
        device=None if device is None else str(device),
        code=None if code is None else str(code),
        since=None if since is None else float(since),
    )
    return envelope, env.get("c")


def _answer_of(entry: Payload) -> tuple[Envelope, game.Answer] | None:
    """The envelope and answer of an inbox entry that holds a valid answer command, else
    None (other commands, and anything invalid, take ``apply_entry``'s path)."""
    if isinstance(entry, Envelope):
        command = entry.command
        if entry.kind == KIND_COMMAND and type(command) is game.Answer:
            return entry, command
        return None
    try:
        env, raw_command = decode_envelope(payload_bytes(entry))
    except (ValueError, KeyError, TypeError):
        return None
    if env.kind != KIND_COMMAND or not isinstance(raw_command, dict):
        return None
    if raw_command.get("type") != "answer":
        return None
    try:
        command = game.CommandAdapter.validate_python(raw_command)
    except Exception:
        return None
    return (env, command) if type(command) is game.Answer else None


def error_frame(exc: PartyQuizError, version: int = 0) -> str:
    return ErrorMsg(version=version, code=exc.code, message=exc.message).model_dump_json()


_JSON_LITERALS = {True: b"true", False: b"false", None: b"null"}


def personal_frames(version: int, question_index: Any) -> Callable[[Sequence[Any]], bytes]:
    """Return the encoder of one reveal's ``personal_result`` messages, one per row.

    What every player's message shares (its type, version and question) is encoded once;
    each row adds its six values by formatting, without a dict or a JSON encoder per player
    (a reveal of a 10,000-player game encodes 10,000 of them on the path from the deadline to
    the last player's result). The bytes are ``personal_frame``'s.
    """
    head = (
        orjson.dumps(
            {"type": "personal_result", "version": version, "question_index": question_index}
        )[:-1]
        + b',"result":{"answered":'
    )
    literal = _JSON_LITERALS

    def encode(row: Sequence[Any]) -> bytes:
        answered, correct, points, score, rank, streak = row
        try:
            return b'%b%b,"correct":%b,"points":%d,"score":%d,"rank":%d,"streak":%d}}' % (
                head,
                literal[answered],
                literal[correct],
                points,
                score,
                rank,
                streak,
            )
        except (KeyError, TypeError):  # not the types a reveal row holds: encode it as given
            return personal_frame(version, question_index, row)

    return encode


def personal_frame(version: int, question_index: Any, row: Sequence[Any]) -> bytes:
    """Encode one player's ``personal_result`` from its compact reveal row."""
    answered, correct, points, score, rank, streak = row
    return orjson.dumps(
        {
            "type": "personal_result",
            "version": version,
            "question_index": question_index,
            "result": {
                "answered": answered,
                "correct": correct,
                "points": points,
                "score": score,
                "rank": rank,
                "streak": streak,
            },
        }
    )


def answer_result(exc: PartyQuizError | None) -> str:
    """Classify an answer's outcome for metrics: accepted, late, duplicate or invalid."""
    if exc is None:
        return "accepted"
    if isinstance(exc, AnswerRejectedError) and exc.code in ("late", "duplicate"):
        return exc.code
    return "invalid"


@dataclass(slots=True)
class Outcome:
    """What one batch produced: frames per channel and answer results for metrics."""

    items: dict[str, list[list[Any]]] = field(default_factory=dict)
    answers: list[str] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)  # replicas the batch's entries came from
    applied: int = 0
    rejected: int = 0
    _count: tuple[list[Any], AnswerCountMsg] | None = None  # the batch's latest answer_count
    # The host's pending lobby update of joins: its item, the players it announces, and the
    # latest of the messages it stands for.
    _joined: tuple[list[Any], list[Any], LobbyMsg] | None = None

    def add(self, channel: str, item: list[Any]) -> None:
        self.items.setdefault(channel, []).append(item)

    def add_count(self, channel: str, msg: AnswerCountMsg) -> None:
        """Add an ``answer_count`` for the host, superseding the batch's earlier one.

        Counts only grow, so the host needs the latest of a batch, not one frame per answer
        (10 000 in a second in a big game). The earlier item is emptied where it stands, so
        the items keep their version order, and only the latest is ever encoded.
        """
        if self._count is not None:
            self._count[0].clear()
        item = ["host", msg.type, None]
        self._count = (item, msg)
        self.add(channel, item)

    def add_joined(self, channel: str, msg: LobbyMsg) -> None:
        """Add a lobby update for the host that announces joins (no one left), merged into
        the batch's one before it when nothing else was added to the channel since.

        A ramp of 10 000 players joining brought the host 10 000 updates, each encoded by
        the owner and written to the host's screen on its own; the host's screen adds every
        player of ``joined`` and takes the count and the lock from the latest, so one update
        saying the same replaces a run of them.
        """
        items = self.items.get(channel)
        pending = self._joined
        if (
            pending is not None
            and items
            and items[-1] is pending[0]
            and pending[2].joining_locked == msg.joining_locked
        ):
            pending[1].extend(msg.joined)
            self._joined = (pending[0], pending[1], msg)
            return
        self._encode_joined()
        item = ["host", msg.type, None]
        self._joined = (item, list(msg.joined), msg)
        self.add(channel, item)

    def _encode_joined(self) -> None:
        if self._joined is not None:
            item, joined, msg = self._joined
            item[2] = msg.model_copy(update={"joined": joined}).model_dump_json()
            self._joined = None

    def channel_items(self) -> Iterator[tuple[str, list[list[Any]]]]:
        """Each channel and its items to publish, in order."""
        self._encode_joined()
        if self._count is not None:
            item, msg = self._count
            item[2] = msg.model_dump_json()
        for channel, items in self.items.items():
            yield channel, [item for item in items if item]


class Engine:
    """Applies inbox envelopes to a game state for the owner of that game."""

    def __init__(self, sign_resume: SignResume) -> None:
        self._sign_resume = sign_resume
        self._src = ""  # the replica the entry being applied came from

    def apply_entry(
        self, state: game.GameState, entry: Payload, now: float, out: Outcome
    ) -> game.GameState:
        """Apply one inbox entry; errors become an error frame for the sender, never raise."""
        raw_command: Any = None
        if isinstance(entry, Envelope):
            env = entry
        else:
            try:
                env, raw_command = decode_envelope(payload_bytes(entry))
            except (ValueError, KeyError, TypeError):
                out.rejected += 1  # a malformed entry can only come from a bug; skip it
                return state
        kind, conn = env.kind, env.conn
        self._src = env.src
        out.sources.add(env.src)
        at = min(env.at, now)
        reply = replica_channel(env.src)
        command = env.command
        try:
            if kind == KIND_HOST:
                self._host_hello(state, env.code, now, reply, conn, out)
                # Counted after its welcome: players hear when the host screen is back.
                present = game.apply(state, game.HostPresence(connected=True), now)
                self._route(present, None, reply, conn, None, now, out)
                return present.state
            if command is None:
                command = game.CommandAdapter.validate_python(raw_command)
            if kind == KIND_RESUME:
                return self._resume(state, command, env, now, reply, conn, out)
            transition = game.apply(state, command, at)
        except PartyQuizError as exc:
            out.rejected += 1
            # A refused join/resume frees the connection to try again.
            target = "refused" if kind in (KIND_JOIN, KIND_RESUME) else "conn"
            out.add(reply, [target, "error", conn, error_frame(exc, state.version)])
            if isinstance(command, game.Answer):
                out.answers.append(answer_result(exc))
            return state
        except Exception as exc:  # pydantic errors of a bad envelope: refuse, keep the game
            out.rejected += 1
            refused = PartyQuizError(f"command refused: {type(exc).__name__}", code="bad_command")
            out.add(reply, ["conn", "error", conn, error_frame(refused, state.version)])
            return state
        out.applied += 1
        if isinstance(command, game.Answer):
            out.answers.append("accepted")
        # A join may bring back a player of the same device under its own id.
        joiner = (
            game.joined_player(transition.state, command)
            if isinstance(command, game.Join)
            else None
        )
        kicked = state.players.get(command.player_id) if isinstance(command, game.Kick) else None
        self._route(transition, command, reply, conn, joiner, at, out, kicked and kicked.nickname)
        return transition.state

    def apply_entries(
        self, state: game.GameState, entries: Sequence[Payload], now: float, out: Outcome
    ) -> game.GameState:
        """Apply inbox entries in order, as ``apply_entry`` one after the other would: the
        same state, frames and counts. Consecutive answers are applied by ONE core call
        (``game.apply_answers``), which builds one new state for all of them and one count
        for the host; anything else between them is applied on its own, in its place."""
        answers: list[tuple[Envelope, game.Answer]] = []
        for entry in entries:
            answer = _answer_of(entry)
            if answer is not None:
                answers.append(answer)
                continue
            if answers:
                state = self._apply_answers(state, answers, now, out)
                answers = []
            state = self.apply_entry(state, entry, now, out)
        if answers:
            state = self._apply_answers(state, answers, now, out)
        return state

    def _apply_answers(
        self,
        state: game.GameState,
        answers: list[tuple[Envelope, game.Answer]],
        now: float,
        out: Outcome,
    ) -> game.GameState:
        while answers:
            batch = game.apply_answers(state, [(cmd, min(env.at, now)) for env, cmd in answers])
            version = state.version
            last: Envelope | None = None
            for (env, _), reply in zip(answers, batch.replies, strict=False):
                last = env
                out.sources.add(env.src)
                channel = replica_channel(env.src)
                if isinstance(reply, PartyQuizError):
                    out.rejected += 1
                    out.add(channel, ["conn", "error", env.conn, error_frame(reply, version)])
                    out.answers.append(answer_result(reply))
                else:
                    version = reply.version
                    out.applied += 1
                    out.answers.append("accepted")
                    out.add(channel, ["conn", reply.type, env.conn, reply.model_dump_json()])
            if last is not None:
                self._src = last.src
            if batch.events:
                closed_at = min(answers[batch.taken - 1][0].at, now)
                self._route(
                    game.Transition(batch.state, batch.events), None, "", 0, None, closed_at, out
                )
            state = batch.state
            answers = answers[batch.taken :]
        return state

    def tick(self, state: game.GameState, now: float, out: Outcome) -> game.GameState:
        """Apply the owner's timer; the state machine decides whether anything closes."""
        try:
            transition = game.apply(state, game.Tick(), now)
        except PartyQuizError:
            return state
        self._route(transition, None, "", 0, None, now, out)
        return transition.state

    def _host_hello(
        self,
        state: game.GameState,
        join_code: str | None,
        now: float,
        reply: str,
        conn: int,
        out: Outcome,
    ) -> None:
        msg = HostWelcomeMsg(
            version=state.version,
            join_code=join_code,
            state=game.host_snapshot(state, now),
        )
        out.add(reply, ["conn", msg.type, conn, msg.model_dump_json()])

    def _resume(
        self,
        state: game.GameState,
        command: game.Command,
        env: Envelope,
        now: float,
        reply: str,
        conn: int,
        out: Outcome,
    ) -> game.GameState:
        assert isinstance(command, game.Reconnect)
        if env.since is not None and command.outage_since is None:
            command = command.model_copy(update={"outage_since": env.since})
        player = state.players.get(command.player_id)
        if player is None:
            if env.device in state.banned_devices:
                raise PartyQuizError("this device was removed from the game", code="banned")
            raise NotFoundError("no such player in this game", code="unknown_player")
        if (
            state.phase is Phase.ENDED
            and state.phase_at is not None
            and now - state.phase_at > RESUME_AFTER_END_SECONDS
        ):
            raise ForbiddenError("this game is over; the token has expired", code="token_expired")
        transition = game.apply(state, command, now)
        out.applied += 1
        self._route(transition, command, reply, conn, command.player_id, now, out)
        # One identity, one connection: any other connection of the player is closed.
        out.add(game_channel(state.game_id), ["resumed", command.player_id, env.src, env.conn])
        return transition.state

    def _route(
        self,
        transition: game.Transition,
        command: game.Command | None,
        reply: str,
        conn: int,
        joiner: PlayerId | None,
        now: float,
        out: Outcome,
        kicked_nickname: str | None = None,
    ) -> None:
        state = transition.state
        channel = game_channel(state.game_id)
        welcomed = False
        for event in transition.events:
            msg = event.message
            audience = event.audience
            if isinstance(msg, RevealMsg):
                out.add(channel, ["all", msg.type, msg.public().model_dump_json()])
                # ResultRow tuples, published as JSON arrays where a batch is encoded.
                out.add(
                    channel,
                    ["results", "personal_result", msg.version, msg.question_index, msg.results],
                )
                continue
            if isinstance(audience, game.Everyone):
                item = ["all", msg.type, msg.model_dump_json()]
                if event.host_message is not None:
                    # Replicas that predate the host's own frame send players' frame to all.
                    item.append(event.host_message.model_dump_json())
                out.add(channel, item)
            elif isinstance(msg, AnswerCountMsg):
                out.add_count(channel, msg)
            elif isinstance(msg, LobbyMsg) and isinstance(audience, game.Host) and not msg.left:
                out.add_joined(channel, msg)
            elif isinstance(audience, game.Host):
                out.add(channel, ["host", msg.type, msg.model_dump_json()])
            elif joiner is not None and audience.player_id == joiner:
                if isinstance(msg, WelcomeMsg):
                    msg = self._with_token(msg, state, joiner, now)
                    out.add(reply, ["joined", msg.type, conn, joiner, msg.model_dump_json()])
                    welcomed = True
                else:
                    out.add(reply, ["conn", msg.type, conn, msg.model_dump_json()])
            elif isinstance(command, game.Answer) and command.player_id == audience.player_id:
                # The receipt of the player's own answer: straight to the connection it came on.
                out.add(reply, ["conn", msg.type, conn, msg.model_dump_json()])
            else:
                out.add(channel, ["player", msg.type, audience.player_id, msg.model_dump_json()])
                if isinstance(msg, KickedMsg):
                    out.add(channel, ["kicked", audience.player_id, kicked_nickname])
        if joiner is not None and not welcomed and joiner in state.players:
            player = state.players[joiner]
            welcome = WelcomeMsg(
                version=state.version,
                player_id=joiner,
                nickname=player.nickname,
                resume_token="",
                state=game.player_snapshot(state, joiner, now),
            )
            welcome = self._with_token(welcome, state, joiner, now)
            out.add(reply, ["joined", welcome.type, conn, joiner, welcome.model_dump_json()])

    def _with_token(
        self, msg: WelcomeMsg, state: game.GameState, player_id: PlayerId, now: float
    ) -> WelcomeMsg:
        player = state.players[player_id]
        token = self._sign_resume(player_id, state.game_id, player.device_id, now, self._src)
        return msg.model_copy(update={"resume_token": token})


class _Encoded:
    """The JSON of a state's parts that rarely change (the quiz; the players with their
    tallies, which change on a join, a kick, a presence change or a closed question), kept
    with the very objects it encodes: states are immutable and share untouched parts, so an
    identical object means identical JSON. A snapshot during a question, while answers come
    in, then encodes only the rest (half a second apart, 10 000 players each time).

    Closing a question gives every player a new tally but leaves the players themselves as
    they were, so each player's JSON is kept too and only the tallies are written again: at
    the deadline of a 10 000-player question that is a third of encoding every player."""

    def __init__(self) -> None:
        self.quiz: tuple[object, bytes] | None = None
        self.players: tuple[object, object, bytes] | None = None
        # Per player: the object last encoded and its saved JSON up to the tally,
        # ``"<id>":{...`` without the closing brace.
        self.heads: dict[PlayerId, tuple[object, bytes]] = {}

    def parts(self, state: game.GameState) -> tuple[bytes, bytes]:
        quiz = self.quiz
        if quiz is None or quiz[0] is not state.quiz:
            encoded = state.quiz.model_dump_json().encode()
            self.quiz = quiz = (state.quiz, encoded)
        players = self.players
        if players is None or players[0] is not state.players or players[1] is not state.scores:
            encoded = self._players(state)
            self.players = players = (state.players, state.scores, encoded)
        return quiz[1], players[2]

    def _players(self, state: game.GameState) -> bytes:
        """``players`` as ``GameState`` saves it: each player with its score and streak."""
        heads, tally = self.heads, state.scores.get
        parts = []
        for player_id, player in state.players.items():
            known = heads.get(player_id)
            if known is None or known[0] is not player:
                saved = player.__pydantic_serializer__.to_json(player)
                known = heads[player_id] = (player, orjson.dumps(player_id) + b":" + saved[:-1])
            score, streak = tally(player_id, game.NO_TALLY)
            parts.append(b'%b,"score":%d,"streak":%d}' % (known[1], score, streak))
        if len(heads) > len(parts):  # players were removed: forget them
            self.heads = {p: heads[p] for p in state.players if p in heads}
        return b"{" + b",".join(parts) + b"}"


_ENCODED: dict[GameId, _Encoded] = {}
_MAX_ENCODED_GAMES = 1024


def encode_snapshot(state: game.GameState, logged: int) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Split a state for saving: everything but the closed-question logs, and the logs from
    position ``logged`` on (earlier ones are stored already and never change)."""
    encoded = _ENCODED.get(state.game_id)
    if encoded is None:
        if len(_ENCODED) >= _MAX_ENCODED_GAMES:
            _ENCODED.clear()
        encoded = _ENCODED[state.game_id] = _Encoded()
    quiz, players = encoded.parts(state)
    rest = state.model_dump_json(exclude={"log", "quiz", "players"}).encode()
    base = b"".join((rest[:-1], b',"quiz":', quiz, b',"players":', players, b"}"))
    new_log = [(i, state.log[i].model_dump_json().encode()) for i in range(logged, len(state.log))]
    return base, new_log


def decode_snapshot(snapshot: Snapshot) -> game.GameState:
    """Rebuild a state saved by ``encode_snapshot`` (or saved whole, as a new game is)."""
    if isinstance(snapshot.live, game.GameState):
        return snapshot.live
    if not snapshot.log:
        return game.GameState.model_validate_json(snapshot.state)
    data = orjson.loads(snapshot.state)
    data["log"] = [orjson.loads(entry) for entry in snapshot.log]
    return game.GameState.model_validate(data)


def is_ended(state: game.GameState) -> bool:
    return state.phase is Phase.ENDED


def results_payload(state: game.GameState, ended_at: float) -> dict[str, Any]:
    """Build the body of ``POST /internal/games/{id}/results`` from a finished game."""
    results = final_results(state)
    return {
        "ended_at": ended_at,
        "players": [
            {"player_id": p.player_id, "nickname": p.nickname, "score": p.score, "rank": p.rank}
            for p in results.players
        ],
        "answers": [
            {
                "player_id": a.player_id,
                "question_index": a.question_index,
                "choices": a.choices,
                "elapsed": a.elapsed,
                "correct": bool(a.correct),
                "points": a.points,
                # Only when given: the web service of an earlier version reads the rest.
                **({"text": a.text} if a.text is not None else {}),
                **({"value": a.value} if a.value is not None else {}),
            }
            for a in results.answers
        ],
    }
