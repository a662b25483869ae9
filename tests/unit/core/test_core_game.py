"""The game state machine: every transition, every refusal, and what players and host see."""

from __future__ import annotations

import json

import pytest
from tests.unit.core.core_builders import Game, choices, four_kind_quiz, make_game

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
from partyquiz_core.game import (
    Answer,
    Command,
    Disconnect,
    End,
    EndReason,
    Everyone,
    GameSettings,
    GameState,
    Host,
    HostPresence,
    Join,
    Kick,
    LockJoining,
    Next,
    Pause,
    Phase,
    Player,
    Reconnect,
    Resume,
    Skip,
    Start,
    Tick,
    UnlockJoining,
    apply,
    command_from_message,
    host_snapshot,
    joined_player,
    new_game,
    next_deadline,
    player_snapshot,
    ranked_players,
    tally_of,
    validate_nickname,
)
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_core.protocol import (
    AnswerMsg,
    HostMsg,
    JoinMsg,
    KickMsg,
    LockMsg,
    PingMsg,
    ResumeGameMsg,
    ResumeMsg,
    RevealMsg,
    StartMsg,
    parse_client_message,
)
from partyquiz_core.quiz import Choice, Question, QuestionKind, Quiz, QuizSettings
from partyquiz_core.scoring import ScoringRules

A, B, C = PlayerId("p-ann"), PlayerId("p-bob"), PlayerId("p-cid")


def refused(game: Game, command: Command, error: type[PartyQuizError], code: str) -> None:
    """Assert ``command`` is refused with ``error``/``code`` and the state is left as it was."""
    before = game.state.model_dump_json()
    with pytest.raises(error) as err:
        apply(game.state, command, game.now)
    assert err.value.code == code
    assert game.state.model_dump_json() == before


def answer(player: PlayerId, *picks: int, question: int = 0) -> Answer:
    return Answer(player_id=player, question_index=question, choices=list(picks))


def to_reveal_of(game: Game, index: int) -> None:
    """Move a started game forward to the reveal of question ``index`` (nobody answers)."""
    while not (game.state.phase is Phase.REVEAL and game.state.question_index == index):
        game.do(Skip() if game.state.phase is Phase.QUESTION else Next())


# --- lobby and joining -----------------------------------------------------------------------


def test_a_new_game_waits_in_the_lobby() -> None:
    game = make_game()
    assert game.state.phase is Phase.LOBBY
    assert game.state.version == 0
    assert next_deadline(game.state) is None


def test_joining_adds_the_player_and_tells_the_host() -> None:
    game = make_game()
    transition = game.do(Join(player_id=A, device_id=DeviceId("d1"), nickname="  Ann  "))
    player = transition.state.players[A]
    assert (player.nickname, player.device_id, player.connected) == ("Ann", "d1", True)
    assert tally_of(transition.state, A) == (0, 0)
    assert transition.state.version == 1
    [event] = transition.events
    assert event.audience == Host()
    assert event.message.type == "lobby"
    assert event.message.joined[0].nickname == "Ann"
    assert event.message.player_count == 1


@pytest.mark.parametrize(
    "nickname", ["", "   ", "x" * 21, "bad\x00name", "tab\tname", "zero\u200bwidth", "rtl\u202e"]
)
def test_bad_nicknames_are_refused(nickname: str) -> None:
    game = make_game()
    refused(
        game,
        Join(player_id=A, device_id=DeviceId("d"), nickname=nickname),
        ValidationError,
        "invalid_nickname",
    )


def test_nicknames_may_use_any_script_up_to_twenty_characters() -> None:
    assert validate_nickname("Zoë 🎉") == "Zoë 🎉"
    assert validate_nickname("" + "あ" * 20) == "あ" * 20


def test_a_taken_nickname_is_refused_whatever_its_case() -> None:
    game = make_game("Ann")
    refused(
        game,
        Join(player_id=B, device_id=DeviceId("d2"), nickname=" aNN "),
        ConflictError,
        "nickname_taken",
    )


def test_a_nickname_is_free_again_after_its_player_is_kicked() -> None:
    game = make_game("ann")
    game.do(Kick(player_id=A))
    game.do(Join(player_id=B, device_id=DeviceId("other"), nickname="ANN"))
    assert game.state.players[B].nickname == "ANN"


def test_a_player_id_cannot_join_twice() -> None:
    game = make_game("ann")
    refused(
        game,
        Join(player_id=A, device_id=DeviceId("d9"), nickname="Other"),
        ConflictError,
        "player_exists",
    )


def test_a_full_game_refuses_more_players() -> None:
    game = make_game("ann", "bob", settings=GameSettings(max_players=2))
    refused(
        game,
        Join(player_id=C, device_id=DeviceId("d3"), nickname="cid"),
        ConflictError,
        "game_full",
    )


def test_locked_joining_refuses_players_until_unlocked() -> None:
    game = make_game("ann")
    transition = game.do(LockJoining())
    assert transition.state.joining_locked
    assert [e.message.type for e in transition.events] == ["lobby"]
    join = Join(player_id=B, device_id=DeviceId("d2"), nickname="bob")
    refused(game, join, ForbiddenError, "joining_locked")
    game.do(UnlockJoining())
    game.do(join)
    assert B in game.state.players


def test_locking_twice_or_unlocking_an_open_game_changes_nothing() -> None:
    # A double-click, or two host screens pressing at once, is harmless.
    game = make_game("ann")
    before = game.state
    assert game.do(UnlockJoining()) == (before, [])
    locked = game.do(LockJoining()).state
    assert game.do(LockJoining()) == (locked, [])
    assert game.state.joining_locked


