"""B6 figures: rollback, upgrade Ready and retry reaction times from one run's watch events,
and the worst-run verdicts against the fail-fast targets."""

from __future__ import annotations

from typing import Any

import pytest
from bench.operator_failfast import (
    Event,
    RetryTiming,
    RunFigures,
    UpgradeTiming,
    check_failfast_targets,
    crash_loop_to_rollback,
    render_failfast,
    retry_reaction,
    upgrade_to_ready,
    worst_run,
)
from bench.stats import Spread

INSTANCE = "quiz-0"
MACHINE = {"cores": "2", "cpu": "AMD EPYC", "ram": "23.5 GiB", "revision": "abc1234"}


def _pq(
    *,
    generation: int = 2,
    phase: str = "Progressing",
    current: str = "old",
    conditions: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    retry: str | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": INSTANCE, "generation": generation, "annotations": annotations or {}},
        "status": {
            "observedGeneration": generation,
            "phase": phase,
            "revisions": {"current": current},
            "conditions": conditions or [],
            "retry": retry,
        },
    }


def _child(name: str, component: str, **extra: Any) -> dict[str, Any]:
    meta = {
        "name": name,
        "labels": {
            "app.kubernetes.io/instance": INSTANCE,
            "app.kubernetes.io/component": component,
        },
        **extra.pop("meta", {}),
    }
    return {"metadata": meta, **extra}


def _pod(
    name: str,
    component: str,
    *,
    revision: str,
    ready_at: str | None = None,
    waiting: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": [], "containerStatuses": []}
    if ready_at is not None:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]
    if waiting is not None:
        status["containerStatuses"] = [
            {"name": component, "state": {"waiting": {"reason": waiting}}}
        ]
    return _child(
        name, component, meta={"annotations": {"partyquiz.dev/revision": revision}}, status=status
    )


def _deployment(component: str, *, revision: str, available: int) -> dict[str, Any]:
    return _child(
        f"{INSTANCE}-{component}",
        component,
        meta={"generation": 3, "annotations": {"partyquiz.dev/revision": revision}},
        spec={"replicas": 1},
        status={
            "observedGeneration": 3,
            "replicas": 1,
            "updatedReplicas": 1,
            "availableReplicas": available,
        },
    )


def test_rollback_is_timed_from_the_first_crash_looping_pod_to_the_rolled_back_status() -> None:
    rolled_back = {"type": "Degraded", "status": "True", "reason": "RolledBack"}
    events: list[Event] = [
        (10.0, "pods", "ADDED", _pod("web-a", "web", revision="new")),
        (
            11.0,
            "pods",
            "MODIFIED",
            _pod("web-a", "web", revision="new", waiting="ContainerCreating"),
        ),
        (
            12.0,
            "pods",
            "MODIFIED",
            _pod("web-a", "web", revision="new", waiting="CrashLoopBackOff"),
        ),
        (12.5, "pods", "MODIFIED", _pod("ws-a", "ws", revision="new", waiting="CrashLoopBackOff")),
        (
            13.0,
            "partyquizzes",
            "MODIFIED",
            _pq(
                phase="Degraded",
                conditions=[{"type": "Degraded", "status": "True", "reason": "MigrationFailed"}],
            ),
        ),
        (15.25, "partyquizzes", "MODIFIED", _pq(phase="Degraded", conditions=[rolled_back])),
        (16.0, "partyquizzes", "MODIFIED", _pq(phase="Degraded", conditions=[rolled_back])),
    ]

    assert crash_loop_to_rollback(events, INSTANCE) == pytest.approx(3.25)
    assert crash_loop_to_rollback(events[:5], INSTANCE) is None
    assert crash_loop_to_rollback(events, "another-quiz") is None
    # A rollback shown before any pod crash-looped is not hidden behind a later event.
    early = [(11.5, "partyquizzes", "MODIFIED", events[-1][3]), *events]
    assert crash_loop_to_rollback(early, INSTANCE) == pytest.approx(-0.5)


