"""B5 figures: the operator's part and Kubernetes' part of apply -> Ready, and the section."""

from __future__ import annotations

from typing import Any

import pytest
from bench.operator_bench import STEPS, NamespaceWatch, critical_path, states_of
from bench.render import render_operator


def _child(kind: str, component: str, name: str, **status: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": 1} if kind != "jobs" else {}
    return {
        "metadata": {
            "name": name,
            "generation": 1,
            "labels": {
                "app.kubernetes.io/instance": "quiz-0",
                "app.kubernetes.io/component": component,
            },
        },
        "spec": spec,
        "status": status,
    }


def _feed(watch: NamespaceWatch, at: float, plural: str, obj: dict[str, Any]) -> None:
    watch.record(plural, {"type": "MODIFIED", "object": obj}, at)


def _one_object_watched() -> NamespaceWatch:
    """quiz-0 applied at 100.0, created at 100.1: 0.4 s operator, 2 s PostgreSQL, ..."""
    watch = NamespaceWatch(None, "ns", seconds=60)
    ready_deploy = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1}
    steps = [
        (100.4, "statefulsets", _child("statefulsets", "cache", "quiz-0-redis")),
        (100.5, "statefulsets", _child("statefulsets", "database", "quiz-0-postgres")),
        (101.0, "statefulsets", _child("statefulsets", "cache", "quiz-0-redis", readyReplicas=1)),
        (
            102.5,
            "statefulsets",
            _child("statefulsets", "database", "quiz-0-postgres", readyReplicas=1),
        ),
        (102.75, "jobs", _child("jobs", "migration", "quiz-0-migrate")),
        (
            104.75,
            "jobs",
            _child(
                "jobs",
                "migration",
                "quiz-0-migrate",
                conditions=[{"type": "Complete", "status": "True"}],
            ),
        ),
        (105.0, "deployments", _child("deployments", "web", "quiz-0-web")),
        (105.25, "deployments", _child("deployments", "ws", "quiz-0-ws")),
        (
            107.0,
            "deployments",
            _child("deployments", "web", "quiz-0-web", **ready_deploy, availableReplicas=1),
        ),
        (
            107.25,
            "deployments",
            _child("deployments", "ws", "quiz-0-ws", **ready_deploy, availableReplicas=1),
        ),
    ]
    created = {"metadata": {"name": "quiz-0", "generation": 1}}
    _feed(watch, 100.1, "partyquizzes", created)
    for at, plural, obj in steps:
        _feed(watch, at, plural, obj)
    ready = {
        "metadata": {"name": "quiz-0", "generation": 2},
        "status": {"phase": "Ready", "observedGeneration": 2},
    }
    _feed(watch, 107.5, "partyquizzes", ready)
    return watch


def test_the_critical_path_splits_into_operator_and_kubernetes_steps() -> None:
    path = critical_path(_one_object_watched(), "quiz-0", 100.0)
    assert path == pytest.approx([0.1, 0.4, 2.0, 0.25, 2.0, 0.5, 2.0, 0.25])
    own = sum(s for (_, who, *_), s in zip(STEPS, path or [], strict=True) if who == "operator")
    assert own == pytest.approx(1.4)


def test_an_object_not_yet_ready_has_no_critical_path() -> None:
    watch = NamespaceWatch(None, "ns", seconds=60)
    _feed(watch, 1.0, "statefulsets", _child("statefulsets", "database", "quiz-0-postgres"))
    assert critical_path(watch, "quiz-0", 0.0) is None


def test_a_status_for_an_older_generation_is_not_ready() -> None:
    stale = {
        "metadata": {"name": "quiz-0", "generation": 3},
        "status": {"phase": "Ready", "observedGeneration": 2},
    }
    assert states_of("partyquizzes", stale) == ["created"]


def test_a_deployment_with_old_replicas_left_is_not_available() -> None:
    rolling = _child(
        "deployments",
        "web",
        "quiz-0-web",
        observedGeneration=1,
        replicas=2,
        updatedReplicas=1,
        availableReplicas=2,
    )
    assert states_of("deployments", rolling) == ["created"]


def test_only_the_first_time_a_state_is_reached_counts() -> None:
    watch = _one_object_watched()
    late = {
        "metadata": {"name": "quiz-0", "generation": 2},
        "status": {"phase": "Ready", "observedGeneration": 2},
    }
    _feed(watch, 200.0, "partyquizzes", late)
    assert watch.ready_times(["quiz-0"], 100.0) == {"quiz-0": pytest.approx(7.5)}


def test_operator_section_shows_both_latencies_the_steps_and_writes() -> None:
    body = render_operator(
        "2026-01-01 12:00 UTC",
        {"cores": "2", "cpu": "EPYC", "ram": "24 GiB"},
        [
            {
                "count": 10,
                "ready": 10,
                "apply_call_s": 0.4,
                "ready_p50_s": 7.5,
                "ready_p99_s": 9.0,
                "ready_max_s": 9.1,
                "operator_p50_s": 1.5,
                "operator_p99_s": 2.5,
                "kubernetes_p50_s": 6.0,
                "resync_passes": 21.0,
                "resync_writes": 0.0,
                "kib_per_object": 120.5,
                "steps_p50_s": {label: 1.0 for label, *_ in STEPS},
                "pod_start_p50_s": 1.25,
                "load_start": 0.42,
                "load_end": 3.5,
            }
        ],
        5.0,
    )
    assert "at each count's apply / after its steady-state count: 10 objects 0.4 / 3.5." in body
    rows = [line.split("|")[1:-1] for line in body.splitlines() if line.startswith("|")]
    figures = next(r for r in rows if r[0].strip() == "10")
    assert [cell.strip() for cell in figures[3:8]] == ["7.5", "9.0", "1.5", "2.5", "6.0"]
    assert "operator's part (excluding pod start) p50 s" in body
    assert "→ Job complete p50 s" in body
    assert "1.25 s (10 objects)" in body
    assert "5 s resync" in body
