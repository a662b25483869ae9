"""Micro-benchmark of the pure game engine with 10 000 players (not a test, never timed in CI).

Prints answers applied per second by ``partyquiz_core.game.apply``, plus what the game service
pays around it: closing a question (the one O(players) step), a player snapshot, and a JSON
snapshot of the state both ways. Times are CPU time of this process, so a busy machine does not
distort them; the answer rate is also given in wall-clock time.
Run: ``uv run --frozen --all-extras python -m bench.core_apply [--players N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from partyquiz_core.game import (
    Answer,
    GameState,
    Join,
    Skip,
    Start,
    apply,
    new_game,
    player_snapshot,
)
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_core.quiz import Choice, Question, QuestionKind, Quiz


def bench_quiz() -> Quiz:
    return Quiz(
        title="bench",
        questions=(
            Question(
                text="single",
                choices=tuple(Choice(text=t) for t in "ABCD"),
                correct=(1,),
                time_limit_seconds=240,
            ),
            Question(
                kind=QuestionKind.MULTIPLE,
                text="multiple",
                choices=tuple(Choice(text=t) for t in "ABCD"),
                correct=(0, 2),
                time_limit_seconds=240,
            ),
        ),
    )


def _lobby(players: int) -> tuple[GameState, list[PlayerId], float]:
    state = new_game(GameId("bench"), bench_quiz())
    ids = [PlayerId(f"player-{i:05d}") for i in range(players)]
    start = time.process_time()
    for i, pid in enumerate(ids):
        command = Join(player_id=pid, device_id=DeviceId(f"device-{i}"), nickname=f"P{i}")
        state = apply(state, command, 0.0).state
    return state, ids, time.process_time() - start


def _answer_all(state: GameState, ids: list[PlayerId]) -> tuple[GameState, float, float]:
    """Answer for every player but the last (so the question stays open).

    Returns the new state, the CPU seconds and the wall-clock seconds it took.
    """
    commands = [
        Answer(player_id=pid, question_index=state.question_index, choices=[i % 4])
        for i, pid in enumerate(ids[:-1])
    ]
    cpu, wall = time.process_time(), time.perf_counter()
    for i, command in enumerate(commands):
        state = apply(state, command, 1.0 + i * 1e-4).state
    return state, time.process_time() - cpu, time.perf_counter() - wall


def _best_of(runs: int, fn: Callable[[], object]) -> float:
    """Return the least CPU time ``fn`` took over ``runs`` calls."""
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="answer rounds to time")
    args = parser.parse_args()
    n = args.players

    lobby, ids, join_seconds = _lobby(n)  # CPU seconds
    print(f"players                      {n}")
    print(f"joins per second             {n / join_seconds:,.0f}")

    cpu_rates, wall_rates = [], []
    for _ in range(args.rounds):
        opened = apply(lobby, Start(), 1.0).state
        answered, cpu, wall = _answer_all(opened, ids)
        cpu_rates.append((n - 1) / cpu)
        wall_rates.append((n - 1) / wall)
    cpu_rate, wall_rate = statistics.median(cpu_rates), statistics.median(wall_rates)
    print(f"answers applied per second   {cpu_rate:,.0f} (CPU, median of {len(cpu_rates)})")
    print(f"                             {wall_rate:,.0f} (wall clock)")

    close_seconds = _best_of(3, lambda: apply(answered, Skip(), 2.0))
    print(f"close question (score all)   {close_seconds * 1000:,.1f} ms")
    revealed = apply(answered, Skip(), 2.0).state

    player_snapshot(revealed, ids[0], 3.0)  # first call builds the cached standings
    snap_seconds = _best_of(5, lambda: player_snapshot(revealed, ids[n // 2], 3.0))
    print(f"player snapshot (reveal)     {snap_seconds * 1e6:,.0f} us")

    blob = answered.model_dump_json()
    dump_seconds = _best_of(3, answered.model_dump_json)
    load_seconds = _best_of(3, lambda: GameState.model_validate_json(blob))
    print(f"state JSON size (open q.)    {len(blob) / 1024:,.0f} KiB")
    print(f"state to JSON                {dump_seconds * 1000:,.1f} ms")
    print(f"state from JSON              {load_seconds * 1000:,.1f} ms")


if __name__ == "__main__":
    main()
