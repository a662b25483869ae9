"""Prometheus metrics of the operator: every metric name lives here and nowhere else.

Owns the collectors (on a private registry, so tests get a fresh set) and the ``/metrics``
HTTP server. Labels never carry unbounded values other than instance names.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from partyquiz_operator import api


class OperatorMetrics:
    """The operator's collectors, registered on their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconcile_total = Counter(
            "partyquiz_operator_reconcile_total",
            "Reconcile passes by handler and result (ok, temporary_error, permanent_error).",
            ["handler", "result"],
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "partyquiz_operator_reconcile_duration_seconds",
            "Wall-clock duration of one reconcile pass.",
            ["handler"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.kube_api_requests = Counter(
            "partyquiz_operator_kube_api_requests_total",
            "Kubernetes API requests made by the reconciler, by verb, resource and HTTP code.",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        self.managed_instances = Gauge(
            "partyquiz_operator_managed_instances",
            "PartyQuiz instances this operator manages, by phase.",
            ["phase"],
            registry=self.registry,
        )
        self.instance_ready = Gauge(
            "partyquiz_operator_instance_ready",
            "1 when the PartyQuiz's Ready condition is True, else 0.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.migrations_total = Counter(
            "partyquiz_operator_migrations_total",
            "Migration Jobs finished, by result (succeeded, failed).",
            ["result"],
            registry=self.registry,
        )
        self.rollouts_total = Counter(
            "partyquiz_operator_rollouts_total",
            "Rollouts finished, by component and result (succeeded, failed, rolled_back).",
            ["component", "result"],
            registry=self.registry,
        )
        for phase in api.PHASES:
            self.managed_instances.labels(phase=phase).set(0)
        self._phases: dict[tuple[str, str], str] = {}

    def record_instance(self, namespace: str, name: str, phase: str) -> None:
        """Record an instance's phase and readiness."""
        self._phases[(namespace, name)] = phase
        self.instance_ready.labels(namespace=namespace, name=name).set(1 if phase == "Ready" else 0)
        self._refresh_phases()

    def forget_instance(self, namespace: str, name: str) -> None:
        """Drop a deleted instance from every per-instance series."""
        self._phases.pop((namespace, name), None)
        with contextlib.suppress(KeyError):
            self.instance_ready.remove(namespace, name)
        self._refresh_phases()

    def instance_count(self) -> int:
        """Return how many instances have been seen and not deleted."""
        return len(self._phases)

    def _refresh_phases(self) -> None:
        counts: dict[str, int] = dict.fromkeys(api.PHASES, 0)
        for phase in self._phases.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            self.managed_instances.labels(phase=phase).set(count)

    def write_count(self) -> float:
        """Return how many mutating API requests were made so far (for tests and debugging)."""
        return sum(
            float(sample.value)
            for metric in self.kube_api_requests.collect()
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels.get("verb") in _WRITE_VERBS
        )

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - pods listen on all
        """Serve ``/metrics`` on ``port`` in a background thread."""
        start_http_server(port, addr=addr, registry=self.registry)


_WRITE_VERBS: frozenset[str | None] = frozenset({"apply", "create", "patch", "update", "delete"})