def test_upgrade_ready_is_timed_from_the_last_new_pod_and_from_both_deployments() -> None:
    ready = [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-06T07:00:05Z"}]
    events: list[Event] = [
        # An old pod turning Ready again does not count: only the new revision's pods do.
        (
            19.0,
            "pods",
            "MODIFIED",
            _pod("web-old", "web", revision="old", ready_at="2026-12-06T07:00:09Z"),
        ),
        (
            20.0,
            "pods",
            "MODIFIED",
            _pod("web-new", "web", revision="new", ready_at="2026-12-06T07:00:02Z"),
        ),
        (
            21.0,
            "pods",
            "MODIFIED",
            _pod("ws-new", "ws", revision="new", ready_at="2026-12-06T07:00:03Z"),
        ),
        (
            21.5,
            "pods",
            "MODIFIED",
            _pod("ws-new", "ws", revision="new", ready_at="2026-12-06T07:00:03Z"),
        ),
        (21.2, "deployments", "MODIFIED", _deployment("web", revision="new", available=1)),
        (21.4, "deployments", "MODIFIED", _deployment("ws", revision="new", available=0)),
        (22.0, "deployments", "MODIFIED", _deployment("ws", revision="new", available=1)),
        (22.5, "partyquizzes", "MODIFIED", _pq(phase="Ready", current="old", conditions=ready)),
        (23.5, "partyquizzes", "MODIFIED", _pq(phase="Ready", current="new", conditions=ready)),
    ]

    timing = upgrade_to_ready(events, INSTANCE, "old")

    assert timing == UpgradeTiming(
        pods_to_ready_s=pytest.approx(2.5),
        deployments_to_ready_s=pytest.approx(1.5),
        server_pods_to_ready_s=pytest.approx(2.0),
    )
    assert upgrade_to_ready(events[:-1], INSTANCE, "old") is None


def test_retry_reaction_is_the_first_of_the_status_recording_it_and_the_job_deleted() -> None:
    annotated = {"partyquiz.dev/retry": "r1"}
    job = _child(f"{INSTANCE}-migrate", "migration")
    events: list[Event] = [
        (5.0, "partyquizzes", "MODIFIED", _pq(phase="Degraded")),
        (7.0, "partyquizzes", "MODIFIED", _pq(phase="Degraded", annotations=annotated)),
        (
            7.3,
            "jobs",
            "MODIFIED",
            {**job, "metadata": {**job["metadata"], "deletionTimestamp": "now"}},
        ),
        (
            7.4,
            "partyquizzes",
            "MODIFIED",
            _pq(phase="Progressing", annotations=annotated, retry="r1"),
        ),
    ]

    assert retry_reaction(events, INSTANCE, "r1", called=6.5) == RetryTiming(
        pytest.approx(0.3), pytest.approx(0.8), "failed migration Job deleted"
    )
    without_job = [e for e in events if e[1] != "jobs"]
    assert retry_reaction(without_job, INSTANCE, "r1", called=6.5) == RetryTiming(
        pytest.approx(0.4), pytest.approx(0.9), "status.retry"
    )
    assert retry_reaction(events, INSTANCE, "r2", called=6.5) is None


@pytest.mark.parametrize(
    ("spread", "runs", "met", "text"),
    [
        (Spread(1.0, 0.5, 4.9, 5), 5, True, "met (worst 4.90 s ≤ 5 s)"),
        (Spread(1.0, 0.5, 6.25, 5), 5, False, "MISSED by 1.25 s (worst 6.25 s)"),
        (Spread(1.0, 0.5, 1.5, 4), 5, False, "MISSED: 1 of 5 runs never showed it"),
        (None, 5, None, "not measured"),
    ],
)
def test_the_verdict_is_the_worst_run_against_the_target(
    spread: Spread | None, runs: int, met: bool | None, text: str
) -> None:
    assert worst_run(spread, runs, 5.0) == (met, text)


def _runs() -> list[RunFigures]:
    return [
        RunFigures(
            rollback_s=rollback,
            upgrade=UpgradeTiming(ready, ready + 0.1, 1.0),
            retry=RetryTiming(0.2, 0.6, "status.retry"),
            load=3.0,
        )
        for rollback, ready in ((1.0, 0.5), (2.0, 0.7), (7.5, 0.6), (1.5, 2.4), (1.2, 0.4))
    ]


def test_targets_judge_the_slowest_run_not_the_median() -> None:
    verdicts = check_failfast_targets(_runs())

    assert [(v.target.split(":")[0], v.met) for v in verdicts] == [
        ("B6 first pod in CrashLoopBackOff → status RolledBack", False),
        ("B6 upgrade", False),
    ]
    assert verdicts[0].measured == "1.50 s (1.00 to 7.50 over 5 runs)"


def test_the_section_shows_median_range_verdict_and_load() -> None:
    body = render_failfast("2026-12-06 07:00 UTC", MACHINE, _runs(), (2.5, 4.0))

    assert "revision abc1234 by `python -m bench --scenarios failfast --runs 5`" in body
    assert "load average 2.5 at the start and 4.0 at the end" in body
    rows = {
        cells[0]: cells[1:]
        for line in body.splitlines()
        if line.startswith("| ")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert rows["first pod in CrashLoopBackOff → status RolledBack"] == [
        "5",
        "5",
        "1.50",
        "1.00\u20137.50",
        "MISSED by 2.50 s (worst 7.50 s)",
    ]
    assert rows["upgrade: last new web/ws pod Ready → status Ready"] == [
        "2",
        "5",
        "0.60",
        "0.40\u20132.40",
        "MISSED by 0.40 s (worst 2.40 s)",
    ]
    assert rows["retry annotation in the API → first reaction"][-1] == "no target"
