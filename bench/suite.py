"""The game-service scenarios: sessions in interleaved order, results kept raw.

Owns the run plan: for each scenario and size, every server kind once per round
(A B C D A B C D ...), each session fresh servers on the server core and the load generator
(a conductor and its worker processes) on the other core. It measures nothing itself (the load
generator does) and renders nothing (``render``).

Scenarios:
- ``game``: one game on one server process, PartyQuiz embedded beside the peers and floors
  (B1-B3, T2-T4): ramp, question fan-outs with reveal and leaderboard, an answer-path question
  (every player but one answers, so only answers are charged), an answer burst.
- ``redis``: the production topology, PartyQuiz as two replicas on Redis, beside Socket.IO on
  two nodes with its Redis adapter and Node ws (T1-T3, B4).
- ``scaleout``: one replica + Redis with N players against two replicas (one per core) with 2N
  (T5).
- ``many``: many small games on one replica + Redis, answers spread over 10 s (T6).
- ``drain``: every player on one of two replicas, which drains (SIGTERM) mid-game (T7).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.procs import BenchError
from bench.quiz import correct_choices
from bench.stats import interleaved
from bench.targets import (
    KINDS,
    PEERS_DIR,
    Env,
    PartyQuizStack,
    Running,
    start_centrifugo,
    start_floor,
    start_node_peer,
    start_pysocketio,
    start_socketio_redis,
)

# Load-generator processes playing the players (the conductor plays the hosts).
WORKERS = 2
# The load generator's scheduler slice (bench/sched.py), microseconds: the shortest Linux
# grants, so a worker whose send timer fires takes the core from whatever else runs there.
LOADGEN_SLICE_US = 100


@dataclass(frozen=True)
class Scenario:
    name: str
    sizes: tuple[int, ...]
    kinds: tuple[str, ...]
    runs: int
    rounds: int  # measured question fan-outs per session (each with reveal and leaderboard)
    warmup: int  # fan-outs discarded at the start of each session
    answer_path: bool = True  # a question every player but one answers (CPU per answer)
    burst: bool = True  # a question every player answers within the window
    burst_window_s: float = 1.0
    games: int = 1  # games per session; players are spread over them
    drain: bool = False  # the first replica drains after the burst

    def players(self, kind: str, size: int) -> int:
        """Players of a session: ``size``, doubled for the scale-out's two replicas."""
        return 2 * size if kind == "partyquiz-redis-2x" else size

    @property
    def questions(self) -> int:
        return self.warmup + self.rounds + int(self.answer_path) + int(self.burst) + 1


@dataclass(frozen=True)
class Plan:
    scenarios: tuple[Scenario, ...]
    operator_counts: tuple[int, ...] = ()  # B5: PartyQuiz objects per measurement
    failfast_runs: int = 0  # B6: runs, one PartyQuiz at a time (at least 5 when asked for)
    concurrency: int = 64  # connections opening at once (below asyncio's default backlog, 100)
    nice: int = 0  # scheduling priority of servers and load generator on a shared machine
    workers: int = WORKERS

    @property
    def questions(self) -> int:
        return max((s.questions for s in self.scenarios), default=1)

    def only(self, names: set[str]) -> Plan:
        return replace(self, scenarios=tuple(s for s in self.scenarios if s.name in names))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loadgen_config(
    plan: Plan,
    scenario: Scenario,
    env: Env,
    running: Running,
    players: int,
    tag: str,
    quiz: dict[str, Any],
) -> dict[str, Any]:
    kind = KINDS[running.kind]
    fanouts = (scenario.warmup + scenario.rounds) * 3 + 6
    total = 120 + players * 0.03 + fanouts * (20 + players * 0.004) + 2 * scenario.burst_window_s
    return {
        "kind": running.kind,
        "protocol": kind.protocol,
        "host_urls": running.host_urls,
        "player_urls": running.player_urls,
        "origin": "http://127.0.0.1",
        "players": players,
        "concurrency": plan.concurrency,
        "games": [{"join_code": code, "host_token": token} for code, token in running.games],
        "server_pids": running.pids,
        "redis_port": running.redis_port,
        "redis_pid": running.redis_pid,
        "rounds": scenario.rounds,
        "warmup": scenario.warmup,
        "fanout_only": kind.floor,
        "answer_path": scenario.answer_path and not kind.floor,
        "burst": scenario.burst and not kind.floor,
        "burst_window_s": scenario.burst_window_s,
        "burst_result_timeout_s": 60,
        "drain": None if running.drain is None else {**running.drain, "timeout_s": 60},
        "correct": correct_choices(quiz),
        "ramp_timeout_s": 90 + players * 0.02,
        "settle_ms": 1000,
        "total_timeout_s": total,
        "run_id": tag,
        "workers": plan.workers,
        "loadgen_cores": 1,
        "profile": None
        if not (env.py_spy and running.profiled)
        else {"py_spy": env.py_spy, "pids": running.profiled, "prefix": str(env.log_dir / tag)},
    }


def loadgen_command(node: str, config_path: Path) -> list[str]:
    """The load generator's command line: conductor and workers with a short scheduler slice."""
    sched = Path(__file__).resolve().parent / "sched.py"
    argv = [node, str(PEERS_DIR / "loadgen.cjs"), str(config_path)]
    return [sys.executable, str(sched), str(LOADGEN_SLICE_US), "--", *argv]


