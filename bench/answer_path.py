"""Micro-benchmark of the game service's answer path without the network (never timed in CI).

Runs the real ``GameService`` (its runner, engine and fan-out) with N players in an open
question and feeds it N answer frames the way N connections do: through ``_take_answer`` where
the frame is parsed (at revisions that have it), else through ``_on_frame`` in a task per frame,
as each connection's handler did; yielding to the event loop every ``--every``
frames (16: frames arriving in bursts, as under load). Transports are sinks that count writes,
so the figure is the Python work per answer from the frame to its receipt leaving -- what the suite
pays on top of websockets' receive path and two system calls.

Embedded by default; with ``--redis`` two replicas share the game on a Redis of their own (the
host's replica owns it, players alternate between them, as in the suite's ``redis`` scenario),
both in this process, and Redis's CPU is reported apart with the commands it ran for the
answers (``INFO commandstats``: calls per answer, microseconds per call). ``--profile FILE``
writes cProfile statistics of the answers alone and prints where the CPU went by role: the
receiving side (frame to durable append, both replicas), the owner's loop (apply, encode,
commit), the shared inbox read, delivering batches (the owner's own and the other replica's
from pub/sub), and the Redis client's pipelines.
Run: ``uv run --frozen --all-extras python -m bench.answer_path [--players N] [--redis]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.core_apply import bench_quiz
from bench.sink import SinkConnection
from partyquiz_core import game
from partyquiz_core.ids import DeviceId, GameId, JoinCode, PlayerId
from partyquiz_ws.backends import Backend, Snapshot, game_channel
from partyquiz_ws.engine import encode_snapshot
from partyquiz_ws.fanout import Client
from partyquiz_ws.memory_backend import memory_backend
from partyquiz_ws.metrics import WsMetrics
from partyquiz_ws.redis_backend import redis_backend
from partyquiz_ws.server import GameService
from partyquiz_ws.settings import WsSettings
from partyquiz_ws.webclient import WebClient


class _Sink:
    """A transport that keeps nothing and counts writes (and error frames); ``done`` is set
    at ``expected``."""

    writes = 0
    expected = 0
    errors = 0
    done: asyncio.Event | None = None

    def write(self, data: bytes) -> None:
        _Sink.writes += 1
        if b'"type":"error"' in data:
            _Sink.errors += 1
        if _Sink.done is not None and _Sink.writes >= _Sink.expected:
            _Sink.done.set()


def _role_breakdown(profile: Path, answers: int) -> list[tuple[str, float]]:
    """Microseconds per answer, under the profiler, charged to each role (and the rest).

    Coroutines and tasks are charged for their own runs (each resumption is a call), so a
    role's entry points are the functions that start its work on the event loop."""
    stats: Any = pstats.Stats(str(profile)).stats

    def spent(file: str, function: str) -> float:
        return sum(
            ct
            for (path, _, name), (_, _, _, ct, _) in stats.items()
            if name == function and path.endswith(file)
        )

    total = sum(tt for (_, _, tt, _, _) in stats.values())
    own_delivery = spent("server.py", "_deliver_here")
    rows = [
        (
            "receiving: frame to durable append (both replicas)",
            spent("server.py", "_on_frame")
            + spent("server.py", "_take_answer")
            + spent("redis_backend.py", "_send_appends")
            + spent("redis_backend.py", "_append_all"),
        ),
        ("owner: read, apply, encode, commit", spent("runner.py", "run") - own_delivery),
        ("owner: the shared inbox read", spent("redis_backend.py", "_read_for_everyone")),
        ("owner: its batches to its own connections", own_delivery),
        ("pub/sub: receive and deliver (both replicas)", spent("server.py", "_listen")),
        ("Redis client: pipelines sent and replies read", spent("redis_backend.py", "_send")),
    ]
    rest = total - sum(t for _, t in rows)
    rows.append(("the rest (event loop, tasks, the bench feeding frames)", rest))
    return [(role, t / answers * 1e6) for role, t in rows]


async def _commandstats(url: str) -> dict[str, tuple[int, int]]:
    """Redis's calls and microseconds per command so far."""
    client = aioredis.Redis.from_url(url)
    try:
        info = await client.info("commandstats")
    finally:
        await client.aclose()
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"])) for name, v in info.items()
    }


