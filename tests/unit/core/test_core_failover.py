"""Time a player lost to a failed game-service replica is given back, from server time only."""

from __future__ import annotations

import pytest
from tests.unit.core.core_builders import make_game

from partyquiz_core.errors import AnswerRejectedError
from partyquiz_core.game import (
    MAX_OUTAGE_CREDIT_SECONDS,
    Answer,
    GameState,
    Reconnect,
    Tick,
    apply,
    next_deadline,
    player_snapshot,
)
from partyquiz_core.ids import PlayerId
from partyquiz_core.protocol import Phase

ANN, BOB = PlayerId("p-ann"), PlayerId("p-bob")
# The first question opens at 1000 with a 20 s limit: its deadline is 1020.


def test_a_player_of_a_failed_replica_answers_after_the_deadline_with_its_real_time() -> None:
    game = make_game("ann", "bob", started=True)
    # Its replica was last alive at 1015; it is back at 1019 (4 s lost) and answers at 1021.
    game.do(Reconnect(player_id=ANN, outage_since=1015.0), at=1019.0)
    assert game.state.credits[ANN] == 4.0
    receipt = game.do(Answer(player_id=ANN, question_index=0, choices=[0]), at=1021.0)
    assert receipt.events[0].message.elapsed == 17.0  # 15 s before the failure, 2 s after
    assert game.state.answers[ANN].elapsed == 17.0
    # Nobody else gets that time.
    with pytest.raises(AnswerRejectedError) as late:
        apply(game.state, Answer(player_id=BOB, question_index=0, choices=[0]), 1021.5)
    assert late.value.code == "late"


def test_the_question_stays_open_for_a_credited_player_until_it_answers_or_its_time_is_up() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(Reconnect(player_id=ANN, outage_since=1010.0), at=1013.0)
    assert next_deadline(game.state) == 1023.0
    assert game.do(Tick(), at=1021.0).events == []  # bob's deadline passed, ann's did not
    assert game.state.phase is Phase.QUESTION
    me = player_snapshot(game.state, ANN, 1021.0)
    assert (me.deadline, me.remaining) == (1023.0, 2.0)
    game.do(Tick(), at=1023.0)
    assert game.state.phase is Phase.REVEAL
    assert not game.state.credits


@pytest.mark.parametrize(
    ("since", "back", "expected"),
    [
        (None, 1010.0, None),  # a reconnect without a failure gets nothing
        (1021.0, 1022.0, None),  # the failure came after the deadline
        (995.0, 1004.0, 4.0),  # counted from the question opening, not before
        (1002.0, 1019.0, MAX_OUTAGE_CREDIT_SECONDS),  # at most this much
    ],
)
def test_credit_counts_only_the_open_questions_time_lost_to_the_failure(
    since: float | None, back: float, expected: float | None
) -> None:
    game = make_game("ann", "bob", started=True)
    game.do(Reconnect(player_id=ANN, outage_since=since), at=back)
    assert game.state.credits.get(ANN) == expected


def test_an_answer_given_before_the_failure_keeps_its_time_and_gets_no_credit() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(Answer(player_id=ANN, question_index=0, choices=[0]), at=1003.0)
    game.do(Reconnect(player_id=ANN, outage_since=1004.0), at=1008.0)
    assert not game.state.credits
    assert game.state.answers[ANN].elapsed == 3.0


def test_credits_are_saved_only_while_there_are_some() -> None:
    game = make_game("ann", "bob", started=True)
    assert "credits" not in game.state.model_dump_json()
    game.do(Reconnect(player_id=ANN, outage_since=1010.0), at=1013.0)
    saved = game.state.model_dump_json()
    assert GameState.model_validate_json(saved).credits[ANN] == 3.0
    # The failure time travels beside a reconnect, never inside it.
    assert "outage_since" not in Reconnect(player_id=ANN, outage_since=1.0).model_dump_json()