def test_players_can_join_late_and_answer_the_open_question() -> None:
    game = make_game("ann", started=True)
    game.later(3)
    transition = game.do(Join(player_id=B, device_id=DeviceId("d-bob"), nickname="bob"))
    assert [e.message.type for e in transition.events] == ["lobby", "answer_count"]
    game.do(answer(B, 0))
    assert B in game.state.answers


def test_nobody_joins_once_the_game_is_over() -> None:
    game = make_game("ann", started=True)
    game.do(End())
    refused(
        game,
        Join(player_id=B, device_id=DeviceId("d2"), nickname="bob"),
        GameStateError,
        "game_over",
    )


# --- start, questions and answers -------------------------------------------------------------


def test_the_game_cannot_start_without_players() -> None:
    refused(make_game(), Start(), IllegalTransitionError, "no_players")


def test_start_opens_the_first_question_without_revealing_the_answer() -> None:
    game = make_game("ann")
    transition = game.do(Start())
    state = transition.state
    assert state.phase is Phase.QUESTION
    assert (state.question_index, state.opened_at, state.deadline) == (0, 1000.0, 1020.0)
    assert next_deadline(state) == 1020.0
    [event] = transition.events
    assert event.audience == Everyone()
    message = event.message.model_dump()
    assert message["type"] == "question"
    assert message["choices"] == ["Paris", "Rome"]
    assert (message["deadline"], message["server_now"], message["total"]) == (1020.0, 1000.0, 4)
    assert "correct" not in message


def test_start_is_only_possible_in_the_lobby() -> None:
    game = make_game("ann", started=True)
    refused(game, Start(), IllegalTransitionError, "illegal_transition")


def test_an_answer_gets_a_receipt_with_the_recorded_time() -> None:
    game = make_game("ann", "bob", started=True)
    game.later(4.25)
    transition = game.do(answer(A, 0))
    receipt, count = transition.events
    assert receipt.audience == Player(player_id=A)
    assert receipt.message.model_dump(exclude={"version"}) == {
        "type": "answer_receipt",
        "question_index": 0,
        "choices": [0],
        "elapsed": 4.25,
    }
    assert count.audience == Host()
    assert (count.message.answered, count.message.total) == (1, 2)
    # The score only moves at the reveal, so nothing leaks whether the answer was right.
    assert tally_of(transition.state, A).score == 0


def test_an_answer_counts_once() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(A, 0))
    refused(game, answer(A, 1), AnswerRejectedError, "duplicate")


def test_an_answer_after_the_deadline_is_rejected() -> None:
    game = make_game("ann", "bob", started=True)
    game.later(20.001)
    refused(game, answer(A, 0), AnswerRejectedError, "late")


def test_an_answer_exactly_at_the_deadline_still_counts() -> None:
    game = make_game("ann", "bob", started=True)
    game.later(20)
    game.do(answer(A, 0))
    assert game.state.answers[A].elapsed == 20.0


def test_an_answer_for_another_question_is_rejected() -> None:
    game = make_game("ann", "bob", started=True)
    refused(game, answer(A, 0, question=1), AnswerRejectedError, "wrong_question")


def test_answers_outside_an_open_question_are_rejected() -> None:
    game = make_game("ann", "bob")
    refused(game, answer(A, 0), AnswerRejectedError, "closed")
    game.do(Start())
    game.do(Skip())
    refused(game, answer(A, 0, question=1), AnswerRejectedError, "closed")


def test_an_answer_for_the_question_that_just_closed_is_late_however_late() -> None:
    game = make_game("ann", "bob", started=True)
    deadline = game.state.deadline
    assert deadline is not None
    game.now = deadline + 0.02
    refused(game, answer(A, 0), AnswerRejectedError, "late")  # before the owner's timer
    game.do(Tick(), at=deadline + 0.25)
    game.now = deadline + 0.3
    refused(game, answer(A, 0), AnswerRejectedError, "late")  # after it closed the question
    game.do(Next())
    refused(game, answer(A, 0), AnswerRejectedError, "late")  # still that question
    refused(game, answer(A, 0, question=1), AnswerRejectedError, "closed")


def test_an_unknown_player_cannot_answer() -> None:
    game = make_game("ann", started=True)
    refused(game, answer(PlayerId("ghost"), 0), NotFoundError, "unknown_player")


@pytest.mark.parametrize(
    ("question", "picks"),
    [
        (0, []),  # nothing picked
        (0, [2]),  # no such choice
        (0, [-1]),
        (0, [0, 1]),  # single choice takes one
        (1, [0, 0]),  # the same choice twice
        (1, [0, 4]),
    ],
)
def test_invalid_choices_are_rejected(question: int, picks: list[int]) -> None:
    game = make_game("ann", "bob", started=True)
    if question == 1:
        game.do(Skip())
        game.do(Next())
        game.do(Next())
    refused(
        game,
        Answer(player_id=A, question_index=question, choices=picks),
        AnswerRejectedError,
        "invalid_choice",
    )


def test_the_question_closes_when_everyone_has_answered() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(A, 0))
    transition = game.do(answer(B, 1))
    assert transition.state.phase is Phase.REVEAL
    assert [e.message.type for e in transition.events] == [
        "answer_receipt",
        "answer_count",
        "reveal",
    ]


def test_the_question_can_stay_open_until_the_deadline() -> None:
    game = make_game("ann", settings=GameSettings(close_when_all_answered=False), started=True)
    game.do(answer(A, 0))
    assert game.state.phase is Phase.QUESTION
    game.do(Tick(), at=game.state.deadline)
    assert game.state.phase is Phase.REVEAL


def test_a_tick_before_the_deadline_changes_nothing() -> None:
    game = make_game("ann", "bob", started=True)
    before = game.state
    transition = apply(before, Tick(), 1019.999)
    assert transition.state is before
    assert transition.events == []


