"""The metric catalogue: names, zero-initialised series and per-instance gauges that agree with
what `kubectl get pq` shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from partyquiz_operator import api
from partyquiz_operator.metrics import (
    MIGRATION_RESULTS,
    RECONCILE_HANDLERS,
    RECONCILE_RESULTS,
    ROLLOUT_COMPONENTS,
    ROLLOUT_RESULTS,
    OperatorMetrics,
)
from partyquiz_operator.plan import status
from partyquiz_web.metrics import WebMetrics
from partyquiz_ws.metrics import WsMetrics

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def sample(metrics: OperatorMetrics, metric: str, **labels: str) -> float | None:
    value = metrics.registry.get_sample_value(metric, labels)
    return None if value is None else float(value)


def test_operator_counters_exist_at_zero_before_any_reconcile() -> None:
    metrics = OperatorMetrics()
    for handler in RECONCILE_HANDLERS:
        for result in RECONCILE_RESULTS:
            assert (
                sample(
                    metrics, "partyquiz_operator_reconcile_total", handler=handler, result=result
                )
                == 0
            )
    for result in MIGRATION_RESULTS:
        assert sample(metrics, "partyquiz_operator_migrations_total", result=result) == 0
    for component in ROLLOUT_COMPONENTS:
        for result in ROLLOUT_RESULTS:
            labels = {"component": component, "result": result}
            assert sample(metrics, "partyquiz_operator_rollouts_total", **labels) == 0


def test_instance_gauges_follow_phase_and_generation_and_go_on_delete() -> None:
    metrics = OperatorMetrics()
    metrics.record_generation_seen("games", "quiz", 4)
    metrics.record_instance("games", "quiz", "RollingOut", observed_generation=3)
    assert (
        sample(metrics, "partyquiz_operator_instance_generation", namespace="games", name="quiz")
        == 4
    )
    observed = {"namespace": "games", "name": "quiz"}
    assert sample(metrics, "partyquiz_operator_instance_observed_generation", **observed) == 3
    phases = {
        phase: sample(metrics, "partyquiz_operator_instance_phase", phase=phase, **observed)
        for phase in api.PHASES
    }
    assert phases == {phase: (1.0 if phase == "RollingOut" else 0.0) for phase in api.PHASES}

    metrics.forget_instance("games", "quiz")
    for name in (
        "partyquiz_operator_instance_generation",
        "partyquiz_operator_instance_observed_generation",
        "partyquiz_operator_instance_ready",
    ):
        assert sample(metrics, name, **observed) is None
    assert (
        sample(metrics, "partyquiz_operator_instance_phase", phase="RollingOut", **observed) is None
    )


def test_instance_ready_gauge_agrees_with_the_ready_condition() -> None:
    done = status.WorkloadState(
        exists=True, desired=1, ready=1, updated=1, available=1, generation_observed=True
    )
    half = status.WorkloadState(
        exists=True, desired=2, ready=1, updated=1, available=1, generation_observed=True
    )
    cases: dict[str, dict[str, Any]] = {
        "ready": {"migration": "Complete"},
        "rolling": {"migration": "Complete", "web": half},
        "migrating": {"migration": "Running"},
        "failed": {"migration": "Failed"},
    }
    metrics = OperatorMetrics()
    for name, overrides in cases.items():
        fields: dict[str, Any] = {"web": done, "ws": done, **overrides}
        observation = status.Observation(
            generation=1, target_revision="r1", version="1.4.0", database=done, redis=done, **fields
        )
        reported = status.compute_status(
            observation, api.PartyQuizStatus(), now=NOW, database_name="db", redis_name="cache"
        )
        metrics.record_instance("games", name, reported.phase, reported.observed_generation)
        ready = next(c for c in reported.conditions if c.type == "Ready")
        gauge = sample(metrics, "partyquiz_operator_instance_ready", namespace="games", name=name)
        assert gauge == (1.0 if ready.status == "True" else 0.0), (name, reported.phase)
    assert (
        sample(metrics, "partyquiz_operator_instance_ready", namespace="games", name="ready") == 1
    )


def test_every_service_exposes_process_metrics_for_the_resources_row() -> None:
    for registry in (OperatorMetrics().registry, WebMetrics().registry, WsMetrics().registry):
        names = {metric.name for metric in registry.collect()}
        assert {"process_cpu_seconds", "process_resident_memory_bytes"} <= names


def test_answer_results_exist_at_zero_before_the_first_answer() -> None:
    registry = WsMetrics().registry
    for result in ("accepted", "late", "duplicate", "invalid"):
        assert registry.get_sample_value("partyquiz_ws_answers_total", {"result": result}) == 0


def test_handshake_and_command_results_exist_at_zero() -> None:
    registry = WsMetrics().registry
    for result in ("accepted", "rejected_origin", "draining"):
        labels = {"result": result}
        assert registry.get_sample_value("partyquiz_ws_connections_opened_total", labels) == 0
    for result in ("ok", "rejected"):
        labels = {"result": result}
        assert registry.get_sample_value("partyquiz_ws_commands_applied_total", labels) == 0


def test_the_operations_guide_lists_every_metric_with_its_labels() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "operations.md").read_text()
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| \w+ \| `(\w+)` \| \w+ \| ([^|]*) \|$", doc, re.MULTILINE)
    }
    collectors = [
        c
        for owner in (OperatorMetrics(), WebMetrics(), WsMetrics())
        for c in vars(owner).values()
        if isinstance(c, MetricWrapperBase)
    ]
    assert len(collectors) == len(rows)
    for collector in collectors:
        described = next(iter(collector.describe()))
        name = f"{described.name}_total" if described.type == "counter" else described.name
        assert name in rows, f"docs/operations.md does not list {name}"
        listed = {part.split(" (")[0].strip() for part in rows[name].split(",")} - {"—"}
        assert set(collector._labelnames) == listed, name
