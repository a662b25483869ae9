"""The API server refuses invalid PartyQuiz manifests with a message that says what to fix."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tests.e2e.kube import Cluster
from tests.e2e.operator.harness import (
    EXAMPLES,
    MINIMAL,
    assert_refused_at_admission,
    load_example,
    with_spec,
)

EXTERNAL = {"secretRef": {"name": "db", "key": "url"}}


def without(key: str) -> dict[str, Any]:
    manifest = copy.deepcopy(MINIMAL)
    del manifest["spec"][key]
    return manifest


def named(name: str) -> dict[str, Any]:
    manifest = copy.deepcopy(MINIMAL)
    manifest["metadata"]["name"] = name
    return manifest


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("missing version", without("version"), "spec.version: Required value"),
    ("version latest", with_spec(version="latest"), "version must be a semantic version"),
    ("version with v", with_spec(version="v1.4.0"), "version must be a semantic version"),
    ("missing database", without("database"), "spec.database: Required value"),
    (
        "database both managed and external",
        with_spec(database={"managed": {}, "external": EXTERNAL}),
        "set exactly one of database.managed or database.external",
    ),
    (
        "database neither",
        with_spec(database={}),
        "set exactly one of database.managed or database.external",
    ),
    (
        "redis both",
        with_spec(redis={"managed": {}, "external": EXTERNAL}),
        "set exactly one of redis.managed or redis.external",
    ),
    (
        "external secret without key",
        with_spec(database={"external": {"secretRef": {"name": "db"}}}),
        "spec.database.external.secretRef.key: Required value",
    ),
    ("negative replicas", with_spec(web={"replicas": -1}), "spec.web.replicas"),
    ("too many replicas", with_spec(ws={"replicas": 500}), "should be less than or equal to 50"),
    (
        "drain too long",
        with_spec(ws={"drainSeconds": 99999}),
        "should be less than or equal to 3600",
    ),
    (
        "unknown pull policy",
        with_spec(images={"pullPolicy": "Sometimes"}),
        'supported values: "Always", "IfNotPresent", "Never"',
    ),
    (
        "cpu is not a quantity",
        with_spec(web={"resources": {"requests": {"cpu": "lots"}}}),
        "must be a Kubernetes quantity",
    ),
    (
        "requests above limits",
        with_spec(web={"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}),
        "resources.requests.memory must not exceed resources.limits.memory",
    ),
    (
        "autoscaling min above max",
        with_spec(web={"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}),
        "web.autoscaling.minReplicas must not exceed maxReplicas",
    ),
    (
        "tiny storage",
        with_spec(database={"managed": {"storage": "1Ki"}}),
        "storage must be at least 1Mi",
    ),
    ("ingress without host", with_spec(ingress={"className": "nginx"}), "spec.ingress.host"),
    (
        "ingress host with underscore",
        with_spec(ingress={"host": "my_quiz.example.com"}),
        "spec.ingress.host",
    ),
    (
        "pod label in the operator's prefix",
        with_spec(podLabels={"app.kubernetes.io/component": "x"}),
        "podLabels must not set app.kubernetes.io/ labels",
    ),
    (
        "pod label with a bad key",
        with_spec(podLabels={"bad key!": "x"}),
        "podLabels keys must be valid label keys",
    ),
    ("unknown field", with_spec(replicas=3), 'unknown field "spec.replicas"'),
    (
        "name too long for child names",
        named("a" * 41),
        "metadata.name must be at most 40 characters",
    ),
    (
        "name starting with a digit",
        named("1quiz"),
        "metadata.name must start with a letter",
    ),
    (
        "migration backoff too high",
        with_spec(migrations={"backoffLimit": 50}),
        "spec.migrations.backoffLimit",
    ),
    (
        "progress deadline too short",
        with_spec(rollout={"progressDeadlineSeconds": 1}),
        "spec.rollout.progressDeadlineSeconds",
    ),
]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [(m, msg) for _, m, msg in INVALID],
    ids=[label for label, _, _ in INVALID],
)
def test_invalid_manifest_is_refused_with_a_helpful_message(
    cluster: Cluster, operator_rbac: str, namespace: str, manifest: dict[str, Any], message: str
) -> None:
    assert_refused_at_admission(cluster, namespace, manifest, message)


UPDATES: list[tuple[str, dict[str, Any], str]] = [
    (
        "shrinking database storage",
        {"database": {"managed": {"storage": "5Gi"}}},
        "database.managed.storage cannot shrink",
    ),
    (
        "changing the database storage class",
        {"database": {"managed": {"storageClassName": "fast"}}},
        "database.managed.storageClassName is immutable",
    ),
    (
        "switching the database to external",
        {"database": {"managed": None, "external": EXTERNAL}},
        "database cannot switch between managed and external",
    ),
    (
        "shrinking redis storage",
        {"redis": {"managed": {"storage": "512Mi"}}},
        "redis.managed.storage cannot shrink",
    ),
]


@pytest.mark.parametrize(
    ("spec", "message"), [(s, m) for _, s, m in UPDATES], ids=[label for label, _, _ in UPDATES]
)
def test_updates_that_would_lose_data_are_refused(
    cluster: Cluster, operator_rbac: str, namespace: str, spec: dict[str, Any], message: str
) -> None:
    original = copy.deepcopy(MINIMAL)
    original["spec"]["database"] = {"managed": {"storage": "10Gi"}}
    # Create without an operator acting on it: suspended, so nothing is reconciled.
    original["spec"]["suspend"] = True
    cluster.apply(original, namespace)
    # A merge patch, not a replace: an update based on a stale read could fail with a
    # conflict before validation ever ran.
    result = cluster.kubectl(
        "patch",
        "pq",
        "quiz",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": spec}),
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_growing_storage_is_allowed(cluster: Cluster, operator_rbac: str, namespace: str) -> None:
    original = copy.deepcopy(MINIMAL)
    original["spec"]["suspend"] = True
    cluster.apply(original, namespace)
    cluster.kubectl(
        "patch",
        "pq",
        "quiz",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"database": {"managed": {"storage": "20Gi"}}}}),
    )


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_passes_server_side_validation(
    cluster: Cluster, operator_rbac: str, namespace: str, example: str
) -> None:
    for doc in load_example(example):
        cluster.kubectl(
            "apply", "-n", namespace, "--dry-run=server", "-f", "-", input=json.dumps(doc)
        )


def test_kubectl_explain_describes_the_spec(cluster: Cluster, operator_rbac: str) -> None:
    out = cluster.kubectl("explain", "partyquiz.spec.database").stdout
    assert "exactly one" in out
    assert "managed" in out
    assert "external" in out