def test_a_tick_at_the_deadline_reveals_the_answers_given() -> None:
    game = make_game("ann", "bob", "cid", started=True)
    game.do(answer(A, 0), at=1002)
    game.do(answer(B, 1), at=1010)
    transition = game.do(Tick(), at=1020)
    state = transition.state
    assert state.phase is Phase.REVEAL
    assert state.revealed_at == 1020
    [event] = transition.events
    reveal = event.message
    assert event.audience == Everyone()
    assert reveal.type == "reveal"
    assert (reveal.correct, reveal.distribution, reveal.answered, reveal.total) == (
        [0],
        [1, 1],
        2,
        3,
    )
    ann, bob, cid = (reveal.results[p] for p in (A, B, C))
    assert (ann.answered, ann.correct, ann.points, ann.score, ann.rank, ann.streak) == (
        True,
        True,
        950,
        950,
        1,
        1,
    )
    assert (bob.answered, bob.correct, bob.points, bob.rank) == (True, False, 0, 2)
    assert (cid.answered, cid.correct, cid.points, cid.rank) == (False, False, 0, 2)
    assert state.log[0].answers[A] == ((0,), 2.0, 950)
    assert state.log[0].distribution == (1, 1)


def test_ticks_outside_a_running_timer_change_nothing() -> None:
    game = make_game("ann")
    assert apply(game.state, Tick(), 5000).state is game.state
    game.do(Start())
    game.do(Skip())
    assert apply(game.state, Tick(), 1e9).state is game.state


def test_the_reveal_can_move_on_by_itself() -> None:
    game = make_game("ann", settings=GameSettings(reveal_seconds=5), started=True)
    game.do(Skip(), at=1003)
    assert next_deadline(game.state) == 1008
    assert apply(game.state, Tick(), 1007.9).events == []
    transition = game.do(Tick(), at=1008)
    assert transition.state.phase is Phase.LEADERBOARD
    assert [e.message.type for e in transition.events] == ["leaderboard"]
    assert next_deadline(transition.state) is None


# --- skip, next, podium and end ---------------------------------------------------------------


def test_skip_closes_the_question_early_and_answers_so_far_count() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(A, 0), at=1000.3)
    transition = game.do(Skip(), at=1005)
    assert transition.state.phase is Phase.REVEAL
    assert tally_of(transition.state, A).score == 1000


def test_skip_is_only_for_an_open_question() -> None:
    game = make_game("ann")
    refused(game, Skip(), IllegalTransitionError, "illegal_transition")
    game.do(Start())
    game.do(Skip())
    refused(game, Skip(), IllegalTransitionError, "illegal_transition")


def test_next_walks_reveal_leaderboard_question_then_podium_then_end() -> None:
    game = make_game("ann", started=True)
    phases = []
    for _ in range(4):
        game.do(Skip())
        phases.append(game.state.phase)
        game.do(Next())
        phases.append(game.state.phase)
        game.do(Next())
        phases.append(game.state.phase)
    assert phases == [Phase.REVEAL, Phase.LEADERBOARD, Phase.QUESTION] * 3 + [
        Phase.REVEAL,
        Phase.LEADERBOARD,
        Phase.PODIUM,
    ]
    assert [m.type for m in game.messages("podium")] == ["podium"]
    transition = game.do(Next())
    assert transition.state.phase is Phase.ENDED
    assert transition.state.ended_reason is EndReason.FINISHED
    assert [e.message.type for e in transition.events] == ["ended"]


@pytest.mark.parametrize("phase", [Phase.LOBBY, Phase.QUESTION, Phase.ENDED])
def test_next_is_illegal_in_the_lobby_an_open_question_and_after_the_end(phase: Phase) -> None:
    game = make_game("ann")
    if phase is not Phase.LOBBY:
        game.do(Start())
    if phase is Phase.ENDED:
        game.do(End())
    refused(game, Next(), IllegalTransitionError, "illegal_transition")


def test_the_leaderboard_shows_the_top_players() -> None:
    names = [f"p{i}" for i in range(8)]
    game = make_game(*names, settings=GameSettings(leaderboard_size=3), started=True)
    ids = [PlayerId(f"p-{n}") for n in names]
    for i, pid in enumerate(ids[:5]):
        game.do(answer(pid, 0), at=1001 + i)
    game.do(Skip())
    transition = game.do(Next())
    board = transition.events[0].message
    assert board.type == "leaderboard"
    assert [(e.player_id, e.rank) for e in board.entries] == [(ids[0], 1), (ids[1], 2), (ids[2], 3)]
    assert board.player_count == 8


def test_ties_share_a_rank_and_earlier_joiners_are_listed_first() -> None:
    game = make_game("ann", "bob", "cid", "dan", started=True)
    dan = PlayerId("p-dan")
    game.do(answer(B, 0), at=1000.1)
    game.do(answer(C, 0), at=1000.2)
    game.do(answer(A, 1), at=1001)
    game.do(answer(dan, 0), at=1010)
    ranking = [(p.id, t.score, rank) for p, t, rank in ranked_players(game.state)]
    assert ranking == [(B, 1000, 1), (C, 1000, 1), (dan, 750, 3), (A, 0, 4)]


def test_end_in_the_lobby_ends_the_game_by_the_host() -> None:
    game = make_game("ann")
    transition = game.do(End())
    assert transition.state.phase is Phase.ENDED
    assert transition.state.ended_reason is EndReason.ENDED_BY_HOST
    assert transition.state.version == 2


