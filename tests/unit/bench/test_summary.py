"""Turning raw load-generator results into report figures, and the targets' verdicts."""

from __future__ import annotations

from typing import Any

import pytest
from bench.summary import (
    Metrics,
    Results,
    check_targets,
    game_cost,
    split_by_replica,
    summarize_records,
    summarize_session,
)


def _fanout(
    cpu_ms: float,
    latencies: list[float | None],
    *,
    warmup: bool = False,
    publish: int | None = None,
) -> dict[str, Any]:
    return {
        "complete": all(x is not None for x in latencies),
        "received": sum(1 for x in latencies if x is not None),
        "server_cpu_ms": cpu_ms,
        "server_util": 0.5,
        "loadgen_util": 0.3,
        "latencies_ms": latencies,
        "warmup": warmup,
        "publish_calls": publish,
    }


def _raw(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "kind": "partyquiz",
        "players": 4,
        "connected": 4,
        "failed": 0,
        "question_bytes": 312.0,
        "server_pids": [100, 200],
        "redis_pid": 200,
        "ramp": {
            "rss_before_kib": 1000,
            "rss_after_kib": 1040,
            "loadgen_util": 0.2,
            "server_cpu_ms": 8.0,
            "connect_latencies_ms": [1.0, 2.0, 3.0, 4.0],
        },
        "fanouts": [
            _fanout(100.0, [50.0, 50.0, 50.0, 50.0], warmup=True),
            _fanout(2.0, [1.0, 2.0, 3.0, 4.0]),
            _fanout(4.0, [2.0, 3.0, 4.0, 5.0]),
        ],
        "answer_path": {
            "sent": 3,
            "late_sends": 0,
            "answer_errors": 0,
            "receipt_latencies_ms": [1.0, 2.0, 3.0],
            "server_cpu_ms": 6.0,
            "server_cpu_ms_by_pid": [4.5, 1.5],
            "server_user_ticks": 3,
            "server_system_ticks": 1,
            "redis_ops": 12,
        },
        "answer_path_close": {
            "reveal": {"server_cpu_ms": 5.0},
            "leaderboard": {"server_cpu_ms": 1.0},
        },
        "burst": {
            "players": 4,
            "sent": 4,
            "late_sends": 1,
            "receipts": 4,
            "receipt_latencies_ms": [1.0, 1.0, 2.0, 9.0],
            "lost": 0,
            "double_counted": 0,
            "missing_results": 0,
            "answer_errors": 0,
            "deadline_to_last_result_ms": 30.0,
            "deadline_to_last_leaderboard_ms": 45.0,
            "server_cpu_ms": 12.0,
            "loadgen_util": 0.4,
            "redis_ops": 20,
        },
    }
    raw.update(overrides)
    return raw


def test_memory_per_connection_is_the_rss_delta_over_connections() -> None:
    assert summarize_session(_raw())["kib_per_connection"] == 10.0


def test_warm_up_fan_outs_are_discarded() -> None:
    m = summarize_session(_raw())
    assert m["fanout_cpu_ms"] == 3.0  # median of 2 and 4; the warm-up's 100 is ignored
    assert m["fanout_last_ms"] == 4.5


def test_players_who_missed_a_fan_out_count_as_an_incomplete_fan_out() -> None:
    m = summarize_session(_raw(fanouts=[_fanout(2.0, [1.0, None, 3.0, 4.0])]))
    assert m["incomplete_fanouts"] == 1.0
    assert m["fanout_last_ms"] == 4.0


def test_the_answer_path_is_charged_per_1000_answers_with_redis_apart() -> None:
    m = summarize_session(_raw())
    assert m["answer_cpu_ms_per_1000"] == 2000.0  # 6 ms for 3 answers
    assert m["answer_redis_cpu_ms_per_1000"] == 500.0  # the Redis pid's 1.5 ms
    assert m["answer_redis_ops_per_answer"] == 4.0
    assert m["answer_system_share"] == 0.25


def test_late_sends_are_a_share_of_every_answer_sent() -> None:
    assert summarize_session(_raw())["late_send_share"] == pytest.approx(1 / 7)


