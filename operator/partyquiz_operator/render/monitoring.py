"""Monitoring: the ServiceMonitor and PrometheusRule a PartyQuiz asks for, and their condition.

Owns the Prometheus Operator objects of one installation; the alerts themselves are defined
once in ``partyquiz_operator.monitoring``. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from partyquiz_operator.monitoring import (
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    Scope,
    instance_alerts,
)
from partyquiz_operator.render.common import (
    COMPONENT_WEB,
    COMPONENT_WS,
    Instance,
    Manifest,
    common_labels,
    owner_reference,
    selector_labels,
)

MONITORING_API_VERSION: Final = "monitoring.coreos.com/v1"
MONITORING_KINDS: Final = ("ServiceMonitor", "PrometheusRule")
COMPONENT_MONITORING: Final = "monitoring"
CONDITION_CRDS_MISSING: Final = "PrometheusOperatorCRDsMissing"


def _metadata(inst: Instance, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": inst.name,
        "namespace": inst.namespace,
        "labels": {**labels, **common_labels(inst, COMPONENT_MONITORING)},
        "ownerReferences": [owner_reference(inst)],
    }


def _relabelings() -> list[dict[str, Any]]:
    meta = "__meta_kubernetes_service_label_app_kubernetes_io_"
    return [
        {"action": "replace", "sourceLabels": [f"{meta}instance"], "targetLabel": INSTANCE_LABEL},
        {"action": "replace", "sourceLabels": [f"{meta}component"], "targetLabel": COMPONENT_LABEL},
    ]


def build_service_monitor(
    inst: Instance, *, interval: str = "30s", labels: Mapping[str, str] | None = None
) -> Manifest:
    """Return the ServiceMonitor scraping ``/metrics`` of the web and ws Services."""
    endpoints = [
        {"port": port, "path": "/metrics", "interval": interval, "relabelings": _relabelings()}
        for port in ("http", "ws")
    ]
    selector = selector_labels(inst, COMPONENT_WEB)
    selector.pop("app.kubernetes.io/component")
    components = {
        "key": "app.kubernetes.io/component",
        "operator": "In",
        "values": [COMPONENT_WEB, COMPONENT_WS],
    }
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": _metadata(inst, labels or {}),
        "spec": {
            "selector": {"matchLabels": selector, "matchExpressions": [components]},
            "namespaceSelector": {"matchNames": [inst.namespace]},
            "endpoints": endpoints,
        },
    }


def build_prometheus_rule(inst: Instance, *, labels: Mapping[str, str] | None = None) -> Manifest:
    """Return the PrometheusRule with the installation's alerts, scoped to it alone."""
    scope = Scope(namespace=inst.namespace, name=inst.name)
    group = {
        "name": f"partyquiz-{inst.namespace}-{inst.name}",
        "rules": [a.rule() for a in instance_alerts(scope)],
    }
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": _metadata(inst, labels or {}),
        "spec": {"groups": [group]},
    }


def build_monitoring_objects(inst: Instance) -> list[Manifest]:
    """Return the ServiceMonitor and PrometheusRule that ``spec.monitoring`` asks for."""
    wanted = inst.spec.monitoring
    objects = []
    if wanted.service_monitor.enabled:
        monitor = wanted.service_monitor
        objects.append(
            build_service_monitor(inst, interval=monitor.interval, labels=monitor.labels)
        )
    if wanted.prometheus_rule.enabled:
        objects.append(build_prometheus_rule(inst, labels=wanted.prometheus_rule.labels))
    return objects


def monitoring_condition(
    wanted_kinds: set[str], served_kinds: set[str]
) -> tuple[Literal["True", "False"], str, str]:
    """Return (status, reason, message) of MonitoringReady for kinds wanted and served."""
    missing = sorted(wanted_kinds - served_kinds)
    if missing:
        return (
            "False",
            CONDITION_CRDS_MISSING,
            f"the cluster does not serve {MONITORING_API_VERSION} {', '.join(missing)}: install "
            "the Prometheus Operator CRDs; the installation itself is not affected",
        )
    return "True", "Applied", f"{' and '.join(sorted(wanted_kinds))} applied"
