"""The game-service benchmarks (B1-B4): sessions in interleaved order, results kept raw.

Owns the run plan: for each size, every server kind once per round (A B C D A B C D ...), each
session a fresh server on the server core and one load-generator process on the other core.
B4 starts its own Redis and two PartyQuiz replicas. It measures nothing itself (the load
generator does) and renders nothing (``render``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import BenchError
from bench.quiz import correct_choices
from bench.stats import interleaved
from bench.targets import PEERS_DIR, Env, PartyQuizStack, Running, start_node_peer, start_raw_floor


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    runs: int
    kinds: tuple[str, ...]
    rounds: int  # measured question fan-outs per session
    warmup: int  # fan-outs discarded at the start of each session
    replica_sizes: tuple[int, ...]  # B4
    operator_counts: tuple[int, ...] = ()  # B5: PartyQuiz objects per measurement
    concurrency: int = 64  # connections opening at once (below asyncio's default backlog, 100)
    nice: int = 0  # scheduling priority of servers and load generator on a shared machine

    @property
    def questions(self) -> int:
        return self.warmup + self.rounds + 1  # + the answer-burst question


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loadgen_config(
    plan: Plan,
    env: Env,
    running: Running,
    players: int,
    tag: str,
    quiz: dict[str, Any],
    *,
    burst: bool,
) -> dict[str, Any]:
    total = 90 + players * 0.02 + (plan.warmup + plan.rounds) * (20 + players * 0.004) + 120
    return {
        "kind": "partyquiz" if running.kind.startswith("partyquiz") else running.kind,
        "url": running.url,
        "player_urls": running.player_urls or [running.url],
        "origin": running.origin,
        "players": players,
        "concurrency": plan.concurrency,
        "join_code": running.join_code,
        "host_token": running.host_token,
        "server_pids": running.pids,
        "redis_port": running.redis_port,
        "rounds": plan.rounds,
        "warmup": plan.warmup,
        "burst": burst,
        "burst_window_s": 1.0,
        "burst_result_timeout_s": 40,
        "correct": correct_choices(quiz),
        "ramp_timeout_s": 60 + players * 0.02,
        "settle_ms": 1000,
        "total_timeout_s": total,
        "run_id": tag,
    }


def run_loadgen(env: Env, config: dict[str, Any], tag: str) -> dict[str, Any]:
    """Run the load generator on its core; return its JSON result."""
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
                env.node,
                str(PEERS_DIR / "loadgen.cjs"),
                str(path),
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


def run_game_service(
    plan: Plan, env: Env, quiz: dict[str, Any], record: Callable[[dict[str, Any]], None]
) -> None:
    """B1-B3 for every size and kind; each raw result goes to ``record`` as it arrives."""
    stack = PartyQuizStack(env, quiz) if "partyquiz" in plan.kinds else None
    try:
        for size in plan.sizes:
            for run, kind in interleaved(plan.kinds, plan.runs):
                tag = f"{kind}-{size}-{run}"
                log(f"B1-B3 {kind} with {size} players, run {run + 1}/{plan.runs}")
                if kind == "partyquiz":
                    assert stack is not None
                    running = stack.start(tag)
                elif kind == "raw":
                    running = start_raw_floor(env, tag)
                else:
                    running = start_node_peer(env, kind, tag)
                rec: dict[str, Any] = {"scenario": "game", "kind": kind, "size": size, "run": run}
                try:
                    config = loadgen_config(plan, env, running, size, tag, quiz, burst=True)
                    rec["raw"] = run_loadgen(env, config, tag)
                    running.check_alive()
                except BenchError as exc:
                    # One failed session must not void the others; the report counts it.
                    log(f"session {tag} failed: {exc}")
                    rec["error"] = str(exc)[:2000]
                finally:
                    running.stop()
                    if stack is not None:
                        stack.finish_profiles()
                record(rec)
    finally:
        if stack is not None:
            stack.close()


def run_replicas(
    plan: Plan, env: Env, quiz: dict[str, Any], record: Callable[[dict[str, Any]], None]
) -> None:
    """B4: two ws replicas share one game through Redis; players alternate between them."""
    # tests.servers owns throwaway Redis servers for tests and benchmarks alike.
    from tests.servers import run_redis

    stack = PartyQuizStack(env, quiz)
    try:
        for size in plan.replica_sizes:
            for run in range(plan.runs):
                tag = f"replicas-{size}-{run}"
                log(f"B4 two replicas with {size} players, run {run + 1}/{plan.runs}")
                rec: dict[str, Any] = {
                    "scenario": "replicas",
                    "kind": "partyquiz-2",
                    "size": size,
                    "run": run,
                }
                with run_redis() as redis:
                    running = stack.start_replicated(
                        tag, redis.url(), redis.port, redis.process.pid
                    )
                    try:
                        config = loadgen_config(plan, env, running, size, tag, quiz, burst=True)
                        rec["raw"] = run_loadgen(env, config, tag)
                        running.check_alive()
                    except BenchError as exc:
                        log(f"session {tag} failed: {exc}")
                        rec["error"] = str(exc)[:2000]
                    finally:
                        running.stop()
                        stack.finish_profiles()
                record(rec)
    finally:
        stack.close()


def self_check(env: Env) -> None:
    """Fail fast when the tools the suite needs are missing."""
    if not (env.node_modules / "socket.io" / "package.json").exists():
        raise BenchError(
            f"Node packages missing in {env.node_modules}; run `make bench`, which installs them"
        )
    if subprocess.run(["taskset", "-c", "0", "true"], check=False).returncode != 0:
        raise BenchError("taskset cannot pin to core 0")
    if Path("/proc/self/task").exists() is False:
        raise BenchError("/proc is needed to read process CPU time")
