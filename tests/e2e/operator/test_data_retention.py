"""Data kept on delete is kept whole: volumes, backups and the credentials that open them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tests.e2e.kube import Cluster, wait_for
from tests.e2e.operator.harness import OperatorProcess, load_example, wait_for_phase

ProvideVolumes = Callable[..., None]
BACKED_UP: dict[str, Any] = copy.deepcopy(load_example("minimal.yaml")[0])
BACKED_UP["spec"]["database"] = {"managed": {"backup": {"schedule": "0 3 * * *"}}}


def pvcs(cluster: Cluster, namespace: str) -> set[str]:
    return {p["metadata"]["name"] for p in cluster.get_json("pvc", "-n", namespace)["items"]}


def test_retained_data_outlives_the_partyquiz_and_opens_again_for_its_successor(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz")
    cluster.apply(BACKED_UP, namespace)
    wait_for_phase(cluster, namespace, "quiz", "Ready", timeout=180)
    kept = {"data-quiz-postgres-0", "data-quiz-redis-0", "quiz-backups"}
    assert pvcs(cluster, namespace) == kept
    secret = cluster.get_json("secret", "quiz-credentials", "-n", namespace)

    cluster.kubectl("delete", "pq", "quiz", "-n", namespace, "--wait=true", timeout=120)
    wait_for(
        lambda: not cluster.get_json("statefulsets,deployments,services", "-n", namespace)["items"],
        timeout=90,
        message="the workloads to be garbage-collected",
    )
    assert pvcs(cluster, namespace) == kept
    still = cluster.get_json("secret", "quiz-credentials", "-n", namespace)
    assert still["data"] == secret["data"]

    # The same PartyQuiz again finds its data and the password that opens it.
    cluster.apply(BACKED_UP, namespace)
    wait_for_phase(cluster, namespace, "quiz", "Ready", timeout=180)
    again = cluster.get_json("secret", "quiz-credentials", "-n", namespace)
    assert again["data"] == secret["data"]
    assert pvcs(cluster, namespace) == kept
    # The volume says which password it was initialised with, so a mismatch is caught.
    volume = cluster.get_json("pvc", "data-quiz-postgres-0", "-n", namespace)
    assert "partyquiz.dev/credentials-digest" in volume["metadata"]["annotations"]
