"""B5 figures: where apply -> Ready time goes, and the rendered Operator section."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.operator_bench import stage_medians
from bench.render import render_operator

APPLIED = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def _pq(**seconds: int) -> dict[str, object]:
    return {
        "status": {
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": f"2026-01-01T12:00:{s:02d}Z"}
                for t, s in seconds.items()
            ]
            + [
                {
                    "type": "Degraded",
                    "status": "False",
                    "lastTransitionTime": "2026-01-01T12:00:59Z",
                }
            ]
        }
    }


def test_stage_medians_measure_from_the_apply_to_each_true_condition() -> None:
    items = [_pq(DatabaseReady=4, Ready=10), _pq(DatabaseReady=6, Ready=20), _pq(Ready=30)]
    assert stage_medians(items, APPLIED) == {"DatabaseReady": 5.0, "Ready": 20.0}


def test_conditions_that_are_not_true_are_not_stages() -> None:
    pending = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T12:00:01Z"}
            ]
        }
    }
    assert stage_medians([pending, {}], APPLIED) == {}


def test_operator_section_shows_counts_latencies_and_writes() -> None:
    body = render_operator(
        "2026-01-01 12:00 UTC",
        {"cores": "2", "cpu": "EPYC", "ram": "24 GiB"},
        [
            {
                "count": 10,
                "ready": 10,
                "apply_call_s": 0.4,
                "ready_p50_s": 1.5,
                "ready_p99_s": 3.0,
                "ready_max_s": 3.1,
                "resync_passes": 21.0,
                "resync_writes": 0.0,
                "kib_per_object": 120.5,
                "stages_p50_s": {"Ready": 1.0},
            }
        ],
        5.0,
    )
    assert "|                10 |    10 |             0.4 |                 1.5 |   3.0 |" in body
    assert "5 s resync" in body
    assert "| Ready p50 s |" in body
