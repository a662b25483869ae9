"""Properties of the state machine over random command sequences (hypothesis).

Each run plays a random mix of host, player and timer commands at a random clock, applies them
to the pure state machine, and checks what must hold whatever the order: scores never drop,
nothing counts after a question closes, banned devices stay out, versions only grow, the state
survives a JSON round trip mid-game, no call ever mutates the state it was given, and nothing
that reaches a player before the reveal tells what is right (correct choices, accepted texts,
the slider's number, the items' right order).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.core.core_builders import four_kind_quiz

from partyquiz_core.errors import PartyQuizError
from partyquiz_core.game import (
    Answer,
    Command,
    Disconnect,
    End,
    Event,
    GameSettings,
    GameState,
    HostPresence,
    Join,
    Kick,
    LockJoining,
    Next,
    Pause,
    Phase,
    Reconnect,
    Resume,
    Skip,
    Start,
    Tick,
    UnlockJoining,
    _nickname_entries,
    apply,
    apply_answers,
    host_snapshot,
    new_game,
    next_deadline,
    player_snapshot,
    ranked_players,
    shown_order,
    tally_of,
)
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_core.quiz import Question, QuestionKind, Quiz, Slider
from partyquiz_core.results import final_results
from partyquiz_core.scoring import ScoringRules

# Every kind that takes answers, with an info slide among them.
_FOUR = four_kind_quiz()
ACCEPTED = ("Bern", "Berne")
QUIZ = _FOUR.model_copy(
    update={
        "questions": (
            *_FOUR.questions[:2],
            Question(kind=QuestionKind.INFO, text="Half time", time_limit_seconds=10),
            Question(
                kind=QuestionKind.TYPE_ANSWER,
                text="Capital of Switzerland?",
                accepted=ACCEPTED,
                read_seconds=0,
            ),
            Question(
                kind=QuestionKind.SLIDER,
                text="Eiffel Tower finished in?",
                slider=Slider(min=1850, max=1950, answer=1889, tolerance=2),
                read_seconds=0,
            ),
            Question(
                kind=QuestionKind.ORDERING,
                text="Smallest first",
                choices=(
                    _FOUR.questions[1].choices[0],
                    _FOUR.questions[1].choices[1],
                    _FOUR.questions[1].choices[2],
                    _FOUR.questions[1].choices[3],
                ),
                read_seconds=0,
            ),
            *_FOUR.questions[2:],
        )
    }
)
TYPED = ["Bern", " berne", "BERN", "Zurich", "Geneva", "b e r n", "Bärn"]
# Random games seldom get past their first questions: each script plays the quiz from a
# different question on (rotated), so every kind comes first in some of them.
ROTATIONS = [
    QUIZ.model_copy(update={"questions": QUIZ.questions[i:] + QUIZ.questions[:i]})
    for i in range(len(QUIZ.questions))
]
PLAYERS = [PlayerId(f"p{i}") for i in range(5)]
DEVICES = [DeviceId(f"d{i}") for i in range(6)]
NICKNAMES = ["ann", "Ann", "bob", "cid", "dee", " eve ", ""]
CURRENT = 99  # an Answer for this index is sent for whatever question is open when it is applied


@dataclass(frozen=True)
class SensibleAnswer:
    """An answer to whatever question is open, with choices that fit it, resolved when played."""

    who: int
    picks: tuple[int, ...]

    def resolve(self, state: GameState) -> Answer:
        present = sorted(state.players.values(), key=lambda p: p.seq)
        player_id = present[self.who % len(present)].id if present else PLAYERS[0]
        index = max(state.question_index, 0)
        question = state.quiz.questions[index]
        if question.kind is QuestionKind.TYPE_ANSWER:
            typed = TYPED[self.picks[0] % len(TYPED)]
            return Answer(player_id=player_id, question_index=index, choices=[], text=typed)
        if question.kind is QuestionKind.SLIDER:
            value = 1850 + sum(self.picks) * 7.3
            return Answer(player_id=player_id, question_index=index, choices=[], value=value)
        if question.kind is QuestionKind.ORDERING:
            order = list(itertools.permutations(range(len(question.choices))))
            picked = order[sum(p * 7**i for i, p in enumerate(self.picks)) % len(order)]
            return Answer(player_id=player_id, question_index=index, choices=list(picked))
        if not question.choices:  # an info slide: any answer is refused
            return Answer(player_id=player_id, question_index=index, choices=[0])
        chosen = sorted({p % len(question.choices) for p in self.picks})
        if question.kind is not QuestionKind.MULTIPLE:
            chosen = chosen[:1]
        return Answer(player_id=player_id, question_index=index, choices=chosen)


player_ids = st.sampled_from(PLAYERS)
raw_answers = st.builds(
    Answer,
    player_id=player_ids,
    question_index=st.sampled_from([CURRENT] * 4 + [0, 1, 4]),
    choices=st.lists(st.integers(-1, 4), max_size=4),
)
sensible_answers = st.builds(
    SensibleAnswer,
    who=st.integers(0, 4),
    picks=st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple),
)
joins = st.builds(
    Join,
    player_id=player_ids,
    device_id=st.sampled_from(DEVICES),
    nickname=st.sampled_from(NICKNAMES),
)
# (weight, strategy): mostly answers and forward moves, so games get through several
# questions; the game-ending and player-removing commands are rare.
WEIGHTED: list[tuple[int, st.SearchStrategy[Command | SensibleAnswer]]] = [
    (30, sensible_answers),
    (4, raw_answers),
    (20, st.just(Next())),
    (6, st.just(Skip())),
    (10, st.just(Tick())),
    (4, st.just(Pause())),
    (5, st.just(Resume())),
    (2, st.sampled_from([Start(), LockJoining(), UnlockJoining()])),
    (5, joins),
    (2, st.builds(Kick, player_id=player_ids)),
    (3, st.builds(Disconnect, player_id=player_ids)),
    (3, st.builds(Reconnect, player_id=player_ids)),
    (1, st.just(End())),
    (2, st.builds(HostPresence, connected=st.booleans())),
]
_TABLE = [strategy for weight, strategy in WEIGHTED for _ in range(weight)]
commands: st.SearchStrategy[Command | SensibleAnswer] = st.integers(0, len(_TABLE) - 1).flatmap(
    lambda i: _TABLE[i]
)
delays = st.one_of(
    st.floats(min_value=0, max_value=3, allow_nan=False),
    st.sampled_from([0.0, 0.4, 0.5, 9.999, 10.0, 20.0, 20.001, 31.0]),
)


@dataclass(frozen=True)
class Script:
    """A quiz and the commands to play on it, each after a delay."""

    quiz: Quiz
    steps: list[tuple[Command | SensibleAnswer, float]]


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    """A game opening (some players join, usually a start) followed by random commands, on
    one of the quiz's rotations."""
    opening: list[tuple[Command | SensibleAnswer, float]] = [
        (Join(player_id=PLAYERS[i], device_id=DEVICES[i], nickname=f"player{i}"), 0.5)
        for i in range(draw(st.integers(1, 4)))
    ]
    if draw(st.integers(0, 9)):
        opening.append((Start(), 1.0))
    rest = draw(st.lists(st.tuples(commands, delays), min_size=5, max_size=60))
    return Script(draw(st.sampled_from(ROTATIONS)), opening + rest)


