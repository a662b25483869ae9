"""Turning raw load-generator results into report figures, and checking issue 10's targets."""

from __future__ import annotations

from typing import Any

import pytest
from bench.summary import (
    Metrics,
    aggregate,
    check_targets,
    split_by_replica,
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
        "ramp": {
            "rss_before_kib": 1000,
            "rss_after_kib": 1040,
            "loadgen_util": 0.2,
            "connect_latencies_ms": [1.0, 2.0, 3.0, 4.0],
        },
        "fanouts": [
            _fanout(100.0, [50.0, 50.0, 50.0, 50.0], warmup=True),
            _fanout(2.0, [1.0, 2.0, 3.0, 4.0]),
            _fanout(4.0, [2.0, 3.0, 4.0, 5.0]),
        ],
        "burst": {
            "players": 4,
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


def test_frames_per_cpu_second_divide_receipts_by_server_cpu_time() -> None:
    m = summarize_session(_raw())
    assert m["frames_per_cpu_s"] == pytest.approx((4 / 0.002 + 4 / 0.004) / 2)


def test_players_who_missed_a_fan_out_count_as_an_incomplete_fan_out() -> None:
    raw = _raw(fanouts=[_fanout(2.0, [1.0, None, 3.0, 4.0])])
    m = summarize_session(raw)
    assert m["incomplete_fanouts"] == 1.0
    assert m["fanout_last_ms"] == 4.0


def test_burst_figures_are_carried_over() -> None:
    m = summarize_session(_raw())
    assert m["receipt_p50_ms"] == 1.5
    assert m["lost"] == 0.0
    assert m["deadline_to_leaderboard_ms"] == 45.0
    assert m["deadline_to_leaderboard_max_ms"] == 45.0


def test_a_session_without_a_burst_has_no_burst_figures() -> None:
    m = summarize_session(_raw(burst=None))
    assert "lost" not in m
    assert m["fanout_cpu_ms"] == 3.0


def test_an_aborted_load_generator_is_an_error_not_a_figure() -> None:
    with pytest.raises(ValueError, match="aborted: time limit"):
        summarize_session({"aborted": "time limit"})


def test_publish_counts_per_broadcast_keep_the_worst_fan_out() -> None:
    raw = _raw(
        fanouts=[
            _fanout(1.0, [1.0], publish=1),
            _fanout(1.0, [1.0], publish=2),
            _fanout(1.0, [1.0], publish=1),
        ]
    )
    m = summarize_session(raw)
    assert m["publish_per_broadcast"] == 1.0
    assert m["publish_per_broadcast_max"] == 2


def test_split_by_replica_separates_alternating_players() -> None:
    raw = _raw(fanouts=[_fanout(1.0, [1.0, 10.0, 3.0, 12.0, 5.0, 14.0])])
    local, remote = split_by_replica(raw, 2)
    assert local["p50_ms"] == 3.0
    assert remote["p50_ms"] == 12.0


def test_aggregate_takes_medians_but_the_worst_run_for_correctness() -> None:
    runs: list[Metrics] = [
        {"fanout_cpu_ms": 1.0, "lost": 0.0},
        {"fanout_cpu_ms": 5.0, "lost": 2.0},
        {"fanout_cpu_ms": 3.0, "lost": 0.0},
    ]
    assert aggregate(runs) == {"runs": 3.0, "fanout_cpu_ms": 3.0, "lost": 2.0}
    spread: list[Metrics] = [
        {"deadline_to_leaderboard_ms": v, "deadline_to_leaderboard_max_ms": v}
        for v in (370.0, 512.0, 341.0)
    ]
    assert aggregate(spread) == {
        "runs": 3.0,
        "deadline_to_leaderboard_ms": 370.0,
        "deadline_to_leaderboard_max_ms": 512.0,
    }


def test_aggregate_reports_none_for_a_figure_no_run_measured() -> None:
    assert aggregate([{"receipt_p50_ms": None}])["receipt_p50_ms"] is None


def _by_size(pq_cpu: float, sio_cpu: float, floor_cpu: float) -> dict[int, dict[str, Metrics]]:
    pq: Metrics = {
        "fanout_cpu_ms": pq_cpu,
        "kib_per_connection": 12.0,
        "lost": 0.0,
        "double_counted": 0.0,
        "burst_receipts": 10.0,
        "burst_players": 10.0,
        "deadline_to_leaderboard_ms": 600.0,
        "fanout_p99_ms": 250.0,
    }
    return {
        10_000: {
            "partyquiz": pq,
            "socketio": {"fanout_cpu_ms": sio_cpu},
            "raw": {"fanout_cpu_ms": floor_cpu},
        }
    }


def test_targets_report_met_and_missed_with_the_measured_ratio() -> None:
    verdicts = {v.target: v for v in check_targets(_by_size(90.0, 100.0, 50.0))}
    sio = verdicts["B2 10,000 players: CPU per fan-out ≤ 1.0x Node Socket.IO"]
    assert (sio.measured, sio.met) == ("0.90x", True)
    floor = verdicts["B2 10,000 players: CPU per fan-out ≤ 1.5x raw floor"]
    assert (floor.measured, floor.met) == ("1.80x", False)
    assert verdicts["B1 10,000 players: ≤ 16 KiB per idle connection"].met is True
    assert verdicts["B3 10,000 players: leaderboard at last player ≤ 500 ms"].met is False
    assert verdicts["B2 10,000 players: host → last player p99 ≤ 300 ms"].met is True


def test_a_target_without_a_peer_measurement_is_not_measured_rather_than_met() -> None:
    by_size = _by_size(90.0, 100.0, 50.0)
    del by_size[10_000]["socketio"]
    verdicts = {v.target: v for v in check_targets(by_size)}
    assert verdicts["B2 10,000 players: CPU per fan-out ≤ 1.0x Node Socket.IO"].met is None


def test_replica_targets_need_exactly_one_publish_and_at_most_5_ms_added() -> None:
    verdicts = check_targets({}, {1000: {"publish_per_broadcast_max": 2.0, "added_p50_ms": 1.5}})
    assert [(v.target, v.met) for v in verdicts] == [
        ("B4 1,000 players: exactly 1 PUBLISH per broadcast", False),
        ("B4 1,000 players: remote replica adds ≤ 5 ms p50", True),
    ]


def test_runs_are_grouped_by_size_and_server_and_failed_sessions_left_out() -> None:
    from bench.__main__ import summarize_runs

    records = [
        {"scenario": "game", "kind": "partyquiz", "size": 4, "run": 0, "raw": _raw()},
        {"scenario": "game", "kind": "partyquiz", "size": 4, "run": 1, "error": "boom"},
        {"scenario": "game", "kind": "ws", "size": 4, "run": 0, "raw": _raw(burst=None)},
        {
            "scenario": "replicas",
            "kind": "partyquiz-2",
            "size": 4,
            "run": 0,
            "raw": _raw(fanouts=[_fanout(1.0, [10.0, 13.0, 10.0, 13.0], publish=1)]),
        },
    ]
    by_size, replicas = summarize_runs(records)
    assert by_size[4]["partyquiz"]["runs"] == 1.0
    assert set(by_size[4]) == {"partyquiz", "ws"}
    assert replicas[4]["added_p50_ms"] == 3.0
    assert replicas[4]["publish_per_broadcast_max"] == 1
