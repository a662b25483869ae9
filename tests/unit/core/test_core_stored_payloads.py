"""What a newer version stored is read by this one: unknown fields in a saved game, an inbox
command or a stored quiz are ignored; what a client or a host sends stays strict."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError
from tests.unit.core.core_builders import make_game

from partyquiz_core.errors import ValidationError
from partyquiz_core.game import (
    Answer,
    CommandAdapter,
    GameState,
    Next,
    Skip,
    apply,
    host_snapshot,
)
from partyquiz_core.ids import PlayerId
from partyquiz_core.protocol import parse_client_message
from partyquiz_core.quiz import Quiz, read_stored_quiz

A = PlayerId("p-ann")


def _with_unknown_fields(saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` with a field from the future at every level a game is made of."""
    saved["future_field"] = {"nested": [1, 2]}
    saved["settings"]["future_setting"] = True
    saved["settings"]["scoring"]["future_rule"] = 3
    for player in saved["players"].values():
        player["future_flag"] = "x"
    for entry in saved["log"]:
        entry["future_stat"] = 1.5
    quiz = saved["quiz"]
    quiz["future_cover"] = {"id": "abc"}
    quiz["settings"]["future_music"] = "loud"
    for question in quiz["questions"]:
        question["future_hint"] = "look closely"
        for choice in question["choices"]:
            choice["future_colour"] = "red"
    return saved


def test_a_saved_game_with_fields_this_version_does_not_know_is_read_back() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(Answer(player_id=A, question_index=0, choices=[0]), at=1001)
    game.do(Skip(), at=1002)
    state = game.state
    saved = _with_unknown_fields(json.loads(state.model_dump_json()))

    for loaded in (
        GameState.model_validate_json(json.dumps(saved)),
        GameState.model_validate(saved),
    ):
        assert loaded == state
        assert host_snapshot(loaded, 1003) == host_snapshot(state, 1003)
        # The game goes on from it exactly as from what this version saved.
        assert apply(loaded, Next(), 1004).events == apply(state, Next(), 1004).events


def test_an_inbox_command_with_a_field_this_version_does_not_know_is_applied() -> None:
    game = make_game("ann", "bob", started=True)
    stored = {**Answer(player_id=A, question_index=0, choices=[1]).model_dump(mode="json")}
    stored["future_detail"] = {"typed": "Rome"}
    command = CommandAdapter.validate_python(stored)
    assert command == Answer(player_id=A, question_index=0, choices=[1])
    receipt = apply(game.state, command, 1001).events[0].message
    assert receipt.type == "answer_receipt"


def test_a_stored_quiz_with_unknown_fields_is_read_but_a_sent_one_is_refused() -> None:
    quiz = json.loads(make_game().state.quiz.model_dump_json())
    quiz["future_cover"] = {"id": "abc"}
    quiz["questions"][0]["future_hint"] = "look closely"
    assert read_stored_quiz(quiz) == make_game().state.quiz
    assert read_stored_quiz(json.dumps(quiz)) == make_game().state.quiz
    with pytest.raises(PydanticValidationError) as refused:
        Quiz.model_validate(quiz)
    assert {".".join(map(str, e["loc"])) for e in refused.value.errors()} == {
        "future_cover",
        "questions.0.future_hint",
    }


def test_a_client_frame_with_an_unknown_field_is_still_refused() -> None:
    frame = json.dumps({"type": "answer", "question_index": 0, "choices": [0], "future": 1})
    with pytest.raises(ValidationError) as refused:
        parse_client_message(frame)
    assert refused.value.code == "bad_frame"
    assert "future" in refused.value.message
