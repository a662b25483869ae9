"""The load generator (conductor and workers) against the Node ws peer, in a small session.

Counts only: every player's answer is sent once in each send window and every receipt comes
back. A send made twice (once by the timer, once from the receive path) would reach the peer
as a duplicate answer and come back as an error; one never made would leave a receipt missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.quiz import bench_quiz, correct_choices
from bench.suite import LOADGEN_SLICE_US, loadgen_command
from bench.targets import PEERS_DIR, free_port

PLAYERS = 40
CACHE = Path(os.environ.get("PARTYQUIZ_CACHE") or Path.home() / ".cache" / "partyquiz")
NODE_MODULES = CACHE / "bench" / "node_modules"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not (NODE_MODULES / "ws").exists(),
    reason="node or the bench's Node packages (make test-deps or make bench) are missing",
)


def _config(tmp_path: Path, url: str, server_pid: int, quiz: dict[str, object]) -> Path:
    config = {
        "kind": "ws",
        "protocol": "json",
        "host_urls": [url],
        "player_urls": [url],
        "origin": "http://127.0.0.1",
        "players": PLAYERS,
        "concurrency": 8,
        "games": [{"join_code": "000000", "host_token": "t"}],
        "server_pids": [server_pid],
        "redis_port": None,
        "rounds": 1,
        "warmup": 0,
        "fanout_only": False,
        "answer_path": True,
        "burst": True,
        "burst_window_s": 0.2,
        "burst_result_timeout_s": 20,
        "drain": None,
        "correct": correct_choices(quiz),
        "ramp_timeout_s": 20,
        "settle_ms": 100,
        "total_timeout_s": 60,
        "run_id": "unit",
        "workers": 2,
        "loadgen_cores": 1,
        "profile": None,
        "result_path": str(tmp_path / "result.json"),
    }
    path = tmp_path / "loadgen.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One small session of the load generator against the Node ws peer: its JSON result."""
    assert NODE is not None
    tmp_path = tmp_path_factory.mktemp("loadgen")
    quiz = bench_quiz(6)
    quiz_path = tmp_path / "quiz.json"
    quiz_path.write_text(json.dumps(quiz))
    port = free_port()
    env = {"NODE_PATH": str(NODE_MODULES), "PATH": "/usr/bin:/bin"}
    with subprocess.Popen(
        [NODE, str(PEERS_DIR / "ws_server.cjs"), "--port", str(port), "--quiz", str(quiz_path)],
        stdout=subprocess.PIPE,
        env=env,
    ) as server:
        try:
            assert server.stdout is not None
            assert server.stdout.readline() == b"ready\n"
            config = _config(tmp_path, f"ws://127.0.0.1:{port}/ws", server.pid, quiz)
            done = subprocess.run(
                loadgen_command(NODE, config),
                env=env,
                capture_output=True,
                timeout=90,
                check=False,
            )
        finally:
            server.terminate()
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    result: dict[str, Any] = json.loads((tmp_path / "result.json").read_text())
    return result


def test_every_answer_is_sent_once_and_receipted_in_both_send_windows(
    session: dict[str, Any],
) -> None:
    result = session
    assert "aborted" not in result
    assert result["connected"] == PLAYERS
    assert result["errors"] == {}
    answer_path, burst = result["answer_path"], result["burst"]
    assert (answer_path["sent"], answer_path["receipts"]) == (PLAYERS - 1, PLAYERS - 1)
    assert (burst["sent"], burst["receipts"]) == (PLAYERS, PLAYERS)
    assert answer_path["answer_errors"] == burst["answer_errors"] == 0
    assert burst["complete"]
    assert burst["all_results"]
    assert (burst["lost"], burst["double_counted"], burst["missing_results"]) == (0, 0, 0)


def test_fan_outs_are_timed_where_the_players_got_them(session: dict[str, Any]) -> None:
    """A fan-out's last player is the latest arrival the workers saw, from the host's command;
    the conductor hears of it later (over IPC), so its wall time is never shorter."""
    fanouts = session["fanouts"] + [session["burst"]["leaderboard"]]
    for fanout in fanouts:
        assert fanout["complete"]
        assert 0 < fanout["last_ms"] <= fanout["wall_ms"]
    question = session["fanouts"][0]
    assert question["last_ms"] == max(question["latencies_ms"])


def test_deadline_to_leaderboard_adds_the_two_times_the_players_saw(
    session: dict[str, Any],
) -> None:
    """Deadline -> last result, then the host's `next` -> last leaderboard: the load
    generator's own pause between the two (workers reporting, the next fan-out armed) is not
    charged to the server, and the conductor's own reading of it is kept beside it."""
    burst = session["burst"]
    expected = burst["deadline_to_last_result_ms"] + burst["leaderboard"]["last_ms"]
    assert burst["deadline_to_last_leaderboard_ms"] == pytest.approx(expected, abs=0.02)
    assert burst["conductor_deadline_to_leaderboard_ms"] >= burst["deadline_to_last_leaderboard_ms"]


def _kernel_slice_ns(argv: list[str]) -> int | None:
    """The scheduler slice ``argv`` (reading /proc/self/sched) runs with, where it is shown."""
    shown = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    for line in shown.splitlines():
        if line.startswith("se.slice"):
            return int(line.split(":")[1])
    return None


def test_a_command_run_with_a_short_slice_keeps_it_across_exec() -> None:
    sched = Path(__file__).resolve().parents[3] / "bench" / "sched.py"
    if _kernel_slice_ns(["cat", "/proc/self/sched"]) is None:
        pytest.skip("the kernel does not show scheduler slices")
    argv = [sys.executable, str(sched), "250", "--", "cat", "/proc/self/sched"]
    assert _kernel_slice_ns(argv) == 250_000


def test_the_workers_run_with_the_load_generators_short_slice(session: dict[str, Any]) -> None:
    """A worker whose send timer fires takes the core from a task with the default slice."""
    slices = session["worker_slices_ns"]
    if slices[0] is None:
        pytest.skip("the kernel does not show scheduler slices")
    assert slices == [LOADGEN_SLICE_US * 1000] * 2


def test_the_workers_helper_threads_yield_the_core_to_the_main_thread(
    session: dict[str, Any],
) -> None:
    """V8's helper threads run niced to the bottom, the thread that sends at its own priority."""
    for nices in session["worker_thread_nices"]:
        assert nices["main"] == os.getpriority(os.PRIO_PROCESS, 0)
        assert nices["helpers"]
        assert set(nices["helpers"]) == {19}
