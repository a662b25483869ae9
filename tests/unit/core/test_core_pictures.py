"""Pictures in quizzes: how they are named, which role's messages carry them, and that a
quiz without them is written exactly as before (older replicas read it)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError
from tests.unit.core.core_builders import choices, make_game

from partyquiz_core.game import (
    Event,
    Everyone,
    GameState,
    Next,
    Skip,
    Start,
    host_snapshot,
    player_snapshot,
)
from partyquiz_core.ids import PlayerId
from partyquiz_core.protocol import Phase, QuestionMsg
from partyquiz_core.quiz import Question, QuestionKind, Quiz, QuizSettings, read_stored_quiz

A = PlayerId("p-ann")
PIC = "a" * 64
COVER = "c" * 64
SLIDE = "5" * 64


def picture_quiz(*, on_phones: bool) -> Quiz:
    return Quiz(
        title="Pictures",
        cover=COVER,
        settings=QuizSettings(images_on_phones=on_phones),
        questions=(
            Question(
                text="Which city is this?",
                choices=choices("Paris", "Rome"),
                correct=(0,),
                image=PIC,
                read_seconds=0,
            ),
            Question(kind=QuestionKind.INFO, text="Round two", image=SLIDE, read_seconds=0),
            Question(text="No picture", choices=choices("Yes", "No"), correct=(1,)),
        ),
    )


def question_event(quiz: Quiz) -> Event:
    game = make_game("ann", quiz=quiz)
    game.do(Start(), at=1000)
    (event,) = [e for e in game.events if e.message.type == "question"]
    return event


@pytest.mark.parametrize("given", [PIC, f"/images/{PIC}", PIC.upper(), f" {PIC} "])
def test_a_picture_is_named_by_its_digest_or_its_address(given: str) -> None:
    question = Question(text="Q", choices=choices("a", "b"), correct=(0,), image=given)
    assert question.image == PIC


@pytest.mark.parametrize("given", ["cat.png", "a" * 63, "https://example.com/x.png", ""])
def test_a_picture_named_otherwise_is_refused_with_its_place(given: str) -> None:
    document: dict[str, Any] = json.loads(picture_quiz(on_phones=False).model_dump_json())
    document["questions"][1]["image"] = given
    with pytest.raises(PydanticValidationError) as refused:
        Quiz.model_validate(document)
    (error,) = refused.value.errors()
    assert error["loc"] == ("questions", 1, "image")
    assert "SHA-256" in error["msg"]


def test_a_quiz_lists_every_picture_with_where_it_is_shown() -> None:
    assert picture_quiz(on_phones=False).pictures() == [
        ("cover", COVER),
        ("questions.0.image", PIC),
        ("questions.1.image", SLIDE),
    ]


def test_a_quiz_without_pictures_is_written_as_before() -> None:
    quiz = Quiz(
        title="Plain", questions=(Question(text="Q", choices=choices("a", "b"), correct=(0,)),)
    )
    saved = json.loads(quiz.model_dump_json())
    assert "cover" not in saved
    assert "image" not in saved["questions"][0]
    assert "images_on_phones" not in saved["settings"]


def test_pictures_kept_off_phones_reach_only_the_hosts_screen() -> None:
    event = question_event(picture_quiz(on_phones=False))
    assert event.audience == Everyone()
    assert isinstance(event.message, QuestionMsg)
    assert event.message.image is None
    assert "image" not in json.loads(event.message.model_dump_json())
    assert isinstance(event.host_message, QuestionMsg)
    assert event.host_message.image == f"/images/{PIC}"
    # The same question otherwise: same version, text, choices and times.
    assert event.host_message.model_copy(update={"image": None}) == event.message


def test_pictures_on_phones_go_to_everyone_in_one_message() -> None:
    event = question_event(picture_quiz(on_phones=True))
    assert isinstance(event.message, QuestionMsg)
    assert event.message.image == f"/images/{PIC}"
    assert event.host_message is None


def test_a_question_without_a_picture_is_one_message_for_everyone() -> None:
    game = make_game("ann", quiz=picture_quiz(on_phones=False), started=True)
    while game.state.question_index < 2:
        game.do(Skip() if game.state.phase is Phase.QUESTION else Next())
    last = [e for e in game.events if e.message.type == "question"][-1]
    assert isinstance(last.message, QuestionMsg)
    assert (last.message.text, last.message.image, last.host_message) == ("No picture", None, None)


@pytest.mark.parametrize("on_phones", [False, True])
def test_snapshots_carry_pictures_per_role(on_phones: bool) -> None:
    game = make_game("ann", quiz=picture_quiz(on_phones=on_phones))
    host_lobby, player_lobby = host_snapshot(game.state, 1000), player_snapshot(game.state, A, 1000)
    assert host_lobby.cover == f"/images/{COVER}"
    assert player_lobby.cover == (f"/images/{COVER}" if on_phones else None)
    game.do(Start(), at=1000)
    host_view = host_snapshot(game.state, 1001).question
    player_view = player_snapshot(game.state, A, 1001).question
    assert host_view is not None
    assert player_view is not None
    assert host_view.image == f"/images/{PIC}"
    assert player_view.image == (f"/images/{PIC}" if on_phones else None)


def test_a_picture_tells_nothing_of_the_answer_before_the_reveal() -> None:
    event = question_event(picture_quiz(on_phones=True))
    sent = json.loads(event.message.model_dump_json())
    assert set(sent) == {
        "type", "version", "index", "total", "text", "kind", "choices", "time_limit",
        "points", "deadline", "server_now", "opens_at", "shows_at", "image",
    }  # fmt: skip
    assert "correct" not in json.dumps(sent)
    assert "accepted" not in json.dumps(sent)


def test_a_saved_game_with_pictures_is_read_by_a_version_that_knows_none() -> None:
    # What a replica of the previous version does with a game this one saved: it reads the
    # quiz as stored (unknown fields dropped) and plays on without the pictures.
    game = make_game("ann", quiz=picture_quiz(on_phones=True), started=True)
    saved = json.loads(game.state.model_dump_json())
    assert saved["quiz"]["questions"][0]["image"] == PIC
    for part in (saved["quiz"], *saved["quiz"]["questions"]):
        part["future_picture_detail"] = {"alt": "a city"}
    saved["quiz"]["settings"]["future_setting"] = True
    loaded = GameState.model_validate(saved)
    assert loaded.quiz == game.state.quiz
    assert read_stored_quiz(saved["quiz"]) == game.state.quiz
