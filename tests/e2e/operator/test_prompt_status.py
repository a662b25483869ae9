"""The status moves with the cluster: decisions follow the changes that ask for them, not the
resync, and a stalled installation says what it waits for."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.kube import Cluster, wait_for
from tests.e2e.operator.harness import (
    OperatorProcess,
    condition,
    get_pq,
    load_example,
    wait_for_phase,
)

ProvideVolumes = Callable[..., None]
BEHAVIOUR = "kwok.partyquiz.dev/behaviour"
# Longer than any wait below: whatever happens here was decided on a change, not the resync.
NO_RESYNC_SECONDS = 3600.0


@pytest.fixture
def unhurried(
    operator_kubeconfig: Path, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """An operator for one namespace whose resync never comes within a test."""
    handle = OperatorProcess(
        kubeconfig=operator_kubeconfig,
        log_path=tmp_path / "operator.log",
        namespaces=(namespace,),
        resync_seconds=NO_RESYNC_SECONDS,
    )
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


def patch(cluster: Cluster, namespace: str, body: dict[str, Any]) -> None:
    cluster.kubectl("patch", "pq", "quiz", "-n", namespace, "--type=merge", "-p", json.dumps(body))


def test_retry_and_rollback_act_on_the_change_that_asks_for_them_without_the_resync(
    cluster: Cluster, unhurried: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz")
    manifest = copy.deepcopy(load_example("minimal.yaml")[0])
    manifest["spec"]["rollout"] = {"progressDeadlineSeconds": 600, "bakeSeconds": 0}
    manifest["spec"]["migrations"] = {"backupFirst": False, "backoffLimit": 0}
    cluster.apply(manifest, namespace)
    first = wait_for_phase(cluster, namespace, "quiz", "Ready", timeout=120)
    first_revision = first["status"]["revisions"]["current"]

    patch(
        cluster,
        namespace,
        {"spec": {"version": "1.5.0", "migrations": {"podLabels": {BEHAVIOUR: "fail"}}}},
    )
    wait_for_phase(cluster, namespace, "quiz", "Degraded", timeout=90)
    patch(cluster, namespace, {"spec": {"migrations": {"podLabels": None}}})
    cluster.kubectl("annotate", "pq", "quiz", "-n", namespace, "partyquiz.dev/retry=1")
    upgraded = wait_for_phase(cluster, namespace, "quiz", "Ready", timeout=90)
    assert upgraded["status"]["version"] == "1.5.0"

    patch(
        cluster, namespace, {"spec": {"version": "1.6.0", "podLabels": {BEHAVIOUR: "crash-loop"}}}
    )

    def rolled_back() -> dict[str, Any] | None:
        pq = get_pq(cluster, namespace, "quiz")
        degraded = [
            c for c in pq.get("status", {}).get("conditions", []) if c["type"] == "Degraded"
        ]
        return pq if degraded and degraded[0]["reason"] == "RolledBack" else None

    pq = wait_for(rolled_back, timeout=90, message="a rollback of the crash-looping version")
    assert "CrashLoopBackOff" in condition(pq, "Degraded")["message"]
    assert pq["status"]["revisions"]["current"] not in (None, first_revision)


def test_a_data_store_without_a_volume_says_which_claim_it_waits_for(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(load_example("minimal.yaml"), namespace)

    def stalled() -> dict[str, Any] | None:
        pq = get_pq(cluster, namespace, "quiz")
        found = [
            c for c in pq.get("status", {}).get("conditions", []) if c["type"] == "DatabaseReady"
        ]
        return pq if found and found[0]["reason"] == "ClaimPending" else None

    pq = wait_for(stalled, timeout=60, message="DatabaseReady naming the unbound claim")
    assert "data-quiz-postgres-0 is Pending" in condition(pq, "DatabaseReady")["message"]
    events = cluster.get_json(
        "events", "-n", namespace, "--field-selector", "involvedObject.kind=PartyQuiz"
    )["items"]
    assert any("data-quiz-postgres-0" in e["message"] for e in events)