steps = scripts()
game_settings = st.builds(
    GameSettings,
    scoring=st.builds(ScoringRules, streak_bonus=st.booleans()),
    close_when_all_answered=st.booleans(),
    reveal_seconds=st.sampled_from([None, 3.0]),
    max_players=st.sampled_from([3, 10_000]),
)


def assert_caches_are_fresh(state: GameState) -> None:
    """The indexes a state carries over from its parent equal ones rebuilt from scratch."""
    bare = state.model_copy()
    bare.__pydantic_private__ = {"_nicknames": None, "_standings": None}
    assert ranked_players(state) == ranked_players(bare)
    private = state.__pydantic_private__ or {}
    if private.get("_nicknames") is not None:
        expected = {
            key: p.id for p in state.players.values() for key in _nickname_entries(p.nickname)
        }
        assert private["_nicknames"] == expected


SOLUTION_KEYS = {"correct", "accepted", "correct_value", "tolerance"}


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def _tells_1889(value: object) -> bool:
    """1889 as a value a client reads (a number equal to it, or in a text), not digits that
    happen to sit inside another number such as a clock reading."""
    return any(
        (isinstance(x, int | float) and not isinstance(x, bool) and x == 1889)
        or (isinstance(x, str) and "1889" in x)
        for x in _leaves(value)
    )