def run_loadgen(env: Env, config: dict[str, Any], tag: str) -> dict[str, Any]:
    """Run the load generator (conductor and workers) on its core; return its JSON result."""
    path = env.log_dir / f"loadgen-{tag}.json"
    result_path = env.log_dir / f"result-{tag}.json"
    path.write_text(json.dumps({**config, "result_path": str(result_path)}))
    stderr = env.log_dir / f"loadgen-{tag}.log"
    with stderr.open("wb") as err:
        done = subprocess.run(
            [
                *env.nice_prefix,
                "taskset",
                "-c",
                str(env.loadgen_cpu),
                *loadgen_command(env.node, path),
            ],
            stdout=err,
            stderr=err,
            timeout=config["total_timeout_s"] + 60,
            env={"NODE_PATH": str(env.node_modules), "PATH": "/usr/bin:/bin"},
            check=False,
        )
    if done.returncode != 0 or not result_path.exists():
        raise BenchError(
            f"load generator failed ({done.returncode}):\n"
            f"{stderr.read_text(errors='replace')[-3000:]}"
        )
    result: dict[str, Any] = json.loads(result_path.read_text())
    if result.get("aborted"):
        raise BenchError(
            f"load generator aborted: {result['aborted']}\n"
            f"{stderr.read_text(errors='replace')[-3000:]}"
        )
    return result


class Targets:
    """Starts any kind's servers; PartyQuiz's web service is started once, when first needed."""

    def __init__(self, env: Env, quiz: dict[str, Any]) -> None:
        self.env = env
        self.quiz = quiz
        self._stack: PartyQuizStack | None = None

    @property
    def stack(self) -> PartyQuizStack:
        if self._stack is None:
            self._stack = PartyQuizStack(self.env, self.quiz)
        return self._stack

    def start(self, scenario: Scenario, kind: str, tag: str) -> Running:
        if kind == "partyquiz":
            return self.stack.start(tag)
        if kind.startswith("partyquiz-redis"):
            return self.stack.start_replicated(
                kind,
                tag,
                replicas=1 if kind == "partyquiz-redis-1" else 2,
                games=scenario.games,
                drain=scenario.drain,
            )
        if kind in ("ws", "ws-prebuilt", "socketio"):
            return start_node_peer(self.env, kind, tag)
        if kind == "socketio-redis":
            return start_socketio_redis(self.env, tag)
        if kind == "pysocketio":
            return start_pysocketio(self.env, tag)
        if kind == "centrifugo":
            return start_centrifugo(self.env, tag)
        if KINDS[kind].floor:
            return start_floor(self.env, kind, tag)
        raise BenchError(f"no way to start {kind}")

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()


def run_scenario(
    plan: Plan,
    scenario: Scenario,
    env: Env,
    targets: Targets,
    quiz: dict[str, Any],
    record: Callable[[dict[str, Any]], None],
) -> None:
    """Every size, kind and run of one scenario; each raw result goes to ``record``."""
    kinds = []
    for kind in scenario.kinds:
        why = env.missing(kind)
        if why:
            log(f"{scenario.name}: {KINDS[kind].label} left out: {why}")
            record({"scenario": scenario.name, "kind": kind, "size": 0, "run": 0, "error": why})
        else:
            kinds.append(kind)
    for size in scenario.sizes:
        for run, kind in interleaved(kinds, scenario.runs):
            players = scenario.players(kind, size)
            tag = f"{scenario.name}-{kind}-{size}-{run}"
            log(f"{scenario.name}: {KINDS[kind].label} with {players} players, run {run + 1}")
            rec: dict[str, Any] = {
                "scenario": scenario.name,
                "kind": kind,
                "size": size,
                "players": players,
                "run": run,
            }
            running: Running | None = None
            try:
                running = targets.start(scenario, kind, tag)
                config = loadgen_config(plan, scenario, env, running, players, tag, quiz)
                rec["raw"] = run_loadgen(env, config, tag)
                running.check_alive()
                rank_profiles(env, tag)
            except BenchError as exc:
                # One failed session must not void the others; the report counts it.
                log(f"session {tag} failed: {exc}")
                rec["error"] = str(exc)[:2000]
                rec.pop("raw", None)
            finally:
                if running is not None:
                    running.stop()
            record(rec)


def rank_profiles(env: Env, tag: str) -> None:
    """Rank the functions of each phase profile the load generator took (``.top.txt``)."""
    from bench.profiling import render

    for raw in env.log_dir.glob(f"{tag}-profile-*.txt"):
        if not raw.name.endswith(".top.txt"):
            with raw.open() as lines:
                raw.with_suffix(".top.txt").write_text(render(lines))


def self_check(env: Env) -> None:
    """Fail fast when the tools the suite needs are missing."""
    if not (env.node_modules / "socket.io" / "package.json").exists():
        raise BenchError(
            f"Node packages missing in {env.node_modules}; run `make bench`, which installs them"
        )
    if subprocess.run(["taskset", "-c", "0", "true"], check=False).returncode != 0:
        raise BenchError("taskset cannot pin to core 0")
    if not (PEERS_DIR.parent / "peers").exists():
        raise BenchError("bench/peers is missing")
