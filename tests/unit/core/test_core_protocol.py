"""Wire protocol: parsing client frames, the server message union, and splitting a reveal."""

from __future__ import annotations

import json
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.core.core_builders import make_game

from partyquiz_core import protocol
from partyquiz_core.errors import ValidationError
from partyquiz_core.game import Answer, Skip, Start, apply, player_snapshot
from partyquiz_core.ids import PlayerId
from partyquiz_core.protocol import (
    MAX_FRAME_BYTES,
    AnswerMsg,
    ClientMessageAdapter,
    ErrorMsg,
    JoinMsg,
    PersonalResultMsg,
    RevealMsg,
    ServerMessageAdapter,
    StateMsg,
    WelcomeMsg,
    parse_client_message,
)


def _union_members(alias: object) -> list[type[protocol.BaseModel]]:
    union = typing.get_args(alias)[0]
    return list(typing.get_args(union))


def test_every_message_type_is_unique_and_documented_in_its_model() -> None:
    for alias in (protocol.ClientMessage, protocol.ServerMessage):
        members = _union_members(alias)
        types = [m.model_fields["type"].default for m in members]
        assert len(types) == len(set(types))
        assert all(isinstance(t, str) and t for t in types)
    server_types = {m.model_fields["type"].default for m in _union_members(protocol.ServerMessage)}
    assert {"welcome", "question", "answer_receipt", "reveal", "error", "state"} <= server_types


def test_every_server_message_carries_a_version() -> None:
    for member in _union_members(protocol.ServerMessage):
        assert "version" in member.model_fields


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"type":"join","code":"ABCDEF","nickname":"ann","device_id":"d1"}', JoinMsg),
        ('{"type":"answer","question_index":2,"choices":[0,3]}', AnswerMsg),
        (b'{"type":"resume_game"}', protocol.ResumeGameMsg),
        ('{"type":"kick","player_id":"p-1"}', protocol.KickMsg),
        ('{"type":"ping","t":12.5}', protocol.PingMsg),
    ],
)
def test_client_frames_parse_into_their_message(frame: str | bytes, expected: type) -> None:
    assert isinstance(parse_client_message(frame), expected)


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "not json",
        "[]",
        '{"type":"nope"}',
        '{"no":"type"}',
        '{"type":"answer","question_index":-1,"choices":[0]}',
        '{"type":"answer","question_index":0,"choices":[0,1,2,3,4,5,6]}',
        '{"type":"answer","question_index":0,"choices":"0"}',
        '{"type":"start","extra":1}',
        '{"type":"join","code":"ABCDEF","nickname":"ann"}',
        '{"type":"join","code":"ABCDEF","nickname":"ann","device_id":""}',
    ],
)
def test_malformed_frames_are_refused_with_bad_frame(frame: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_client_message(frame)
    assert err.value.code == "bad_frame"


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"answer","question_index":"0","choices":[0]}',
        '{"type":"answer","question_index":0.0,"choices":[0]}',
        '{"type":"answer","question_index":true,"choices":[0]}',
        '{"type":"answer","question_index":0,"choices":[true]}',
        '{"type":"answer","question_index":0,"choices":["1"]}',
        '{"type":"answer","question_index":0,"choices":[1.0]}',
        '{"type":"ping","t":NaN}',
        '{"type":"ping","t":Infinity}',
        '{"type":"ping","t":-Infinity}',
        '{"type":"ping","t":1e400}',
        '{"type":"ping","t":"1"}',
        '{"type":"join","code":123456,"nickname":"ann","device_id":"d1"}',
        '{"type":"join","code":"ABCDEF","nickname":7,"device_id":"d1"}',
        '{"type":"kick","player_id":12}',
        '{"type":"host","host_token":null}',
    ],
)
def test_values_of_the_wrong_json_type_are_refused_not_coerced(frame: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_client_message(frame)
    assert err.value.code == "bad_frame"


def test_a_ping_time_may_be_any_finite_json_number() -> None:
    ping = parse_client_message('{"type":"ping","t":12}')
    assert isinstance(ping, protocol.PingMsg)
    assert ping.t == 12.0


def test_oversized_frames_are_refused_before_parsing() -> None:
    big = json.dumps({"type": "ping", "pad": "é" * MAX_FRAME_BYTES})
    with pytest.raises(ValidationError) as err:
        parse_client_message(big)
    assert err.value.code == "too_large"


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_no_frame_makes_the_parser_fail_other_than_with_a_domain_error(frame: bytes | str) -> None:
    try:
        parse_client_message(frame)
        outcome = "parsed"
    except ValidationError as err:
        outcome = err.code
    assert outcome in {"parsed", "bad_frame", "too_large"}


def test_client_messages_round_trip_through_json() -> None:
    message = AnswerMsg(question_index=1, choices=[2, 0])
    assert ClientMessageAdapter.validate_json(message.model_dump_json()) == message


def _revealed_game() -> tuple[RevealMsg, list[PlayerId]]:
    game = make_game("ann", "bob", "cid", started=True)
    ann, bob = PlayerId("p-ann"), PlayerId("p-bob")
    game.do(Answer(player_id=ann, question_index=0, choices=[0]), at=1000.2)
    game.do(Answer(player_id=bob, question_index=0, choices=[1]), at=1004)
    reveal = game.do(Skip(), at=1005).events[0].message
    assert isinstance(reveal, RevealMsg)
    return reveal, [ann, bob, PlayerId("p-cid")]


def test_a_reveal_splits_into_a_public_part_and_personal_results() -> None:
    reveal, (ann, bob, cid) = _revealed_game()
    public = reveal.public()
    assert public.results == {}
    assert (public.correct, public.distribution, public.version) == (
        [0],
        [1, 1],
        reveal.version,
    )
    mine = reveal.personal(ann)
    assert isinstance(mine, PersonalResultMsg)
    assert (mine.version, mine.question_index) == (reveal.version, 0)
    assert (mine.result.correct, mine.result.points, mine.result.rank) == (True, 1000, 1)
    assert reveal.personal(PlayerId("ghost")) is None
    split = dict(reveal.split())
    assert set(split) == {ann, bob, cid}
    assert split[cid].result.answered is False


def test_server_messages_round_trip_through_the_union() -> None:
    reveal, players = _revealed_game()
    assert ServerMessageAdapter.validate_json(reveal.model_dump_json()) == reveal
    game = make_game("ann")
    state = game.do(Start()).state
    snapshot = player_snapshot(state, PlayerId("p-ann"), game.now)
    for message in (
        WelcomeMsg(
            version=state.version,
            player_id=PlayerId("p-ann"),
            nickname="ann",
            resume_token="opaque",
            state=snapshot,
        ),
        StateMsg(version=state.version, state=snapshot),
        ErrorMsg(code="late", message="time is up"),
    ):
        assert ServerMessageAdapter.validate_json(message.model_dump_json()) == message
    assert players


def test_events_of_a_whole_game_survive_the_wire() -> None:
    game = make_game("ann", "bob", started=True)
    ann = PlayerId("p-ann")
    game.do(Answer(player_id=ann, question_index=0, choices=[0]))
    transition = apply(game.state, Skip(), game.now + 1)
    for event in [*game.events, *transition.events]:
        wire = event.message.model_dump_json()
        assert ServerMessageAdapter.validate_json(wire) == event.message
