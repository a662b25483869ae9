"""The owner's batch step: envelopes in, state and routed pre-encoded frames out (no I/O)."""

from __future__ import annotations

import orjson
from tests.unit.ws.harness import QUIZ

from partyquiz_core import game
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_core.protocol import ServerMessageAdapter
from partyquiz_ws.backends import Snapshot, game_channel, replica_channel
from partyquiz_ws.engine import (
    KIND_COMMAND,
    KIND_JOIN,
    Engine,
    Outcome,
    decode_snapshot,
    encode_envelope,
    encode_snapshot,
    personal_frame,
    results_payload,
)

NOW = 1_000_000.0
GAME = GameId("g")
ROOM = game_channel(GAME)
REPLY = replica_channel("r1")


def _engine() -> Engine:
    return Engine(lambda pid, gid, dev, now: f"token-{pid}-{dev}")


def _join(engine: Engine, state: game.GameState, pid: str, conn: int) -> game.GameState:
    cmd = game.Join(player_id=PlayerId(pid), device_id=DeviceId(f"d-{pid}"), nickname=pid)
    raw = encode_envelope(KIND_JOIN, cmd.model_dump(mode="json"), NOW, "r1", conn)
    return engine.apply_entry(state, raw, NOW, Outcome())


def _answer_a() -> game.Answer:
    return game.Answer(player_id=PlayerId("a"), question_index=0, choices=[0])


def _command(
    engine: Engine, state: game.GameState, cmd: game.Command, out: Outcome
) -> game.GameState:
    raw = encode_envelope(KIND_COMMAND, cmd.model_dump(mode="json"), NOW + 1, "r1", 9)
    return engine.apply_entry(state, raw, NOW + 1, out)


def test_a_join_welcomes_the_joiner_on_its_replica_with_a_resume_token() -> None:
    engine, out = _engine(), Outcome()
    state = game.new_game(GAME, QUIZ)
    cmd = game.Join(player_id=PlayerId("p1"), device_id=DeviceId("dev"), nickname=" Ann ")
    raw = encode_envelope(KIND_JOIN, cmd.model_dump(mode="json"), NOW, "r1", 7)
    state = engine.apply_entry(state, raw, NOW, out)
    kind, msg_type, conn, pid, frame = out.items[REPLY][0]
    assert (kind, msg_type, conn, pid) == ("joined", "welcome", 7, "p1")
    welcome = orjson.loads(frame)
    assert welcome["resume_token"] == "token-p1-dev"
    assert welcome["nickname"] == "Ann"
    assert [item[0] for item in out.items[ROOM]] == ["host"]  # the lobby update


def test_a_refused_command_answers_only_its_sender_and_keeps_the_state() -> None:
    engine, out = _engine(), Outcome()
    state = game.new_game(GAME, QUIZ)
    after = _command(engine, state, game.Start(), out)
    assert after is state
    kind, msg_type, conn, frame = out.items[REPLY][0]
    assert (kind, msg_type, conn) == ("conn", "error", 9)
    assert orjson.loads(frame)["code"] == "no_players"
    assert ROOM not in out.items


def test_a_garbled_envelope_is_skipped() -> None:
    out = Outcome()
    state = game.new_game(GAME, QUIZ)
    assert _engine().apply_entry(state, b"{not json", NOW, out) is state
    assert out.rejected == 1


def test_the_reveal_travels_once_with_compact_rows_split_per_player() -> None:
    engine = _engine()
    state = game.new_game(GAME, QUIZ)
    for i, pid in enumerate(("a", "b")):
        state = _join(engine, state, pid, i)
    state = _command(engine, state, game.Start(), Outcome())
    out = Outcome()
    state = _command(engine, state, _answer_a(), out)
    assert out.answers == ["accepted"]
    assert out.items[REPLY][0][:3] == ["conn", "answer_receipt", 9]
    out = Outcome()
    state = _command(engine, state, game.Skip(), out)
    kinds = [item[0] for item in out.items[ROOM]]
    assert kinds == ["all", "results"]
    public = orjson.loads(out.items[ROOM][0][2])
    assert public["results"] == {}
    assert public["correct"] == [0]
    _, _, version, question, rows = out.items[ROOM][1]
    assert set(rows) == {"a", "b"}
    frame = personal_frame(version, question, rows["a"])
    message = ServerMessageAdapter.validate_json(frame)
    assert message.type == "personal_result"
    assert message.result.correct is True
    assert message.result.rank == 1


def test_a_kick_tells_the_player_and_asks_replicas_to_close_it() -> None:
    engine = _engine()
    state = _join(engine, game.new_game(GAME, QUIZ), "victim", 3)
    out = Outcome()
    _command(engine, state, game.Kick(player_id=PlayerId("victim")), out)
    items = out.items[ROOM]
    assert items[0][:3] == ["player", "kicked", "victim"]
    assert ["kicked", "victim"] in items


def test_results_payload_matches_the_web_contract() -> None:
    engine = _engine()
    state = _join(engine, game.new_game(GAME, QUIZ), "a", 1)
    state = _command(engine, state, game.Start(), Outcome())
    state = _command(
        engine,
        state,
        _answer_a(),
        Outcome(),
    )
    state = _command(engine, state, game.End(), Outcome())
    body = results_payload(state, NOW + 5)
    assert body["ended_at"] == NOW + 5
    assert body["players"] == [{"player_id": "a", "nickname": "a", "score": 1000, "rank": 1}]
    assert body["answers"] == [
        {
            "player_id": "a",
            "question_index": 0,
            "choices": [0],
            "elapsed": 0.0,
            "correct": True,
            "points": 1000,
        }
    ]


def test_a_saved_state_round_trips_with_closed_logs_stored_once() -> None:
    engine = _engine()
    state = _join(engine, game.new_game(GAME, QUIZ), "a", 1)
    state = _command(engine, state, game.Start(), Outcome())
    state = _command(engine, state, _answer_a(), Outcome())  # closes question 0
    base, new_log = encode_snapshot(state, 0)
    assert [index for index, _ in new_log] == [0]
    assert b'"log"' not in base
    restored = decode_snapshot(Snapshot(base, "1-0", tuple(entry for _, entry in new_log)))
    assert restored == state
    assert encode_snapshot(state, 1)[1] == []  # nothing new to store the next time