def assert_tells_nothing_right(state: GameState, sent: dict[str, object]) -> None:
    """What a player may see while a question is open: no solution field, no accepted text
    (other than one it typed itself), no right number, no items in the right order."""
    assert not _keys(sent) & SOLUTION_KEYS, sent
    question = state.quiz.questions[state.question_index] if state.question_index >= 0 else None
    text = json.dumps(sent)
    if question is not None and question.kind is QuestionKind.TYPE_ANSWER:
        own = {sent.get("text"), sent.get("my_answer_text")}
        assert all(f'"{a}"' not in text or a in own for a in ACCEPTED), sent
        # Not even which accepted answer a text matched: a receipt looks the same either way.
        assert not sent.get("my_answer"), sent
        assert sent.get("type") != "answer_receipt" or sent["choices"] == [], sent
    if question is not None and question.kind is QuestionKind.SLIDER:
        assert not _tells_1889(sent) or sent.get("value") or sent.get("my_answer_value"), sent
    if question is not None and question.kind is QuestionKind.ORDERING:
        items = [c.text for c in question.choices]
        order = shown_order(state.game_id, state.question_index, len(items))
        assert order != tuple(range(len(items)))
        shown = sent.get("choices") or (sent.get("question") or {}).get("choices")
        if shown and sent.get("type") != "answer_receipt":
            assert shown != items, sent


def assert_nothing_right_before_the_reveal(state: GameState, event: Event) -> None:
    """Every event but the reveal (and what follows it) keeps the answer to itself."""
    message = event.message
    if message.type in ("reveal", "personal_result", "leaderboard", "podium", "ended"):
        return
    sent = message.model_dump(mode="json")
    if message.type == "state" or message.type == "welcome":
        sent = sent["state"]
        if sent.get("phase") != "question":
            return
    assert_tells_nothing_right(state, sent)


@dataclass
class Played:
    states: list[GameState]
    accepted_answers: list[tuple[GameState, Answer, float]]


def play(setting: GameSettings, script: Script, swap_at: int | None = None) -> Played:
    """Play ``script``; at step ``swap_at`` continue from a JSON copy of the state."""
    state = new_game(GameId("g-prop"), script.quiz, setting)
    now = 1_000.0
    played = Played(states=[state], accepted_answers=[])
    banned: set[DeviceId] = set()
    for step, (command, delay) in enumerate(script.steps):
        if step == swap_at:
            state = GameState.model_validate_json(state.model_dump_json())
        now += delay
        if isinstance(command, SensibleAnswer):
            command = command.resolve(state)
        if isinstance(command, Answer) and command.question_index == CURRENT:
            command = command.model_copy(update={"question_index": state.question_index})
        before_json = state.model_dump_json()
        try:
            transition = apply(state, command, now)
        except PartyQuizError:
            # A refused command leaves the state exactly as it was.
            assert state.model_dump_json() == before_json
            continue
        # Never mutates its input, even when it succeeds.
        assert state.model_dump_json() == before_json
        new = transition.state
        if new is state:
            assert transition.events == []
        else:
            assert new.version == state.version + 1
            assert all(e.message.version == new.version for e in transition.events)
        for event in transition.events:
            assert_nothing_right_before_the_reveal(new, event)
        if isinstance(command, Answer):
            played.accepted_answers.append((state, command, now))
        if isinstance(command, Kick):
            banned.add(state.players[command.player_id].device_id)
        if isinstance(command, Join):
            assert command.device_id not in banned
        assert new.banned_devices == banned
        assert_caches_are_fresh(new)
        # Derived views never fail on any reachable state, and a player's tells nothing
        # that is right while the question is open.
        host_snapshot(new, now)
        for player_id in new.players:
            snapshot = player_snapshot(new, player_id, now)
            if new.phase is Phase.QUESTION:
                assert_tells_nothing_right(new, snapshot.model_dump(mode="json"))
        if new is not state:
            played.states.append(new)
        state = new
    return played