def _cpu_of(pid: int) -> float:
    """CPU seconds of a process from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _service(backend: Backend, replica: str) -> tuple[GameService, WebClient]:
    settings = WsSettings(
        jwt_secret="b" * 40, environment="development", port=1, replica_id=replica
    )
    web = WebClient(settings.web_internal_url, settings.jwt_secret.get_secret_value())
    service = GameService(settings, backend, WsMetrics(), web)
    await service.start()
    return service, web


async def run(
    players: int, every: int, redis_url: str | None, profile: Path | None, redis_pid: int | None
) -> tuple[float, float, dict[str, tuple[int, int]]]:
    """Return CPU seconds per answer in this process and in Redis for ``players`` answers,
    and Redis's (calls, microseconds) per command during them."""
    game_id = GameId("bench")
    quiz = bench_quiz()
    # Answers open at once: no get-ready screen, no reading time.
    quiz = quiz.model_copy(
        update={
            "settings": quiz.settings.model_copy(update={"get_ready_seconds": 0}),
            "questions": tuple(q.model_copy(update={"read_seconds": 0}) for q in quiz.questions),
        }
    )
    state = game.new_game(game_id, quiz)
    for i in range(players):
        join = game.Join(
            player_id=PlayerId(f"player-{i:05d}"), device_id=DeviceId(f"d{i}"), nickname=f"P{i}"
        )
        state = game.apply(state, join, time.time()).state
    state = game.apply(state, game.Start(), time.time()).state
    replicas = ("a", "b") if redis_url else ("a",)
    services = []
    for name in replicas:
        backend = redis_backend(redis_url) if redis_url else memory_backend()
        services.append(await _service(backend, f"bench-{name}"))
    owner = services[0][0]
    if redis_url:
        base, log = encode_snapshot(state, 0)
        snapshot = Snapshot(state=base)
        assert not log
    else:
        snapshot = Snapshot(state=b"", live=state)
    await owner.backend.snapshots.create(game_id, JoinCode("BENCHX"), snapshot)
    clients = []
    for i in range(players):
        service = services[i % len(services)][0]
        conn: Any = SinkConnection(_Sink())
        client = Client(conn=conn, conn_id=i + 1, ip="127.0.0.1", role="player")
        client.player_id = PlayerId(f"player-{i:05d}")
        client.tokens = 10.0
        service.hub.clients[client.conn_id] = client
        clients.append((service, client))
    for service, client in clients:
        service.hub.enter(client, game_id)
    for service, _web in services:
        await service.backend.bus.subscribe(game_channel(game_id))
    owner._ensure_runner(game_id)
    await asyncio.sleep(0.5)  # the owner takes the lease
    for service, _web in services[1:]:
        service._ensure_runner(game_id)
    gc.collect()
    gc.freeze()
    frames = [f'{{"type":"answer","question_index":0,"choices":[{i % 3}]}}' for i in range(players)]
    answering = clients[:-1]  # the question stays open
    _Sink.writes, _Sink.expected, _Sink.done = 0, len(answering), asyncio.Event()
    profiler = cProfile.Profile() if profile else None
    commands_before = await _commandstats(redis_url) if redis_url else {}
    redis_before = _cpu_of(redis_pid) if redis_pid else 0.0
    started = time.process_time()
    if profiler:
        profiler.enable()
    handling = set()
    for i, (service, client) in enumerate(answering):
        # Where the revision has it, a player's answer is taken where its frame is parsed (the
        # connection's handler is idle); before it, each connection's handler awaits its own
        # frame in a task of its own. Either way connections do not wait for each other.
        take = getattr(service, "_take_answer", None)
        if take is None or not take(client, frames[i]):
            task = asyncio.ensure_future(service._on_frame(client, frames[i]))
            handling.add(task)
            task.add_done_callback(handling.discard)
        if i % every == every - 1:
            await asyncio.sleep(0)
    await asyncio.wait_for(_Sink.done.wait(), 120)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    cpu = time.process_time() - started
    if _Sink.errors:
        raise SystemExit(f"{_Sink.errors} answers were refused: this would measure refusals")
    redis_cpu = (_cpu_of(redis_pid) - redis_before) if redis_pid else 0.0
    commands = {}
    if redis_url:
        for name, (calls, usec) in (await _commandstats(redis_url)).items():
            was = commands_before.get(name, (0, 0))
            if calls > was[0]:
                commands[name] = (calls - was[0], usec - was[1])
        commands.pop("info", None)  # the reads of these figures
    for service, web in services:
        await service.stop()
        await web.aclose()
        await service.backend.close()
    return cpu / len(answering), redis_cpu / len(answering), commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1, help="frames per event-loop turn")
    parser.add_argument("--redis", action="store_true", help="two replicas on a Redis of their own")
    parser.add_argument("--profile", type=Path, help="write cProfile statistics here")
    args = parser.parse_args()
    with ExitStack() as stack:
        url, pid = None, None
        if args.redis:
            # tests.servers owns throwaway Redis servers for tests and benchmarks alike.
            from tests.servers import run_redis

            redis = stack.enter_context(run_redis("--appendonly", "yes"))
            url, pid = redis.url(), redis.process.pid
        per_answer, redis_per_answer, commands = asyncio.run(
            run(args.players, args.every, url, args.profile, pid)
        )
    print(f"players                      {args.players}")
    print(f"mode                         {'2 replicas + Redis' if args.redis else 'embedded'}")
    print(f"frames per event-loop turn   {args.every}")
    print(f"CPU per answer               {per_answer * 1e6:,.1f} us (frame to receipt, no network)")
    answers = args.players - 1
    if args.redis:
        print(f"Redis CPU per answer         {redis_per_answer * 1e6:,.1f} us")
        calls = sum(c for c, _ in commands.values())
        print(f"Redis commands per answer    {calls / answers:.3f}")
        for name, (count, usec) in sorted(commands.items(), key=lambda kv: -kv[1][1]):
            print(
                f"  {name:<26} {count / answers:8.3f} per answer {usec / count:8.1f} us per call"
                f" {usec / answers:7.2f} us per answer"
            )
    if args.profile:
        print("under the profiler, us per answer by role:")
        for role, spent in _role_breakdown(args.profile, answers):
            print(f"  {spent:8.1f}  {role}")


if __name__ == "__main__":
    main()