def test_end_during_a_question_reveals_it_with_everyones_result_then_ends() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(A, 0), at=1010)
    version = game.state.version
    transition = game.do(End(), at=1011)
    assert transition.state.phase is Phase.ENDED
    assert transition.state.version == version + 1
    assert tally_of(transition.state, A).score == 750
    assert len(transition.state.log) == 1
    reveal, ended = (e.message for e in transition.events)
    assert (reveal.type, ended.type) == ("reveal", "ended")
    assert reveal.version == ended.version == transition.state.version
    assert isinstance(reveal, RevealMsg)
    assert reveal.results[A].points == 750
    assert reveal.results[B].answered is False
    assert next_deadline(transition.state) is None


def test_end_at_the_podium_is_a_normal_finish() -> None:
    game = make_game("ann", started=True)
    to_reveal_of(game, 3)
    game.do(Next())
    game.do(Next())
    assert game.state.phase is Phase.PODIUM
    assert game.do(End()).state.ended_reason is EndReason.FINISHED


def test_an_ended_game_refuses_host_commands() -> None:
    game = make_game("ann", started=True)
    game.do(End())
    for command in (Start(), Next(), Skip(), Pause(), Resume(), LockJoining(), End()):
        refused(game, command, IllegalTransitionError, "illegal_transition")
    refused(game, Kick(player_id=A), IllegalTransitionError, "illegal_transition")


# --- pause and resume ---------------------------------------------------------------------------


def test_pause_freezes_the_time_left_and_resume_sets_a_new_deadline() -> None:
    game = make_game("ann", "bob", started=True)
    paused = game.do(Pause(), at=1008)
    assert paused.state.paused
    assert (paused.state.deadline, paused.state.remaining) == (None, 12.0)
    assert next_deadline(paused.state) is None
    assert paused.events[0].message.model_dump(exclude={"version"}) == {
        "type": "paused",
        "question_index": 0,
        "remaining": 12.0,
    }
    assert apply(paused.state, Tick(), 5000).state is paused.state  # no timer while paused
    resumed = game.do(Resume(), at=1100)
    assert not resumed.state.paused
    assert resumed.state.deadline == 1112.0
    assert resumed.state.remaining is None
    assert next_deadline(resumed.state) == 1112.0
    message = resumed.events[0].message
    assert (message.type, message.deadline, message.remaining) == ("resumed", 1112.0, 12.0)


def test_answers_are_refused_while_paused() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(Pause(), at=1005)
    refused(game, answer(A, 0), AnswerRejectedError, "paused")


def test_time_spent_paused_does_not_count_against_the_player() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(Pause(), at=1004)
    game.do(Resume(), at=1500)
    game.do(answer(A, 0), at=1506)  # 4 s before the pause + 6 s after it
    assert game.state.answers[A].elapsed == 10.0
    assert game.state.answers[A].points == 750


def test_pause_and_resume_only_fit_an_open_question() -> None:
    game = make_game("ann")
    refused(game, Pause(), IllegalTransitionError, "illegal_transition")
    game.do(Start())
    refused(game, Resume(), IllegalTransitionError, "illegal_transition")
    game.do(Pause())
    refused(game, Pause(), IllegalTransitionError, "illegal_transition")
    game.do(Resume())
    game.later(20.5)
    refused(game, Pause(), IllegalTransitionError, "illegal_transition")  # time is up


def test_skip_while_paused_closes_the_question() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(A, 0), at=1000.2)
    game.do(Pause())
    state = game.do(Skip()).state
    assert (state.phase, state.paused, state.remaining) == (Phase.REVEAL, False, None)


# --- kick ----------------------------------------------------------------------------------------


def test_kick_removes_the_player_and_tells_them_and_the_host() -> None:
    game = make_game("ann", "bob")
    transition = game.do(Kick(player_id=B))
    assert B not in transition.state.players
    assert transition.state.banned_devices == {"d-bob"}
    kicked, lobby = transition.events
    assert (kicked.audience, kicked.message.type) == (Player(player_id=B), "kicked")
    assert (lobby.audience, lobby.message.left, lobby.message.player_count) == (Host(), [B], 1)


def test_a_kicked_player_leaves_no_score_behind() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(A, 1))
    game.do(answer(B, 1))  # everyone answered: the question closes and both are scored
    assert set(game.state.scores) == {A, B}
    state = game.do(Kick(player_id=B)).state
    assert set(state.scores) == {A}
    assert [p.id for p, _, _ in ranked_players(state)] == [A]


def test_a_kicked_players_id_cannot_join_again_once_their_answers_are_logged() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(B, 0))
    game.do(Skip())
    game.do(Kick(player_id=B))
    refused(
        game,
        Join(player_id=B, device_id=DeviceId("d-new"), nickname="Robert"),
        ConflictError,
        "player_exists",
    )


def test_a_kicked_players_device_cannot_rejoin() -> None:
    game = make_game("ann", "bob")
    game.do(Kick(player_id=B))
    refused(
        game,
        Join(player_id=PlayerId("new-id"), device_id=DeviceId("d-bob"), nickname="Robert"),
        ForbiddenError,
        "banned",
    )


def test_a_kicked_player_can_do_nothing_more() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(Kick(player_id=B))
    refused(game, answer(B, 0), NotFoundError, "unknown_player")
    refused(game, Kick(player_id=B), NotFoundError, "unknown_player")
    refused(game, Disconnect(player_id=B), NotFoundError, "unknown_player")


def test_kicking_removes_the_open_answer_and_may_close_the_question() -> None:
    game = make_game("ann", "bob", "cid", started=True)
    game.do(answer(A, 0))
    game.do(answer(C, 1))
    transition = game.do(Kick(player_id=C))
    assert C not in transition.state.answers
    assert transition.events[-1].message.model_dump(exclude={"version"}) == {
        "type": "answer_count",
        "question_index": 0,
        "answered": 1,
        "total": 2,
    }
    transition = game.do(Kick(player_id=B))  # now everyone left has answered
    assert [e.message.type for e in transition.events] == [
        "kicked",
        "lobby",
        "answer_count",
        "reveal",
    ]
    assert transition.events[-1].message.distribution == [1, 0]
    assert set(transition.state.log[-1].answers) == {A}


