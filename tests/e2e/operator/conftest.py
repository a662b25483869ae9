"""Fixtures for operator e2e tests: the chart's RBAC installed, the operator run as its account.

Owns the session-wide operator process (its ServiceAccount token, so RBAC is exactly what the
chart grants) and per-test PersistentVolumes. Admin credentials are used only to install the
chart's CRD and RBAC and to create volumes (this plane has no provisioner).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.kube import Cluster
from tests.e2e.operator.harness import (
    CLUSTER_SCOPED,
    OPERATOR_NAMESPACE,
    SERVICE_ACCOUNT,
    OperatorProcess,
    provide_volumes,
    render_chart,
)


@pytest.fixture(scope="session")
def operator_rbac(cluster: Cluster) -> Iterator[str]:
    """Install the chart's CRD, ServiceAccount and (cluster-wide) RBAC; yield the namespace.

    The chart's workloads (operator Deployment, reaper CronJob) are left out: the operator runs
    from this checkout instead. The CRD stays installed afterwards (deleting it would delete
    every PartyQuiz on the plane); the RBAC and the namespace are removed.
    """
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        OPERATOR_NAMESPACE,
    )
    objects = render_chart(cluster, OPERATOR_NAMESPACE, "rbac.clusterWide=true")
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    skipped = ("CustomResourceDefinition", "Deployment", "CronJob")
    rest = [o for o in objects if o["kind"] not in skipped]
    for crd in crds:
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(crd)
        )
        cluster.wait(f"crd/{crd['metadata']['name']}", "condition=Established", None, timeout=60)
    cluster.apply(rest, OPERATOR_NAMESPACE)
    yield OPERATOR_NAMESPACE
    for obj in rest:
        if obj["kind"] in CLUSTER_SCOPED:
            cluster.kubectl(
                "delete",
                obj["kind"].lower(),
                obj["metadata"]["name"],
                "--ignore-not-found",
                check=False,
            )
    cluster.kubectl(
        "delete",
        "namespace",
        OPERATOR_NAMESPACE,
        "--ignore-not-found",
        "--timeout=120s",
        check=False,
        timeout=150,
    )


@pytest.fixture(scope="session")
def operator_kubeconfig(
    cluster: Cluster, operator_rbac: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig holding a token of the chart's ServiceAccount (cluster-wide RBAC)."""
    workdir = tmp_path_factory.mktemp("operator")
    return cluster.service_account_kubeconfig(
        operator_rbac, SERVICE_ACCOUNT, workdir / "kubeconfig"
    )


@pytest.fixture
def operator(
    operator_kubeconfig: Path, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator for one test, as the chart's ServiceAccount, watching only its namespace.

    One process per test keeps tests (and concurrent sessions on the same plane) from acting on
    each other's instances, and makes its request counters belong to that test alone.
    """
    handle = OperatorProcess(
        kubeconfig=operator_kubeconfig,
        log_path=tmp_path / "operator.log",
        namespaces=(namespace,),
    )
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def volumes(cluster: Cluster) -> Iterator[Any]:
    """A function providing pre-bound PersistentVolumes for a test; removed afterwards."""
    created: list[str] = []

    def provide(
        namespace: str, instance: str, stores: tuple[str, ...] = ("postgres", "redis")
    ) -> None:
        claims = [f"data-{instance}-{s}-0" for s in stores]
        if "postgres" in stores:
            claims.append(f"{instance}-backups")  # pg_dump before each migration lands here
        created.extend(provide_volumes(cluster, namespace, claims))

    yield provide
    if created:
        cluster.kubectl("delete", "pv", *created, "--wait=false", "--ignore-not-found", check=False)
