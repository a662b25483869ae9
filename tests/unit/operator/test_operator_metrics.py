"""Operator metrics: per-instance series follow instances; writes are counted by verb."""

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


def test_write_count_sums_only_mutating_verbs() -> None:
    metrics = OperatorMetrics()
    metrics.kube_api_requests.labels("get", "services", "200").inc(5)
    metrics.kube_api_requests.labels("apply", "services", "200").inc(2)
    metrics.kube_api_requests.labels("delete", "jobs", "200").inc()
    assert metrics.write_count() == 3