def test_kicking_the_last_player_leaves_the_question_open() -> None:
    game = make_game("ann", started=True)
    transition = game.do(Kick(player_id=A))
    assert transition.state.phase is Phase.QUESTION
    assert len(transition.state.players) == 0


# --- presence ------------------------------------------------------------------------------------


def test_presence_is_recorded_without_events() -> None:
    game = make_game("ann")
    transition = game.do(Disconnect(player_id=A))
    assert not transition.state.players[A].connected
    assert (transition.state.version, transition.events) == (2, [])
    assert apply(transition.state, Disconnect(player_id=A), game.now).state is transition.state
    back = game.do(Reconnect(player_id=A))
    assert back.state.players[A].connected
    assert back.state.version == 3
    refused(game, Reconnect(player_id=PlayerId("ghost")), NotFoundError, "unknown_player")


# --- streaks across questions ---------------------------------------------------------------


def test_the_streak_bonus_builds_across_questions_and_polls_do_not_break_it() -> None:
    quiz = Quiz(
        title="streaks",
        questions=(
            *(
                Question(text=f"q{i}", choices=(Choice(text="y"), Choice(text="n")), correct=(0,))
                for i in range(3)
            ),
            Question(kind="poll", text="poll", choices=(Choice(text="a"), Choice(text="b"))),
            Question(text="last", choices=(Choice(text="y"), Choice(text="n")), correct=(0,)),
        ),
        settings=QuizSettings(streak_bonus=True),
    )
    # The quiz's own settings: the bonus is on, and each question is read before answering.
    game = Game(new_game(GameId("g-streak"), quiz))
    game.join("ann")
    game.do(Start())
    gains = []
    for index in range(5):
        before = tally_of(game.state, A).score
        question = quiz.questions[index]
        assert game.state.deadline is not None
        opens_at = game.state.deadline - question.time_limit_seconds
        game.do(answer(A, 0, question=index), at=opens_at + 0.1)
        gains.append(tally_of(game.state, A).score - before)
        if index < 4:
            game.do(Next())
            game.do(Next())
    assert gains == [1000, 1100, 1200, 0, 1300]
    assert tally_of(game.state, A).streak == 4
    assert [e.streak for e in game.messages("reveal")[-1].results.values()] == [4]


def test_without_the_streak_setting_a_streak_earns_no_bonus() -> None:
    quiz = Quiz(
        title="no bonus",
        questions=tuple(
            Question(text=f"q{i}", choices=choices("y", "n"), correct=(0,), read_seconds=0)
            for i in range(3)
        ),
        settings=QuizSettings(get_ready_seconds=0),
    )
    game = Game(new_game(GameId("g-plain"), quiz))
    game.join("ann")
    game.do(Start())
    for index in range(3):
        game.do(answer(A, 0, question=index), at=game.state.opened_at)
        if index < 2:
            game.do(Next())
            game.do(Next())
    assert tally_of(game.state, A) == (3000, 3)


# --- read pause, get ready ----------------------------------------------------------------


def test_answers_open_after_the_read_pause_and_the_time_limit_starts_then() -> None:
    quiz = Quiz(
        title="read first",
        questions=(
            Question(text="q0", choices=choices("y", "n"), correct=(0,), read_seconds=4),
            Question(text="q1", choices=choices("y", "n"), correct=(0,), read_seconds=3),
        ),
        settings=QuizSettings(get_ready_seconds=5),
    )
    game = Game(new_game(GameId("g-read"), quiz), now=1000)
    game.join("ann", "bob")
    first = game.do(Start()).events[0].message
    assert first.type == "question"
    # Get ready (5 s), read (4 s), then 20 s to answer.
    assert (first.shows_at, first.opens_at, first.deadline) == (1005, 1009, 1029)
    # A page that asks during the get-ready (reloaded, say) gets ready with the others.
    snap = player_snapshot(game.state, A, 1002)
    assert (snap.shows_at, snap.opens_at, snap.deadline) == (1005, 1009, 1029)
    refused(game.later(8.9), answer(A, 0), AnswerRejectedError, "not_open")
    snap = player_snapshot(game.state, A, game.now)
    assert (snap.shows_at, snap.opens_at, snap.deadline) == (1005, 1009, 1029)
    game.do(answer(A, 0), at=1009.6)
    assert game.state.answers[A].elapsed == 0.6  # counted from when answers opened
    assert tally_of(game.state, A) == (0, 0)
    game.do(answer(B, 1), at=1010)
    game.do(Next(), at=1011)
    second = game.do(Next(), at=1012).events[0].message
    assert second.type == "question"
    assert (second.shows_at, second.opens_at, second.deadline) == (1012, 1015, 1035)


def test_a_pause_during_the_read_pause_keeps_the_time_to_answer_whole() -> None:
    quiz = Quiz(
        title="read",
        questions=(Question(text="q", choices=choices("y", "n"), correct=(0,), read_seconds=5),),
    )
    game = make_game("ann", "bob", quiz=quiz, started=True)  # at 1000: opens 1005, ends 1025
    game.do(Pause(), at=1002)
    assert game.state.remaining == 23
    game.do(Resume(), at=1100)
    # Shown since before the pause: not hidden again, answers open after the reading left.
    snap = player_snapshot(game.state, A, 1100)
    assert (snap.shows_at, snap.opens_at, snap.deadline) == (1098, 1103, 1123)
    refused(game.later(2), answer(A, 0), AnswerRejectedError, "not_open")
    game.do(answer(A, 0), at=1103.25)
    assert game.state.answers[A].elapsed == 0.25
    assert game.state.deadline == 1123