def test_a_game_costs_joins_plus_twenty_questions_each_with_every_answer() -> None:
    # join 8 ms; per question: fan-out 3 + answers 6 * 4/3 + reveal 5 + leaderboard 1 = 17
    assert game_cost(_raw()) == pytest.approx((8.0 + 20 * 17.0) / 4)
    assert summarize_session(_raw())["game_cpu_s_per_1000_players"] == game_cost(_raw())


def test_a_floor_without_answers_has_no_game_cost() -> None:
    assert game_cost(_raw(answer_path=None, answer_path_close=None)) is None


def test_burst_figures_are_carried_over() -> None:
    m = summarize_session(_raw())
    assert m["receipt_p50_ms"] == 1.5
    assert m["lost"] == 0.0
    assert m["deadline_to_leaderboard_ms"] == 45.0
    assert m["burst_redis_ops_per_answer"] == 5.0


def test_an_aborted_load_generator_is_an_error_not_a_figure() -> None:
    with pytest.raises(ValueError, match="aborted: time limit"):
        summarize_session({"aborted": "time limit"})


def test_publish_counts_per_broadcast_keep_the_worst_fan_out() -> None:
    fanouts = [_fanout(1.0, [1.0], publish=n) for n in (1, 2, 1)]
    m = summarize_session(_raw(fanouts=fanouts))
    assert m["publish_per_broadcast"] == 1.0
    assert m["publish_per_broadcast_max"] == 2


def test_split_by_replica_separates_alternating_players() -> None:
    raw = _raw(fanouts=[_fanout(1.0, [1.0, 10.0, 3.0, 12.0, 5.0, 14.0])])
    local, remote = split_by_replica(raw, 2)
    assert local["p50_ms"] == 3.0
    assert remote["p50_ms"] == 12.0


def test_sessions_are_grouped_by_scenario_size_and_server_and_failures_left_out() -> None:
    replicas = _raw(fanouts=[_fanout(1.0, [10.0, 13.0, 10.0, 13.0], publish=1)])
    records = [
        {"scenario": "game", "kind": "partyquiz", "size": 4, "run": 0, "raw": _raw()},
        {"scenario": "game", "kind": "partyquiz", "size": 4, "run": 1, "error": "boom"},
        {"scenario": "game", "kind": "ws", "size": 4, "run": 0, "raw": _raw(burst=None)},
        {"scenario": "redis", "kind": "partyquiz-redis", "size": 4, "run": 2, "raw": replicas},
    ]
    results = summarize_records(records)
    assert [m["run"] for m in results["game"][4]["partyquiz"]] == [0.0]
    assert set(results["game"][4]) == {"partyquiz", "ws"}
    (redis,) = results["redis"][4]["partyquiz-redis"]
    assert (redis["run"], redis["added_p50_ms"]) == (2.0, 3.0)


def _runs(key: str, *values: float | None) -> list[Metrics]:
    return [{"run": float(r), key: v} for r, v in enumerate(values)]


def _verdicts(results: Results) -> dict[str, tuple[str, bool | None]]:
    return {v.target: (v.measured, v.met) for v in check_targets(results)}


T4 = "T4 10,000 players: CPU per fan-out ≤ 1.0x Node ws with a pre-built frame"


def test_a_ratio_target_is_missed_when_its_worst_round_misses_it() -> None:
    results: Results = {
        "game": {
            10_000: {
                "partyquiz": _runs("fanout_cpu_ms", 80.0, 90.0, 110.0),
                "ws-prebuilt": _runs("fanout_cpu_ms", 100.0, 100.0, 100.0),
            }
        }
    }
    measured, met = _verdicts(results)[T4]
    assert measured == "0.90x (0.80x to 1.10x over 3 runs)"
    assert met is False


def test_ratios_pair_the_runs_of_one_round_not_the_medians() -> None:
    # Medians alike (100 vs 100), but every round PartyQuiz used less than its neighbour.
    results: Results = {
        "game": {
            10_000: {
                "partyquiz": _runs("fanout_cpu_ms", 90.0, 100.0, 140.0),
                "ws-prebuilt": _runs("fanout_cpu_ms", 100.0, 110.0, 150.0),
            }
        }
    }
    measured, met = _verdicts(results)[T4]
    assert met is True
    assert measured.startswith("0.91x (0.90x to 0.93x")


