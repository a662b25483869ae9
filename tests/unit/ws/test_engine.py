"""The owner's batch step: envelopes in, state and routed pre-encoded frames out (no I/O)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.ws.harness import QUIZ

from partyquiz_core import game
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_core.protocol import ResultRow, ServerMessageAdapter
from partyquiz_ws.backends import Snapshot, game_channel, replica_channel
from partyquiz_ws.engine import (
    _ANSWER_FIELDS,
    KIND_COMMAND,
    KIND_HOST,
    KIND_JOIN,
    KIND_RESUME,
    Engine,
    Envelope,
    Outcome,
    decode_snapshot,
    encode_snapshot,
    personal_frame,
    personal_frames,
    results_payload,
)

NOW = 1_000_000.0
GAME = GameId("g")
ROOM = game_channel(GAME)
REPLY = replica_channel("r1")


def _engine() -> Engine:
    return Engine(lambda pid, gid, dev, now, replica: f"token-{pid}-{dev}-{replica}")


def _join(engine: Engine, state: game.GameState, pid: str, conn: int) -> game.GameState:
    cmd = game.Join(player_id=PlayerId(pid), device_id=DeviceId(f"d-{pid}"), nickname=pid)
    raw = Envelope(KIND_JOIN, cmd, NOW, "r1", conn).encode()
    return engine.apply_entry(state, raw, NOW, Outcome())


def _answer_a() -> game.Answer:
    return game.Answer(player_id=PlayerId("a"), question_index=0, choices=[0])


def _command(
    engine: Engine, state: game.GameState, cmd: game.Command, out: Outcome
) -> game.GameState:
    raw = Envelope(KIND_COMMAND, cmd, NOW + 1, "r1", 9).encode()
    return engine.apply_entry(state, raw, NOW + 1, out)


def test_a_join_welcomes_the_joiner_on_its_replica_with_a_resume_token() -> None:
    engine, out = _engine(), Outcome()
    state = game.new_game(GAME, QUIZ)
    cmd = game.Join(player_id=PlayerId("p1"), device_id=DeviceId("dev"), nickname=" Ann ")
    raw = Envelope(KIND_JOIN, cmd, NOW, "r1", 7).encode()
    state = engine.apply_entry(state, raw, NOW, out)
    kind, msg_type, conn, pid, frame = out.items[REPLY][0]
    assert (kind, msg_type, conn, pid) == ("joined", "welcome", 7, "p1")
    welcome = orjson.loads(frame)
    assert welcome["resume_token"] == "token-p1-dev-r1"  # names the replica it joined on
    assert welcome["nickname"] == "Ann"
    assert [item[0] for item in out.items[ROOM]] == ["host"]  # the lobby update


def _joins(engine: Engine, state: game.GameState, names: str, out: Outcome) -> game.GameState:
    for conn, pid in enumerate(names):
        cmd = game.Join(player_id=PlayerId(pid), device_id=DeviceId(f"d-{pid}"), nickname=pid)
        state = engine.apply_entry(state, Envelope(KIND_JOIN, cmd, NOW, "r1", conn), NOW, out)
    return state


def _host_frames(out: Outcome) -> list[dict[str, Any]]:
    return [
        orjson.loads(item[2])
        for channel, items in out.channel_items()
        for item in items
        if channel == ROOM and item[0] == "host"
    ]


def test_the_joins_of_a_batch_reach_the_host_as_one_lobby_update() -> None:
    engine, out = _engine(), Outcome()
    state = _joins(engine, game.new_game(GAME, QUIZ), "abc", out)
    (lobby,) = _host_frames(out)
    assert [p["player_id"] for p in lobby["joined"]] == ["a", "b", "c"]
    assert (lobby["player_count"], lobby["version"]) == (3, state.version)
    assert lobby["left"] == []
    # Every joiner still gets its own welcome.
    assert [item[3] for item in out.items[REPLY]] == ["a", "b", "c"]


def test_a_lobby_update_of_joins_is_not_merged_across_another_update() -> None:
    engine, out = _engine(), Outcome()
    state = _joins(engine, game.new_game(GAME, QUIZ), "ab", out)
    state = _command(engine, state, game.Kick(player_id=PlayerId("a")), out)
    state = _command(engine, state, game.LockJoining(), out)
    state = _command(engine, state, game.UnlockJoining(), out)
    _joins(engine, state, "cd", out)
    frames = _host_frames(out)
    assert [(f["type"], [p["player_id"] for p in f["joined"]], f["left"]) for f in frames] == [
        ("lobby", ["a", "b"], []),
        ("lobby", [], ["a"]),
        ("lobby", ["c", "d"], []),
    ]
    assert frames[-1]["player_count"] == 3


def test_a_refused_command_answers_only_its_sender_and_keeps_the_state() -> None:
    engine, out = _engine(), Outcome()
    state = game.new_game(GAME, QUIZ)
    after = _command(engine, state, game.Start(), out)
    assert after is state
    kind, msg_type, conn, frame = out.items[REPLY][0]
    assert (kind, msg_type, conn) == ("conn", "error", 9)
    assert orjson.loads(frame)["code"] == "no_players"
    assert ROOM not in out.items


def test_an_envelope_object_applies_exactly_like_its_encoded_form() -> None:
    # The embedded inbox hands the runner the handler's envelope; Redis hands it the JSON.
    engine = _engine()
    state = _join(engine, _join(engine, game.new_game(GAME, QUIZ), "a", 1), "b", 2)
    state = _command(engine, state, game.Start(), Outcome())
    commands: list[game.Command] = [_answer_a(), game.Skip(), game.Next()]
    results = []
    for as_object in (True, False):
        current, outs = state, []
        for cmd in commands:
            env = Envelope(KIND_COMMAND, cmd, NOW + 1, "r1", 9, device="dev")
            out = Outcome()
            current = engine.apply_entry(current, env if as_object else env.encode(), NOW + 1, out)
            outs.append(list(out.channel_items()))
        results.append((current, outs))
    assert results[0] == results[1]
    assert results[0][0].phase is game.Phase.LEADERBOARD


# Inbox entries as an owner reads them: answers of joined and unknown players, to the open
# question and others, duplicates, late ones; host commands and joins between them; entries
# that do not validate or decode. Each as the embedded inbox holds it or as Redis stores it.
_ANSWERS = st.builds(
    lambda pid, index, choices, src, conn, delay: Envelope(
        KIND_COMMAND,
        game.Answer(player_id=PlayerId(pid), question_index=index, choices=choices),
        NOW + delay,
        src,
        conn,
    ),
    st.sampled_from("abcdz"),
    st.sampled_from([0, 0, 0, 1]),
    st.lists(st.integers(-1, 3), min_size=0, max_size=2),
    st.sampled_from(["r1", "r2"]),
    st.integers(0, 9),
    st.sampled_from([1.0, 2.0, 25.0]),
)
_OTHERS = st.sampled_from(
    [
        Envelope(KIND_COMMAND, game.Skip(), NOW + 2, "r1", 9),
        Envelope(KIND_COMMAND, game.Next(), NOW + 2, "r1", 9),
        Envelope(KIND_COMMAND, game.Disconnect(player_id=PlayerId("b")), NOW + 2, "r2", 2),
        Envelope(
            KIND_JOIN,
            game.Join(player_id=PlayerId("e"), device_id=DeviceId("d-e"), nickname="e"),
            NOW + 2,
            "r2",
            5,
        ),
        b"{not json",
        orjson.dumps({"k": "cmd", "c": {"type": "answer"}, "at": NOW, "src": "r1", "conn": 5}),
        orjson.dumps(
            {
                "k": "cmd",
                "c": {"type": "answer", "player_id": "c", "question_index": "0", "choices": [1]},
                "at": NOW + 1,
                "src": "r2",
                "conn": 3,
            }
        ),
    ]
)
_ENTRIES = st.lists(
    st.tuples(st.one_of(_ANSWERS, _ANSWERS, _ANSWERS, _OTHERS), st.booleans()), max_size=24
)


def _seen(out: Outcome) -> tuple[Any, ...]:
    channels = {channel: items for channel, items in out.channel_items()}
    return channels, out.applied, out.rejected, out.answers, out.sources


@settings(max_examples=300, deadline=None)
@given(_ENTRIES, st.integers(1, 24))
def test_entries_applied_as_a_batch_give_what_one_entry_at_a_time_gives(
    drawn: list[tuple[Envelope | bytes, bool]], split: int
) -> None:
    engine = _engine()
    state = game.new_game(GAME, QUIZ)
    for conn, pid in enumerate("abc"):
        state = _join(engine, state, pid, conn)
    state = _command(engine, state, game.Start(), Outcome())
    entries = [
        entry.encode() if encoded and isinstance(entry, Envelope) else entry
        for entry, encoded in drawn
    ]

    one_by_one, expected = state, Outcome()
    for entry in entries:
        one_by_one = engine.apply_entry(one_by_one, entry, NOW + 3, expected)
    # As an owner reads them: a batch, then the next from where it stopped.
    batched, out = state, Outcome()
    for start in range(0, len(entries), split):
        batched = engine.apply_entries(batched, entries[start : start + split], NOW + 3, out)

    assert _seen(out) == _seen(expected)
    assert batched == one_by_one
    assert batched.model_dump_json() == one_by_one.model_dump_json()


def test_an_encoded_envelope_keeps_the_format_older_replicas_wrote() -> None:
    # During a rolling upgrade the Redis inbox holds entries of the previous version.
    cmd = _answer_a()
    old = orjson.dumps(
        {
            "k": "cmd",
            "c": cmd.model_dump(mode="json"),
            "at": NOW,
            "src": "r1",
            "conn": 4,
            "device": "dev",
        }
    )
    assert orjson.loads(Envelope(KIND_COMMAND, cmd, NOW, "r1", 4, device="dev").encode()) == (
        orjson.loads(old)
    )
    hello = orjson.loads(Envelope(KIND_HOST, None, NOW, "r1", 4, code="ABCDEF").encode())
    assert (hello["k"], hello["c"], hello["code"]) == ("host", None, "ABCDEF")


def test_a_command_that_does_not_validate_is_refused_to_its_sender() -> None:
    engine, out = _engine(), Outcome()
    state = game.new_game(GAME, QUIZ)
    raw = orjson.dumps({"k": "cmd", "c": {"type": "answer"}, "at": NOW, "src": "r1", "conn": 5})
    assert engine.apply_entry(state, raw, NOW, out) is state
    kind, _type, conn, frame = out.items[REPLY][0]
    assert (kind, conn, orjson.loads(frame)["code"]) == ("conn", 5, "bad_command")


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


@pytest.mark.parametrize(
    "row",
    [
        ResultRow(True, True, 900, 1900, 1, 2),
        ResultRow(False, False, 0, 0, 10_000, 0),
        ResultRow(True, None, 0, 120, 3, 0),  # a poll: no verdict
        [True, False, 0, -5, 7, 0],  # as a batch decoded from Redis holds it
    ],
)
def test_each_players_result_is_the_message_the_protocol_defines(row: Any) -> None:
    for version, question in ((7, 0), (123_456, 19)):
        frame = personal_frames(version, question)(row)
        assert frame == personal_frame(version, question, row)
        message = ServerMessageAdapter.validate_json(frame)
        assert message.type == "personal_result"
        assert (message.version, message.question_index) == (version, question)
        assert tuple(message.result.model_dump().values()) == tuple(row)


def test_a_kick_tells_the_player_and_asks_replicas_to_close_it_and_ban_its_nickname() -> None:
    engine = _engine()
    state = _join(engine, game.new_game(GAME, QUIZ), "victim", 3)
    out = Outcome()
    _command(engine, state, game.Kick(player_id=PlayerId("victim")), out)
    items = out.items[ROOM]
    assert items[0][:3] == ["player", "kicked", "victim"]
    assert ["kicked", "victim", "victim"] in items


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


def test_a_snapshot_and_inbox_entries_a_newer_replica_wrote_are_read_by_this_one() -> None:
    # A newer replica saved the game and queued an answer with fields this one does not know
    # (a rolling update, or a rollback): this replica takes the game over and plays on.
    engine = _engine()
    state = _join(engine, _join(engine, game.new_game(GAME, QUIZ), "a", 1), "b", 2)
    state = _command(engine, state, game.Start(), Outcome())
    state = _command(engine, state, _answer_a(), Outcome())
    state = _command(engine, state, game.Skip(), Outcome())  # closes question 0: a log entry
    base, new_log = encode_snapshot(state, 0)
    newer = orjson.loads(base)
    newer["future_field"] = 1
    newer["players"]["a"]["future_flag"] = True
    newer["quiz"]["questions"][0]["future_hint"] = "x"
    logs = []
    for _, entry in new_log:
        logged = orjson.loads(entry)
        logged["future_stat"] = 2
        logs.append(orjson.dumps(logged))
    restored = decode_snapshot(Snapshot(orjson.dumps(newer), "1-0", tuple(logs)))
    assert restored == state
    restored = _command(engine, restored, game.Next(), Outcome())
    restored = _command(engine, restored, game.Next(), Outcome())  # question 1 is open
    answer = game.Answer(player_id=PlayerId("b"), question_index=1, choices=[0])
    entry = orjson.loads(Envelope(KIND_COMMAND, answer, NOW + 1, "r2", 9).encode())
    entry["c"]["future_detail"] = "typed"
    entry["future_envelope_field"] = 1
    out = Outcome()
    engine.apply_entry(restored, orjson.dumps(entry), NOW + 1, out)
    assert out.answers == ["accepted"]


def test_a_resume_after_a_failure_carries_the_failure_time_beside_the_command() -> None:
    engine = _engine()
    state = _join(engine, game.new_game(GAME, QUIZ), "a", 1)
    state = _command(engine, state, game.Start(), Outcome())
    assert state.deadline is not None
    opened = state.deadline - QUIZ.questions[0].time_limit_seconds  # answers open
    entry = Envelope(KIND_RESUME, game.Reconnect(player_id=PlayerId("a")), opened + 3, "r2", 9)
    raw = entry._replace(since=opened + 1).encode()
    assert b"outage_since" not in raw  # an older owner still reads the command
    out = Outcome()
    state = engine.apply_entry(state, raw, opened + 3, out)
    assert state.credits[PlayerId("a")] == 2.0
    assert ["resumed", "a", "r2", 9] in out.items[ROOM]


def test_every_snapshot_of_a_changing_game_round_trips_whatever_it_reuses() -> None:
    engine = _engine()
    state = game.new_game(GAME, QUIZ)
    for i, pid in enumerate(("a", "b", "c")):
        state = _join(engine, state, pid, i)
    states = [state]
    state = _command(engine, state, game.Start(), Outcome())
    states.append(state)
    assert state.deadline is not None
    opened = state.deadline - QUIZ.questions[0].time_limit_seconds
    for i, pid in enumerate(("a", "b")):  # answers: players and quiz unchanged, reused
        answer = game.Answer(player_id=PlayerId(pid), question_index=0, choices=[i])
        state = game.apply(state, answer, opened + 1 + i).state
        states.append(state)
    state = game.apply(state, game.Disconnect(player_id=PlayerId("c")), opened + 4).state
    states.append(state)  # a presence change: the players change
    state = game.apply(state, game.Skip(), opened + 5).state
    states.append(state)  # closed: tallies change
    for saved in states:
        base, new_log = encode_snapshot(saved, 0)
        logs = tuple(entry for _, entry in new_log)
        assert decode_snapshot(Snapshot(base, "1-0", logs)) == saved


def test_a_snapshot_saves_players_as_the_whole_state_saves_them_whatever_it_reuses() -> None:
    # Replicas of other versions read the snapshot as a whole saved state.
    engine = _engine()
    state = game.new_game(GAME, QUIZ)
    for i, pid in enumerate(("a", "b", 'c "quoted"')):
        state = _join(engine, state, pid, i)
    state = _command(engine, state, game.Start(), Outcome())
    states = [state]
    state = _command(engine, state, _answer_a(), Outcome())
    state = _command(engine, state, game.Skip(), Outcome())  # closed: new tallies
    states.append(state)
    state = _command(engine, state, game.Kick(player_id=PlayerId("b")), Outcome())
    states.append(state)  # one player fewer
    for saved in states:
        base, _ = encode_snapshot(saved, 0)
        whole = orjson.loads(saved.model_dump_json(exclude={"log"}))
        assert orjson.loads(base)["players"] == whole["players"]
    assert states[1].scores[PlayerId("a")].score > 0  # the tallies were written, not reused


@settings(max_examples=200, deadline=None)
@given(
    choices=st.lists(st.integers(0, 1000), max_size=8),
    text=st.none() | st.text(max_size=40),
    value=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    question_index=st.integers(0, 10_000),
)
def test_an_answers_envelope_is_the_json_the_models_serializer_gives(
    choices: list[int], text: str | None, value: float | None, question_index: int
) -> None:
    # Answers are encoded from their fields (every answer is encoded once on its way to the
    # inbox); the bytes are those of the model's own dump, which every version reads.
    answer = game.Answer(
        player_id=PlayerId("p1"),
        question_index=question_index,
        choices=choices,
        text=text,
        value=value,
    )
    env = Envelope(KIND_COMMAND, answer, NOW, "r1", 9, device="dev")
    expected = {
        "k": KIND_COMMAND,
        "c": answer.model_dump(mode="json"),
        "at": NOW,
        "src": "r1",
        "conn": 9,
        "device": "dev",
    }
    assert env.encode() == orjson.dumps(expected)


def test_every_field_of_an_answer_is_one_its_envelope_encodes() -> None:
    # A field added to answers would be left out of their envelopes: this fails first.
    assert tuple(game.Answer.model_fields) == _ANSWER_FIELDS