# --- stale host commands --------------------------------------------------------------------


def test_a_second_next_from_the_same_view_is_refused_and_skips_nothing() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(Skip())
    reveal_version = game.state.version
    assert game.state.phase_version == reveal_version
    game.do(Next(version=reveal_version))
    assert game.state.phase is Phase.LEADERBOARD
    refused(game, Next(version=reveal_version), GameStateError, "stale_command")
    assert game.state.phase is Phase.LEADERBOARD
    game.do(Next(version=game.state.version))
    assert (game.state.phase, game.state.question_index) == (Phase.QUESTION, 1)


def test_answers_and_joins_do_not_make_the_hosts_view_stale() -> None:
    game = make_game("ann", "bob")
    lobby_version = game.state.version
    game.join("cid")
    game.do(LockJoining())
    game.do(Start(version=lobby_version))
    question_version = game.state.version
    game.do(answer(A, 0))
    game.do(Kick(player_id=C))
    game.do(Skip(version=question_version))
    assert game.state.phase is Phase.REVEAL
    refused(game, Skip(version=question_version), GameStateError, "stale_command")
    refused(game, Start(version=lobby_version), GameStateError, "stale_command")


def test_a_host_command_without_a_version_is_not_checked() -> None:
    game = make_game("ann", started=True)
    game.do(Skip())
    game.do(Next())
    assert game.state.phase is Phase.LEADERBOARD


def test_the_stale_check_is_carried_by_the_wire_messages() -> None:
    message = parse_client_message(b'{"type": "next", "version": 7}')
    command = command_from_message(message, None)
    assert command == Next(version=7)
    assert command_from_message(parse_client_message(b'{"type": "skip"}'), None) == Skip()


# --- coming back by code, kick in every phase ----------------------------------------------


def test_the_same_phone_typing_the_code_and_its_name_again_comes_back_with_its_score() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(A, 0), at=1001)
    game.do(Disconnect(player_id=A))
    game.do(Skip())
    game.do(LockJoining())
    score = tally_of(game.state, A)
    assert score.score > 0
    again = Join(player_id=PlayerId("p-new"), device_id=DeviceId("d-ann"), nickname=" ANN ")
    transition = game.do(again)
    assert set(transition.state.players) == {A, B}
    assert transition.state.players[A].connected
    assert joined_player(transition.state, again) == A
    assert tally_of(transition.state, A) == score
    other_phone = Join(player_id=PlayerId("p-x"), device_id=DeviceId("d-x"), nickname="ann")
    refused(game, other_phone, ForbiddenError, "joining_locked")
    game.do(UnlockJoining())
    refused(game, other_phone, ConflictError, "nickname_taken")
    assert joined_player(game.state, other_phone) is None


@pytest.mark.parametrize("phase", ["lobby", "question", "reveal", "leaderboard", "podium"])
def test_the_host_can_kick_and_lock_in_every_phase(phase: str) -> None:
    game = make_game(
        "ann",
        "bob",
        "cid",
        quiz=Quiz(
            title="one",
            questions=(
                Question(text="q", choices=choices("y", "n"), correct=(0,), read_seconds=0),
            ),
        ),
    )
    steps = {"question": [Start()], "reveal": [Start(), Skip()]}
    steps["leaderboard"] = [*steps["reveal"], Next()]
    steps["podium"] = [*steps["leaderboard"], Next()]
    for command in steps.get(phase, []):
        game.do(command)
    assert game.state.phase == phase
    game.do(Kick(player_id=C))
    game.do(LockJoining())
    assert set(game.state.players) == {A, B}
    assert game.state.joining_locked


def test_a_poll_may_have_two_choices() -> None:
    poll = Question(kind=QuestionKind.POLL, text="Tea or coffee?", choices=choices("Tea", "Coffee"))
    game = make_game("ann", quiz=Quiz(title="p", questions=(poll,)), started=True)
    game.do(answer(A, 1), at=game.state.deadline - 20)
    assert game.messages("reveal")[-1].distribution == [0, 1]


# --- auto-advance and leaderboard size ------------------------------------------------------


def test_the_quiz_can_move_on_by_itself_and_size_its_leaderboard() -> None:
    quiz = Quiz(
        title="auto",
        questions=tuple(
            Question(text=f"q{i}", choices=choices("y", "n"), correct=(0,), read_seconds=0)
            for i in range(2)
        ),
        settings=QuizSettings(auto_advance_seconds=5, leaderboard_size=1, get_ready_seconds=0),
    )
    game = Game(new_game(GameId("g-auto"), quiz), now=1000)
    game.join("ann", "bob")
    game.do(Start())
    game.do(Skip(), at=1001)
    assert next_deadline(game.state) == 1006
    game.do(Tick(), at=1006)
    assert game.state.phase is Phase.LEADERBOARD
    assert len(game.messages("leaderboard")[-1].entries) == 1
    assert next_deadline(game.state) == 1011
    game.do(Tick(), at=1010.9)
    assert game.state.phase is Phase.LEADERBOARD
    game.do(Tick(), at=1011)
    assert (game.state.phase, game.state.question_index) == (Phase.QUESTION, 1)
    game.do(Skip(), at=1012)
    game.do(Tick(), at=1017)
    game.do(Tick(), at=1022)
    assert game.state.phase is Phase.PODIUM
    assert next_deadline(game.state) is None  # the podium waits for the host


# --- snapshots -------------------------------------------------------------------------------


