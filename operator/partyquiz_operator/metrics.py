"""Prometheus metrics of the operator: every metric name lives here and nowhere else.

Owns the collectors (on a private registry, so tests get a fresh set); ``handlers`` serves
them. Labels never carry unbounded values other than instance names.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from partyquiz_operator import api

# Label values known up front, so every series exists (at zero) from the first scrape.
# changed: kopf (create, update, resume); child: a child changed; retry: after a failed
# pass's delay; resync: the periodic pass; delete: the clean-up of a deleted instance.
RECONCILE_HANDLERS = ("changed", "child", "retry", "resync", "delete")
RECONCILE_RESULTS = ("ok", "temporary_error", "permanent_error")
MIGRATION_RESULTS = ("succeeded", "failed")
ROLLOUT_COMPONENTS = ("web", "ws")
ROLLOUT_RESULTS = ("succeeded", "failed", "rolled_back")


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
        self.instance_phase = Gauge(
            "partyquiz_operator_instance_phase",
            "1 for the PartyQuiz's current status.phase, 0 for every other phase.",
            ["namespace", "name", "phase"],
            registry=self.registry,
        )
        self.instance_generation = Gauge(
            "partyquiz_operator_instance_generation",
            "metadata.generation of the PartyQuiz when a reconcile pass started.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.instance_observed_generation = Gauge(
            "partyquiz_operator_instance_observed_generation",
            "status.observedGeneration the operator last reported for the PartyQuiz.",
            ["namespace", "name"],
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        for phase in api.PHASES:
            self.managed_instances.labels(phase=phase).set(0)
        for handler in RECONCILE_HANDLERS:
            self.reconcile_duration.labels(handler)
            for result in RECONCILE_RESULTS:
                self.reconcile_total.labels(handler, result)
        for result in MIGRATION_RESULTS:
            self.migrations_total.labels(result)
        for component in ROLLOUT_COMPONENTS:
            for result in ROLLOUT_RESULTS:
                self.rollouts_total.labels(component, result)
        self._phases: dict[tuple[str, str], str] = {}

    def record_instance(
        self, namespace: str, name: str, phase: str, observed_generation: int | None = None
    ) -> None:
        """Record an instance's phase, readiness and (when known) reported generation."""
        self._phases[(namespace, name)] = phase
        self.instance_ready.labels(namespace=namespace, name=name).set(1 if phase == "Ready" else 0)
        for each in api.PHASES:
            self.instance_phase.labels(namespace, name, each).set(1 if each == phase else 0)
        if observed_generation is not None:
            self.instance_observed_generation.labels(namespace, name).set(observed_generation)
        self._refresh_phases()

    def record_generation_seen(self, namespace: str, name: str, generation: int) -> None:
        """Record the generation a reconcile pass is about to work on."""
        self.instance_generation.labels(namespace, name).set(generation)

    def forget_instance(self, namespace: str, name: str) -> None:
        """Drop a deleted instance from every per-instance series."""
        self._phases.pop((namespace, name), None)
        with contextlib.suppress(KeyError):
            self.instance_ready.remove(namespace, name)
        for gauge in (self.instance_generation, self.instance_observed_generation):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)
        for phase in api.PHASES:
            with contextlib.suppress(KeyError):
                self.instance_phase.remove(namespace, name, phase)
        self._refresh_phases()

    def _refresh_phases(self) -> None:
        counts: dict[str, int] = dict.fromkeys(api.PHASES, 0)
        for phase in self._phases.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            self.managed_instances.labels(phase=phase).set(count)