@settings(max_examples=200)
@given(game_settings, steps)
def test_scores_never_decrease(setting: GameSettings, script: Script) -> None:
    states = play(setting, script).states
    for before, after in itertools.pairwise(states):
        for player_id in after.players:
            if player_id in before.players:
                assert tally_of(after, player_id).score >= tally_of(before, player_id).score


@settings(max_examples=200)
@given(game_settings, steps)
def test_no_answer_counts_after_its_question_closed(setting: GameSettings, script: Script) -> None:
    played = play(setting, script)
    for before, command, now in played.accepted_answers:
        assert before.phase is Phase.QUESTION
        assert not before.paused
        assert before.deadline is not None
        assert now <= before.deadline
        assert command.question_index == before.question_index
    final = played.states[-1]
    for entry in final.log:
        limit = final.quiz.questions[entry.index].time_limit_seconds
        assert all(0 <= record.elapsed <= limit for record in entry.answers.values())


@settings(max_examples=200)
@given(game_settings, steps)
def test_a_players_score_is_the_sum_of_their_logged_points(
    setting: GameSettings, script: Script
) -> None:
    final = play(setting, script).states[-1]
    for player_id in final.players:
        logged = sum(e.answers[player_id].points for e in final.log if player_id in e.answers)
        assert tally_of(final, player_id).score == logged
    results = final_results(final)
    assert {r.player_id for r in results.players} == set(final.players)
    total = sum(tally_of(final, p).score for p in final.players)
    assert sum(r.points for r in results.answers) == total


@settings(max_examples=200)
@given(game_settings, steps)
def test_a_kicked_players_device_can_never_rejoin(setting: GameSettings, script: Script) -> None:
    final = play(setting, script).states[-1]
    for device in final.banned_devices:
        for player_id in PLAYERS:
            if player_id in final.players:
                continue
            join = Join(player_id=player_id, device_id=device, nickname="newname")
            with pytest.raises(PartyQuizError) as err:
                apply(final, join, 10_000)
            assert err.value.code in {"banned", "game_over", "player_exists"}


@settings(max_examples=200)
@given(game_settings, steps)
def test_versions_only_grow_and_every_change_bumps_it(
    setting: GameSettings, script: Script
) -> None:
    states = play(setting, script).states
    for before, after in itertools.pairwise(states):
        assert after.version == before.version + 1
        assert after.model_dump_json() != before.model_dump_json()


@settings(max_examples=150)
@given(game_settings, steps, st.integers(0, 65))
def test_json_round_trip_is_lossless_even_mid_game(
    setting: GameSettings, script: Script, swap_at: int
) -> None:
    straight = play(setting, script).states[-1]
    copied = GameState.model_validate_json(straight.model_dump_json())
    assert copied == straight
    assert (
        copied.model_dump_json()
        == GameState.model_validate_json(copied.model_dump_json()).model_dump_json()
    )
    # A game continued from a snapshot ends exactly like one that never was snapshotted.
    resumed = play(setting, script, swap_at=swap_at).states[-1]
    assert resumed == straight
    assert final_results(resumed) == final_results(straight)
    assert next_deadline(resumed) == next_deadline(straight)


# Answers applied together (``apply_answers``, as an owner applies a batch read from its inbox)
# against one ``apply`` each: from any state a random game reaches, a random run of answers --
# sensible and nonsense, duplicates, unknown players, other questions, early and late ones.
answer_runs = st.lists(
    st.tuples(
        st.one_of(sensible_answers, sensible_answers, raw_answers),
        st.floats(min_value=-35, max_value=3, allow_nan=False),
    ),
    max_size=14,
)