def test_a_saved_state_keeps_each_players_score_inside_the_player() -> None:
    # The layout every version reads and writes: replicas of the previous version (which held
    # scores in the players) and of this one take over each other's games during an update.
    settings = GameSettings(scoring=ScoringRules(streak_bonus=True))
    game = make_game("ann", "bob", "cid", settings=settings, started=True)
    game.do(answer(A, 1), at=1001)
    game.do(answer(B, 0), at=1002)
    game.do(Skip())
    game.do(Join(player_id=PlayerId("p-dan"), device_id=DeviceId("d-dan"), nickname="dan"))
    state = game.state
    saved = json.loads(state.model_dump_json())
    assert "scores" not in saved
    assert {p: (v["score"], v["streak"]) for p, v in saved["players"].items()} == {
        p: tally_of(state, p) for p in state.players
    }
    assert set(saved["players"][A]) == {
        "id",
        "nickname",
        "device_id",
        "seq",
        "score",
        "streak",
        "connected",
    }
    assert state.model_dump()["players"][A]["score"] == tally_of(state, A).score
    for loaded in (
        GameState.model_validate_json(json.dumps(saved)),
        GameState.model_validate(saved),
    ):
        assert loaded == state
        assert ranked_players(loaded) == ranked_players(state)
        assert apply(loaded, Next(), 1100).events == apply(state, Next(), 1100).events


def test_a_player_snapshot_shows_the_open_question_without_the_answer() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(A, 1), at=1005)
    snap = player_snapshot(game.state, A, 1006)
    assert snap.phase is Phase.QUESTION
    assert snap.question is not None
    assert snap.question.text == "Capital of France?"
    assert (snap.deadline, snap.remaining, snap.answered, snap.my_answer) == (1020, 14, 1, [1])
    assert snap.reveal is None
    assert snap.my_result is None
    assert "correct" not in snap.model_dump_json()
    assert snap.me is not None
    assert (snap.me.score, snap.me.rank) == (0, 1)
    assert player_snapshot(game.state, B, 1006).my_answer is None


def test_a_resumed_player_recovers_its_answer_receipt_from_the_snapshot() -> None:
    game = make_game("ann", "bob", started=True)
    receipt = next(
        e.message
        for e in game.do(answer(A, 1), at=1005.25).events
        if e.message.type == "answer_receipt"
    )
    snap = player_snapshot(game.state, A, 1007)
    assert (snap.my_answer, snap.my_answer_elapsed) == (receipt.choices, receipt.elapsed)
    assert player_snapshot(game.state, B, 1007).my_answer_elapsed is None


def test_a_paused_snapshot_shows_the_frozen_time() -> None:
    game = make_game("ann", started=True)
    game.do(Pause(), at=1015)
    snap = host_snapshot(game.state, 1900)
    assert (snap.paused, snap.remaining, snap.deadline) == (True, 5, None)


def test_a_snapshot_in_the_reveal_carries_the_players_own_result() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(A, 0), at=1010)
    game.do(Skip(), at=1011)
    snap = player_snapshot(game.state, A, 1012)
    assert snap.reveal is not None
    assert (snap.reveal.correct, snap.reveal.distribution) == ([0], [1, 0])
    assert snap.my_result is not None
    assert (snap.my_result.correct, snap.my_result.points, snap.my_result.rank) == (True, 750, 1)
    other = player_snapshot(game.state, B, 1012)
    assert other.my_result is not None
    assert not other.my_result.answered


def test_a_snapshot_at_the_leaderboard_and_after_the_end() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(B, 0), at=1000.1)
    game.do(Skip())
    game.do(Next())
    board = player_snapshot(game.state, A, game.now)
    assert board.leaderboard is not None
    assert [e.player_id for e in board.leaderboard] == [B, A]
    assert board.me is not None
    assert board.me.rank == 2
    game.do(End())
    final = host_snapshot(game.state, game.now)
    assert (final.phase, final.ended_reason, final.question) == (
        Phase.ENDED,
        EndReason.ENDED_BY_HOST,
        None,
    )
    assert final.leaderboard is not None
    assert final.leaderboard[0].player_id == B


def test_the_host_snapshot_lists_players_in_join_order() -> None:
    names = ["zed", "amy", "kim", "bea"]
    game = make_game(*names)
    snap = host_snapshot(game.state, game.now)
    assert snap.players is not None
    assert [p.nickname for p in snap.players] == names
    assert snap.me is None


def test_a_snapshot_for_an_unknown_player_is_refused() -> None:
    with pytest.raises(NotFoundError):
        player_snapshot(make_game("ann").state, PlayerId("ghost"), 0)


# --- client messages to commands ----------------------------------------------------------------


def test_client_messages_become_commands() -> None:
    join = command_from_message(JoinMsg(code="ABCDEF", nickname="ann", device_id="d1"), A)
    assert join == Join(player_id=A, device_id=DeviceId("d1"), nickname="ann")
    ans = command_from_message(AnswerMsg(question_index=2, choices=[1, 0]), A)
    assert ans == Answer(player_id=A, question_index=2, choices=[1, 0])
    assert command_from_message(KickMsg(player_id="p-x"), None) == Kick(player_id=PlayerId("p-x"))
    assert command_from_message(StartMsg(), None) == Start()
    assert command_from_message(ResumeGameMsg(), None) == Resume()
    assert command_from_message(LockMsg(), None) == LockJoining()


def test_connection_messages_are_not_commands() -> None:
    for message in (PingMsg(), ResumeMsg(resume_token="t"), HostMsg(host_token="t")):
        with pytest.raises(ValidationError) as err:
            command_from_message(message, A)
        assert err.value.code == "not_a_command"
    with pytest.raises(ForbiddenError):
        command_from_message(AnswerMsg(question_index=0, choices=[0]), None)