def test_a_ratio_without_the_peer_is_not_measured_rather_than_met() -> None:
    results: Results = {"game": {10_000: {"partyquiz": _runs("fanout_cpu_ms", 80.0)}}}
    assert _verdicts(results)[T4] == ("not measured", None)


def test_a_latency_target_takes_the_slowest_run() -> None:
    runs = _runs("receipt_p99_ms", 40.0, 60.0, 130.0)
    measured, met = _verdicts({"redis": {10_000: {"partyquiz-redis": runs}}})[
        "T1 10,000 answers in 1 s, 2 replicas + Redis: receipt p99 ≤ 100 ms"
    ]
    assert (measured, met) == ("60 ms (40 to 130 over 3 runs)", False)


def test_one_lost_answer_in_any_run_misses_the_correctness_target() -> None:
    clean: Metrics = {"run": 0.0, "burst_players": 10.0, "burst_receipts": 10.0, "lost": 0.0}
    lossy: Metrics = {"run": 1.0, "burst_players": 10.0, "burst_receipts": 10.0, "lost": 1.0}
    verdicts = _verdicts({"redis": {10: {"partyquiz-redis": [clean, lossy]}}})
    measured, met = verdicts["T1 10 answers, 2 replicas + Redis: none lost or double-counted"]
    assert met is False
    assert measured == "worst of 2 runs: 10 of 10 accepted, 1 lost, 0 double-counted"


def test_an_unanswered_answer_counts_against_correctness_too() -> None:
    short: Metrics = {"run": 0.0, "burst_players": 10.0, "burst_receipts": 9.0, "lost": 0.0}
    verdicts = _verdicts({"redis": {10: {"partyquiz-redis": [short]}}})
    assert verdicts["T1 10 answers, 2 replicas + Redis: none lost or double-counted"][1] is False


def test_a_drain_is_met_only_when_everyone_resumed_in_time_with_their_score() -> None:
    fast: Metrics = {"run": 0.0, "drain_players": 5.0, "drain_resumed": 5.0}
    fast |= {"drain_missing": 0.0, "drain_scores_wrong": 0.0, "drain_last_resume_ms": 900.0}
    wrong = {**fast, "run": 1.0, "drain_scores_wrong": 1.0}
    verdicts = _verdicts({"drain": {5: {"partyquiz-redis": [fast, wrong]}}})
    assert verdicts["T7 a replica with 5 players drains: the last player resumed within 10 s"][1]
    measured, met = verdicts[
        "T7 a replica with 5 players drains: every player resumed, scores intact"
    ]
    assert (measured, met) == ("worst of 2 runs: 5 of 5 resumed, 1 with a wrong score", False)


def test_late_sends_are_judged_on_the_worst_session_of_every_scenario() -> None:
    results: Results = {
        "game": {1: {"partyquiz": _runs("late_send_share", 0.0, 0.002)}},
        "redis": {1: {"partyquiz-redis": _runs("late_send_share", 0.02)}},
    }
    (late,) = [v for v in check_targets(results) if v.target.startswith("Load generator")]
    assert late.met is False
    assert late.measured == "worst session 2.00% (median 0.20%, 3 sessions)"


def test_the_scale_out_compares_twice_the_players_on_two_replicas_with_one() -> None:
    results: Results = {
        "scaleout": {
            10_000: {
                "partyquiz-redis-1": _runs("fanout_p99_ms", 100.0, 100.0),
                "partyquiz-redis-2x": _runs("fanout_p99_ms", 90.0, 120.0),
            }
        }
    }
    measured, met = _verdicts(results)[
        "T5 20,000 players on 2 replicas: question fan-out p99 ≤ 1.0x 10,000 players on 1 replica"
    ]
    assert (measured, met) == ("1.05x (0.90x to 1.20x over 2 runs)", False)
