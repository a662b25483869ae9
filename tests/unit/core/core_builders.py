"""Builders for core tests: a four-kind quiz and a small driver that plays a game at a clock."""

from __future__ import annotations

from partyquiz_core.game import (
    Command,
    Event,
    GameSettings,
    GameState,
    Join,
    Start,
    Transition,
    apply,
    new_game,
)
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_core.protocol import ServerMessage
from partyquiz_core.quiz import Choice, PointsMode, Question, QuestionKind, Quiz


def choices(*texts: str) -> tuple[Choice, ...]:
    return tuple(Choice(text=t) for t in texts)


def four_kind_quiz() -> Quiz:
    """Single (20 s, standard), multiple (20 s, double), true/false (10 s, none), poll (30 s);
    answers open as soon as a question comes up (no read pause)."""
    return Quiz(
        title="Four kinds",
        questions=(
            Question(
                text="Capital of France?",
                choices=choices("Paris", "Rome"),
                correct=(0,),
                read_seconds=0,
            ),
            Question(
                kind=QuestionKind.MULTIPLE,
                text="Primes?",
                choices=choices("2", "3", "4", "6"),
                correct=(0, 1),
                points=PointsMode.DOUBLE,
                read_seconds=0,
            ),
            Question(
                kind=QuestionKind.TRUE_FALSE,
                text="Water is wet",
                choices=choices("True", "False"),
                correct=(0,),
                time_limit_seconds=10,
                points=PointsMode.NONE,
                read_seconds=0,
            ),
            Question(
                kind=QuestionKind.POLL,
                text="Favourite colour?",
                choices=choices("Red", "Blue", "Green"),
                time_limit_seconds=30,
                read_seconds=0,
            ),
        ),
    )


class Game:
    """Plays one game: keeps the latest state, the clock and every event it produced."""

    def __init__(self, state: GameState, now: float = 1000.0) -> None:
        self.state = state
        self.now = now
        self.events: list[Event] = []

    def do(self, command: Command, *, at: float | None = None) -> Transition:
        if at is not None:
            self.now = at
        transition = apply(self.state, command, self.now)
        self.state = transition.state
        self.events.extend(transition.events)
        return transition

    def later(self, seconds: float) -> Game:
        self.now += seconds
        return self

    def join(self, *names: str) -> list[PlayerId]:
        ids = []
        for name in names:
            pid = PlayerId(f"p-{name}")
            self.do(Join(player_id=pid, device_id=DeviceId(f"d-{name}"), nickname=name))
            ids.append(pid)
        return ids

    def messages(self, kind: str) -> list[ServerMessage]:
        return [e.message for e in self.events if e.message.type == kind]


def make_game(
    *players: str,
    quiz: Quiz | None = None,
    settings: GameSettings | None = None,
    started: bool = False,
) -> Game:
    """Return a game of ``quiz`` (the four-kind one by default) with ``players`` joined."""
    game = Game(new_game(GameId("g-1"), quiz or four_kind_quiz(), settings or GameSettings()))
    game.join(*players)
    if started:
        game.do(Start())
    return game