def test_the_quiz_fixture_covers_every_question_kind() -> None:
    kinds = [q.kind.value for q in four_kind_quiz().questions]
    assert kinds == ["single", "multiple", "true_false", "poll"]


def test_a_late_joiner_ranks_with_the_other_zero_scores_or_last() -> None:
    game = make_game("ann", "bob", started=True)
    game.do(answer(A, 0), at=1000.2)
    game.do(Skip())
    assert player_snapshot(game.state, A, game.now).me.rank == 1  # type: ignore[union-attr]
    game.do(Join(player_id=C, device_id=DeviceId("d-cid"), nickname="cid"))
    assert [(p.id, rank) for p, _, rank in ranked_players(game.state)] == [(A, 1), (B, 2), (C, 2)]
    game.do(Kick(player_id=B))
    dan = PlayerId("p-dan")
    game.do(Join(player_id=dan, device_id=DeviceId("d-dan"), nickname="dan"))
    assert player_snapshot(game.state, dan, game.now).me.rank == 2  # type: ignore[union-attr]

    everyone_scored = make_game("ann", started=True)
    everyone_scored.do(answer(A, 0))
    ranked_players(everyone_scored.state)
    everyone_scored.do(Join(player_id=B, device_id=DeviceId("d-bob"), nickname="bob"))
    assert [rank for _, _, rank in ranked_players(everyone_scored.state)] == [1, 2]


def test_nicknames_that_look_the_same_are_the_same() -> None:
    game = make_game()
    game.do(Join(player_id=A, device_id=DeviceId("d1"), nickname="Zo\u00eb"))
    refused(
        game,
        Join(player_id=B, device_id=DeviceId("d2"), nickname="zoe\u0308"),
        ConflictError,
        "nickname_taken",
    )


def test_messages_built_without_validation_are_what_validation_builds() -> None:
    # Receipts, answer counts and answer commands skip pydantic's validation on the answer
    # path; they must still be exactly the validated models, on the wire too.
    game = make_game("ann", "bob", started=True)
    game.do(Answer(player_id=PlayerId("p-ann"), question_index=0, choices=[0]))
    built = [event.message for event in game.events[-2:]]
    assert [m.type for m in built] == ["answer_receipt", "answer_count"]
    for message in built:
        again = type(message).model_validate_json(message.model_dump_json())
        assert again == message
        assert again.model_dump() == message.model_dump()
        assert message.model_fields_set >= {"version", "question_index"}
    command = command_from_message(AnswerMsg(question_index=0, choices=[2, 1]), A)
    assert (
        command.model_dump_json()
        == Answer(player_id=A, question_index=0, choices=[2, 1]).model_dump_json()
    )


# --- the host's presence --------------------------------------------------------------------


def test_players_hear_when_the_last_host_screen_drops_and_when_one_is_back() -> None:
    game = make_game("ann")
    status = [e.message for e in game.do(HostPresence(connected=True)).events]
    assert [(m.type, m.connected) for m in status] == [("host_status", True)]
    assert game.do(HostPresence(connected=True)).events == []  # the remote joins the screen
    assert game.do(HostPresence(connected=False)).events == []  # one of two left
    assert host_snapshot(game.state, 1000).host_connected
    dropped = game.do(HostPresence(connected=False)).events
    assert [(e.audience, e.message.type, e.message.connected) for e in dropped] == [
        (Everyone(), "host_status", False)
    ]
    assert not player_snapshot(game.state, A, 1000).host_connected
    before = game.state
    assert game.do(HostPresence(connected=False)) == (before, [])  # never below zero
    game.do(HostPresence(connected=True))
    assert player_snapshot(game.state, A, 1000).host_connected


# --- info slides ----------------------------------------------------------------------------


def _with_info_slide() -> Quiz:
    return Quiz(
        title="sections",
        questions=(
            Question(kind=QuestionKind.INFO, text="Round 1: space", time_limit_seconds=10),
            Question(
                text="Red planet?", choices=choices("Mars", "Venus"), correct=(0,), read_seconds=0
            ),
            Question(kind=QuestionKind.INFO, text="That's all!", time_limit_seconds=5),
        ),
    )


def test_an_info_slide_shows_takes_no_answers_and_moves_straight_on() -> None:
    game = make_game("ann", "bob", quiz=_with_info_slide(), started=True)
    slide = game.messages("question")[-1]
    assert (slide.kind, slide.choices, slide.deadline) == ("info", [], 1010)
    refused(game, answer(A, 0, question=0), AnswerRejectedError, "invalid_choice")
    game.do(Next(version=game.state.version))
    assert (game.state.phase, game.state.question_index) == (Phase.QUESTION, 1)
    assert game.messages("reveal") == []  # nothing to reveal on a slide
    game.do(answer(A, 0, question=1), at=game.state.opened_at + 1)
    game.do(Skip())
    game.do(Next())
    game.do(Next())
    assert (game.state.phase, game.state.question_index) == (Phase.QUESTION, 2)
    game.do(Tick(), at=game.state.deadline)  # shown for its time, then on by itself
    assert game.state.phase is Phase.PODIUM
    assert tally_of(game.state, A).streak == 1  # a slide neither breaks nor extends a streak


def test_an_info_slide_has_no_choices_and_a_question_needs_two() -> None:
    with pytest.raises(ValueError, match="no choices"):
        Question(kind=QuestionKind.INFO, text="x", choices=choices("a", "b"))
    with pytest.raises(ValueError, match="at least 2 choices"):
        Question(text="x", choices=choices("a"), correct=(0,))


def test_ending_on_an_info_slide_ends_without_a_reveal() -> None:
    game = make_game("ann", quiz=_with_info_slide(), started=True)
    transition = game.do(End())
    assert [e.message.type for e in transition.events] == ["ended"]