def _resolved(state: GameState, run: list[tuple[Answer | SensibleAnswer, float]]) -> list[Any]:
    """The run's answers against ``state``, each at its offset from the open question's
    deadline (or from when the current phase began)."""
    anchor = state.deadline or state.phase_at or 1_000.0
    resolved = []
    for answer, offset in run:
        command = answer.resolve(state) if isinstance(answer, SensibleAnswer) else answer
        if command.question_index == CURRENT:
            command = command.model_copy(update={"question_index": state.question_index})
        resolved.append((command, anchor + offset))
    return resolved


def _one_apply_each(state: GameState, answers: list[Any]) -> tuple[GameState, list[Any], list[str]]:
    """Replies (a receipt's JSON, or an error's code, message and the version it is sent
    with) and everything else sent, the host's counts reduced to the latest before each
    reveal and at the end, as a batch of frames carries them."""
    replies: list[Any] = []
    others: list[Any] = []
    for command, now in answers:
        try:
            transition = apply(state, command, now)
        except PartyQuizError as exc:
            replies.append((exc.code, exc.message, state.version))
            continue
        receipt, *rest = transition.events
        assert receipt.message.type == "answer_receipt"
        replies.append(receipt.message.model_dump_json())
        others.extend(event.message for event in rest)
        state = transition.state
    kept = [
        message
        for message, following in itertools.zip_longest(others, others[1:])
        if not (message.type == "answer_count" and following and following.type == "answer_count")
    ]
    return state, replies, [message.model_dump_json() for message in kept]


def _applied_together(
    state: GameState, answers: list[Any]
) -> tuple[GameState, list[Any], list[str]]:
    replies: list[Any] = []
    others: list[str] = []
    while answers:
        before = state.model_dump_json()
        batch = apply_answers(state, answers)
        assert state.model_dump_json() == before  # never mutates its input
        assert 1 <= batch.taken <= len(answers)
        assert len(batch.replies) == batch.taken
        version = state.version
        for reply in batch.replies:
            if isinstance(reply, PartyQuizError):
                replies.append((reply.code, reply.message, version))
            else:
                version = reply.version
                replies.append(reply.model_dump_json())
        assert batch.state.version == version
        others.extend(event.message.model_dump_json() for event in batch.events)
        state, answers = batch.state, answers[batch.taken :]
    return state, replies, others


@settings(max_examples=300)
@given(game_settings, steps, st.integers(0, 65), answer_runs)
def test_answers_applied_together_give_what_one_apply_each_gives(
    setting: GameSettings,
    script: Script,
    cut: int,
    run: list[tuple[Answer | SensibleAnswer, float]],
) -> None:
    states = play(setting, Script(script.quiz, script.steps[:cut])).states
    # Mostly a state with a question open: that is where answers count.
    open_states = [s for s in states if s.phase is Phase.QUESTION]
    state = open_states[-1] if open_states and cut % 4 else states[-1]
    answers = _resolved(state, run)

    expected_state, expected_replies, expected_others = _one_apply_each(state, answers)
    state_after, replies, others = _applied_together(state, answers)

    assert replies == expected_replies
    assert others == expected_others
    assert state_after == expected_state
    assert state_after.version == expected_state.version
    assert state_after.model_dump_json() == expected_state.model_dump_json()
    assert_caches_are_fresh(state_after)
    # The game goes on from either state alike: the next question closes with the same scores.
    closing = [Skip(), Tick(), Next()]
    for command in closing:
        try:
            expected_state = apply(expected_state, command, 2_000.0).state
        except PartyQuizError:
            with pytest.raises(PartyQuizError):
                apply(state_after, command, 2_000.0)
            continue
        state_after = apply(state_after, command, 2_000.0).state
        assert state_after.model_dump_json() == expected_state.model_dump_json()
        assert ranked_players(state_after) == ranked_players(expected_state)
