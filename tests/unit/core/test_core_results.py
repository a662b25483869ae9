"""Final results: per player, per question and per answer, as the game service stores them."""

from __future__ import annotations

from tests.unit.core.core_builders import Game, make_game

from partyquiz_core.game import Answer, End, Kick, Next, Phase, Skip
from partyquiz_core.ids import PlayerId
from partyquiz_core.protocol import EndReason
from partyquiz_core.quiz import QuestionKind
from partyquiz_core.results import final_results

ANN, BOB, CID = PlayerId("p-ann"), PlayerId("p-bob"), PlayerId("p-cid")


def play_to_the_end(game: Game) -> None:
    while game.state.phase is not Phase.ENDED:
        game.do(Skip() if game.state.phase is Phase.QUESTION else Next())


def test_final_results_rank_players_and_count_their_answers() -> None:
    game = make_game("ann", "bob", "cid", started=True)
    # Q0 single: ann right fast, bob right slower, cid wrong.
    game.do(Answer(player_id=ANN, question_index=0, choices=[0]), at=1000.2)
    game.do(Answer(player_id=BOB, question_index=0, choices=[0]), at=1010)
    game.do(Answer(player_id=CID, question_index=0, choices=[1]), at=1011)
    game.do(Next())
    game.do(Next(), at=2000)
    # Q1 multiple (double points): bob fully right at 10 s, ann half right.
    game.do(Answer(player_id=BOB, question_index=1, choices=[0, 1]), at=2010)
    game.do(Answer(player_id=ANN, question_index=1, choices=[0]), at=2010)
    game.do(Skip())
    game.do(Next())
    game.do(Next(), at=3000)
    game.do(Skip())  # Q2 nobody answers
    game.do(Next())
    game.do(Next(), at=4000)
    game.do(Answer(player_id=CID, question_index=3, choices=[2]), at=4001)  # Q3 poll
    play_to_the_end(game)

    results = final_results(game.state)
    assert results.ended_reason is EndReason.FINISHED
    assert results.title == "Four kinds"
    assert [(p.player_id, p.rank, p.score, p.answered, p.correct) for p in results.players] == [
        (BOB, 1, 750 + 1500, 2, 2),
        (ANN, 2, 1000 + 750, 2, 1),
        (CID, 3, 0, 2, 0),
    ]
    q0, q1, q2, q3 = results.questions
    assert (q0.answered, q0.correct, q0.distribution) == (3, 2, [2, 1])
    assert q0.average_elapsed == round((0.2 + 10 + 11) / 3, 3)
    assert (q1.kind, q1.answered, q1.correct, q1.distribution) == (
        QuestionKind.MULTIPLE,
        2,
        1,
        [2, 1, 0, 0],
    )
    assert (q2.answered, q2.correct, q2.average_elapsed) == (0, 0, None)
    assert (q3.kind, q3.correct, q3.distribution) == (QuestionKind.POLL, None, [0, 0, 1])
    rows = [(r.question_index, r.player_id, r.points, r.correct) for r in results.answers]
    assert rows == [
        (0, ANN, 1000, True),
        (0, BOB, 750, True),
        (0, CID, 0, False),
        (1, ANN, 750, False),
        (1, BOB, 1500, True),
        (3, CID, 0, None),
    ]


def test_kicked_players_are_left_out_of_the_results() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(Answer(player_id=ANN, question_index=0, choices=[0]))
    game.do(Answer(player_id=BOB, question_index=0, choices=[0]))
    game.do(Kick(player_id=BOB))
    game.do(End())
    results = final_results(game.state)
    assert [p.player_id for p in results.players] == [ANN]
    assert {r.player_id for r in results.answers} == {ANN}
    assert results.questions[0].answered == 1
    assert results.ended_reason is EndReason.ENDED_BY_HOST


def test_a_game_ended_in_the_lobby_has_empty_results() -> None:
    game = make_game("ann")
    game.do(End())
    results = final_results(game.state)
    assert (results.questions, results.answers) == ([], [])
    assert [(p.rank, p.score) for p in results.players] == [(1, 0)]
