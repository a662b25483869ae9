"""Micro-benchmark of the game service's answer path without the network (never timed in CI).

Runs the real ``GameService`` (embedded backend, its runner, engine and fan-out) with N players
in an open question and feeds it N answer frames through ``_on_frame``, the way the WebSocket
handler does, yielding to the event loop every ``--every`` frames. Transports are sinks that
count writes, so the figure is the Python work per answer from the frame to its receipt
leaving -- what B3 pays on top of websockets' receive path and two system calls.
Run: ``uv run --frozen --all-extras python -m bench.answer_path [--players N] [--every K]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from websockets.protocol import OPEN

from bench.core_apply import bench_quiz
from partyquiz_core import game
from partyquiz_core.ids import DeviceId, GameId, JoinCode, PlayerId
from partyquiz_ws.backends import Snapshot, game_channel
from partyquiz_ws.fanout import Client
from partyquiz_ws.memory_backend import memory_backend
from partyquiz_ws.metrics import WsMetrics
from partyquiz_ws.server import GameService
from partyquiz_ws.settings import WsSettings
from partyquiz_ws.webclient import WebClient


class _Sink:
    """A transport that keeps nothing and counts writes; ``done`` is set at ``expected``."""

    writes = 0
    expected = 0
    done: asyncio.Event | None = None

    def write(self, data: bytes) -> None:
        _Sink.writes += 1
        if _Sink.done is not None and _Sink.writes >= _Sink.expected:
            _Sink.done.set()


class _Protocol:
    state = OPEN
    extensions: list[Any] = []


class _Connection:
    """What ``fanout`` reads of a websockets connection."""

    def __init__(self) -> None:
        self.protocol = _Protocol()
        self.transport = _Sink()
        self.send_in_progress = None


async def run(players: int, every: int) -> float:
    """Return CPU seconds per answer for ``players`` answers."""
    settings = WsSettings(jwt_secret="b" * 40, environment="development", port=1)
    backend = memory_backend()
    web = WebClient(settings.web_internal_url, settings.jwt_secret.get_secret_value())
    service = GameService(settings, backend, WsMetrics(), web)
    await service.start()
    game_id = GameId("bench")
    state = game.new_game(game_id, bench_quiz())
    clients = []
    for i in range(players):
        player_id = PlayerId(f"player-{i:05d}")
        join = game.Join(player_id=player_id, device_id=DeviceId(f"d{i}"), nickname=f"P{i}")
        state = game.apply(state, join, time.time()).state
        conn: Any = _Connection()
        client = Client(conn=conn, conn_id=i + 1, ip="127.0.0.1", role="player")
        client.player_id = player_id
        client.tokens = 10.0
        service.hub.clients[client.conn_id] = client
        clients.append(client)
    state = game.apply(state, game.Start(), time.time()).state
    await backend.snapshots.create(game_id, JoinCode("BENCHX"), Snapshot(state=b"", live=state))
    for client in clients:
        service.hub.enter(client, game_id)
    await backend.bus.subscribe(game_channel(game_id))
    service._ensure_runner(game_id)
    await asyncio.sleep(0.3)  # the runner takes the lease
    gc.collect()
    gc.freeze()
    frames = [f'{{"type":"answer","question_index":0,"choices":[{i % 3}]}}' for i in range(players)]
    answering = clients[:-1]  # the question stays open
    _Sink.writes, _Sink.expected, _Sink.done = 0, len(answering), asyncio.Event()
    started = time.process_time()
    for i, client in enumerate(answering):
        await service._on_frame(client, frames[i])
        if i % every == every - 1:
            await asyncio.sleep(0)
    await asyncio.wait_for(_Sink.done.wait(), 60)
    cpu = time.process_time() - started
    await service.stop()
    await web.aclose()
    return cpu / len(answering)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1, help="frames per event-loop turn")
    args = parser.parse_args()
    per_answer = asyncio.run(run(args.players, args.every))
    print(f"players                      {args.players}")
    print(f"frames per event-loop turn   {args.every}")
    print(f"CPU per answer               {per_answer * 1e6:,.1f} us (frame to receipt, no network)")


if __name__ == "__main__":
    main()
