"""Micro-benchmark of a reveal's steps, from the question closing to each player's frame.

Splits the CPU of what happens between a 10,000-player question's deadline and the personal
results leaving, step by step, on the real code with no network: the state machine closing
the question, the engine routing the reveal, the batch encoded for Redis, the snapshot the
commit carries, the other replica decoding the batch, and the fan-out splitting the results
into one frame per player (transports are sinks, so the system calls are not in it; the suite
measures those). Each figure is the least process CPU time over ``--repeat`` calls.
Run: ``uv run --frozen --all-extras python -m bench.deadline_path [--players N]``.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any, TypeVar

from bench.core_apply import bench_quiz
from bench.sink import SinkConnection
from partyquiz_core import game
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_ws import engine
from partyquiz_ws.backends import Batch
from partyquiz_ws.fanout import Client, Hub
from partyquiz_ws.metrics import WsMetrics

_T = TypeVar("_T")


class _Sink:
    """A transport that keeps nothing."""

    def write(self, data: bytes) -> None:
        del data


def _answered(players: int) -> tuple[game.GameState, list[PlayerId]]:
    """A game whose first question every player but the last has answered."""
    state = game.new_game(GameId("bench"), bench_quiz())
    ids = [PlayerId(f"player-{i:05d}") for i in range(players)]
    for i, pid in enumerate(ids):
        join = game.Join(player_id=pid, device_id=DeviceId(f"device-{i}"), nickname=f"P{i}")
        state = game.apply(state, join, 0.0).state
    state = game.apply(state, game.Start(), 0.0).state
    for i, pid in enumerate(ids[:-1]):
        answer = game.Answer(player_id=pid, question_index=0, choices=[i % 4])
        state = game.apply(state, answer, 30.0 + i * 1e-4).state
    return state, ids


def _hub(state: game.GameState, ids: list[PlayerId]) -> Hub:
    # Replicas before the shared head of a personal result took the per-row encoder.
    encoder: Any = getattr(engine, "personal_frames", engine.personal_frame)
    hub = Hub(WsMetrics(), encoder, replica_id="other")
    room = hub.room(state.game_id)
    for conn_id, pid in enumerate(ids):
        client = Client(conn=SinkConnection(_Sink()), conn_id=conn_id, ip="127.0.0.1")  # type: ignore[arg-type]
        hub.bind_player(room, client, pid)
    return hub


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    def least(label: str, fn: Callable[[], _T]) -> _T:
        best, result = float("inf"), None
        for _ in range(args.repeat):
            gc.collect()
            start = time.process_time()
            result = fn()
            best = min(best, time.process_time() - start)
        print(f"{label:<52} {best * 1000:8.1f} ms")
        return result  # type: ignore[return-value]

    state, ids = _answered(args.players)
    print(f"players {args.players}, {len(ids) - 1} answers; least CPU of {args.repeat} calls")
    closed = least(
        "core: close the question (score, rank, results)",
        lambda: game.apply(state, game.Skip(), 40.0),
    )
    service = engine.Engine(lambda *_: "token")

    def route() -> engine.Outcome:
        out = engine.Outcome()
        service._route(closed, game.Skip(), "pq:r:bench", 0, None, 40.0, out)
        return out

    out = least("engine: route the reveal", route)
    items = next(items for channel, items in out.channel_items() if channel.startswith("pq:g:"))
    batch = Batch(state.game_id, 40.0, items, "owner")
    encoded = least("batch: encode for Redis", batch.encode)

    # The owner saved the open question's state before (every half second): its players'
    # JSON is kept, and the closed state's snapshot writes only the new tallies.
    def snapshot() -> float:
        engine.encode_snapshot(state, 0)
        start = time.process_time()
        engine.encode_snapshot(closed.state, 0)
        return time.process_time() - start

    taken = min(snapshot() for _ in range(args.repeat))
    print(f"{'snapshot: the closed state, the open one saved before':<52} {taken * 1000:8.1f} ms")
    decoded = least("other replica: decode the batch", lambda: Batch.decode(encoded))
    hub = _hub(state, ids)
    least("fan-out: one reveal + personal result per player", lambda: hub.deliver(decoded))
    print(f"batch bytes {len(encoded):,}")


if __name__ == "__main__":
    main()
