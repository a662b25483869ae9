"""The API server refuses at admission what would only fail later: labels, quantities, schedules,
class names and image references the cluster cannot use."""

from __future__ import annotations

from typing import Any

import pytest
from tests.e2e.kube import Cluster
from tests.e2e.operator.harness import assert_refused_at_admission, with_spec


def managed_db(**fields: Any) -> dict[str, Any]:
    return with_spec(database={"managed": fields})


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("version with build metadata", with_spec(version="1.4.0+abc"), "no +build metadata"),
    ("version too long for a label", with_spec(version="1.4.0-" + "a" * 58), "spec.version"),
    (
        "negative cpu",
        with_spec(web={"resources": {"requests": {"cpu": "-500m"}}}),
        "must not be negative",
    ),
    (
        "absurd memory",
        with_spec(ws={"resources": {"limits": {"memory": "1Ei"}}}),
        "memory must be at most 64Ti",
    ),
    ("absurd storage", managed_db(storage="1Ei"), "storage must be at most 64Ti"),
    (
        "absurd backup storage",
        managed_db(backup={"storage": "1E"}),
        "storage must be at most 64Ti",
    ),
    (
        "pod annotation with a bad key",
        with_spec(podAnnotations={"bad key!": "x"}),
        "annotation keys must be valid keys",
    ),
    (
        "ingress annotation with a bad key",
        with_spec(ingress={"host": "quiz.example.com", "annotations": {"a/b/c": "x"}}),
        "annotation keys must be valid keys",
    ),
    (
        "schedule out of range",
        managed_db(backup={"schedule": "99 99 99 99 99"}),
        "spec.database.managed.backup.schedule",
    ),
    ("storage class name", managed_db(storageClassName="Fast_SSD"), "storageClassName"),
    (
        "ingress class name",
        with_spec(ingress={"host": "quiz.example.com", "className": "nginx public"}),
        "spec.ingress.className",
    ),
    ("image with upper case", with_spec(images={"web": "registry.local/Web:1"}), "images.web"),
    ("image with an empty tag", with_spec(images={"ws": "ghcr.io/x/ws:"}), "spec.images.ws"),
]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [(m, msg) for _, m, msg in REFUSED],
    ids=[label for label, _, _ in REFUSED],
)
def test_what_would_fail_later_is_refused_at_admission(
    cluster: Cluster, operator_rbac: str, namespace: str, manifest: dict[str, Any], message: str
) -> None:
    assert_refused_at_admission(cluster, namespace, manifest, message)
