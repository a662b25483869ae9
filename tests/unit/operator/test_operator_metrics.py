"""Operator metrics: per-instance series follow instances and go with them."""

from __future__ import annotations

from partyquiz_operator.metrics import OperatorMetrics


def value(metrics: OperatorMetrics, metric: str, **labels: str) -> float | None:
    result = metrics.registry.get_sample_value(metric, labels)
    return None if result is None else float(result)


def test_instances_are_counted_by_phase_and_forgotten_on_delete() -> None:
    metrics = OperatorMetrics()
    metrics.record_instance("a", "q1", "Ready")
    metrics.record_instance("a", "q2", "Provisioning")
    metrics.record_instance("a", "q2", "Ready")
    assert value(metrics, "partyquiz_operator_managed_instances", phase="Ready") == 2
    assert value(metrics, "partyquiz_operator_managed_instances", phase="Provisioning") == 0
    assert value(metrics, "partyquiz_operator_instance_ready", namespace="a", name="q1") == 1
    metrics.forget_instance("a", "q1")
    assert value(metrics, "partyquiz_operator_instance_ready", namespace="a", name="q1") is None
    assert value(metrics, "partyquiz_operator_managed_instances", phase="Ready") == 1
    metrics.forget_instance("a", "never-seen")
