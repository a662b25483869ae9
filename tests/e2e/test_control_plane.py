"""The local control plane behaves like a real cluster where our operator depends on it.

Covers what the operator's tests lean on: the fake node, version stamping, the Deployment, Job and
garbage-collector controllers, the kwok behaviour labels, PodSecurity admission and RBAC.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .kube import (
    BEHAVIOUR_CRASH_LOOP,
    BEHAVIOUR_FAIL,
    BEHAVIOUR_LABEL,
    BEHAVIOUR_NEVER_READY,
    Cluster,
    CommandFailed,
    wait_for,
)

IMAGE = "registry.invalid/partyquiz/web:1.0.0"


def deployment(
    name: str,
    *,
    replicas: int = 2,
    image: str = IMAGE,
    labels: dict[str, str] | None = None,
    progress_deadline_seconds: int = 600,
) -> dict[str, Any]:
    selector = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline_seconds,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**selector, **(labels or {})}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def job(
    name: str, *, labels: dict[str, str] | None = None, backoff_limit: int = 0
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "metadata": {"labels": labels or {}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "migrate", "image": IMAGE, "command": ["migrate"]}],
                },
            },
        },
    }


def restricted_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return None


def rollout(cluster: Cluster, namespace: str, name: str, timeout: int = 90) -> None:
    cluster.kubectl(
        "rollout",
        "status",
        f"deployment/{name}",
        "-n",
        namespace,
        f"--timeout={timeout}s",
        timeout=timeout + 30,
    )


def test_kwok_node_is_ready(cluster: Cluster) -> None:
    table = cluster.kubectl("get", "nodes").stdout
    assert cluster.node_name in table
    node = cluster.get_json("node", cluster.node_name)
    ready = condition(node, "Ready")
    assert ready is not None
    assert ready["status"] == "True"
    assert not node["spec"].get("taints")


def test_server_reports_the_pinned_version(cluster: Cluster) -> None:
    versions = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert versions["serverVersion"]["gitVersion"] == cluster.version
    assert versions["clientVersion"]["gitVersion"] == cluster.version
    assert "warning" not in cluster.kubectl("version").stderr.lower()


def test_deployment_rolls_out_to_all_replicas_ready(cluster: Cluster, namespace: str) -> None:
    cluster.apply(deployment("web", replicas=3), namespace)
    rollout(cluster, namespace, "web")
    status = cluster.get_json("deployment", "web", "-n", namespace)["status"]
    assert status["readyReplicas"] == 3
    assert status["updatedReplicas"] == 3
    pods = cluster.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/name=web")["items"]
    assert len(pods) == 3
    assert all(pod["spec"]["nodeName"] == cluster.node_name for pod in pods)
    assert all(pod["status"]["phase"] == "Running" for pod in pods)


def test_changing_the_image_rolls_a_new_replicaset(cluster: Cluster, namespace: str) -> None:
    cluster.apply(deployment("web", replicas=2), namespace)
    rollout(cluster, namespace, "web")

    new_image = "registry.invalid/partyquiz/web:1.1.0"
    cluster.kubectl("set", "image", "deployment/web", f"app={new_image}", "-n", namespace)
    rollout(cluster, namespace, "web")

    replicasets = cluster.get_json("replicasets", "-n", namespace)["items"]
    by_image = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in replicasets}
    assert set(by_image) == {IMAGE, new_image}
    assert by_image[new_image]["status"].get("readyReplicas") == 2
    assert by_image[IMAGE]["spec"]["replicas"] == 0
    # The replaced pods are really gone (kwok plays the kubelet's part in deleting them).
    wait_for(
        lambda: (
            {
                pod["spec"]["containers"][0]["image"]
                for pod in cluster.get_json("pods", "-n", namespace)["items"]
            }
            == {new_image}
        ),
        timeout=30,
        message="old pods to be deleted",
    )


def test_never_ready_pods_make_the_rollout_exceed_its_progress_deadline(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        deployment(
            "web",
            replicas=1,
            labels={BEHAVIOUR_LABEL: BEHAVIOUR_NEVER_READY},
            progress_deadline_seconds=5,
        ),
        namespace,
    )

    def progressing() -> dict[str, Any] | None:
        cond = condition(cluster.get_json("deployment", "web", "-n", namespace), "Progressing")
        return cond if cond and cond["reason"] == "ProgressDeadlineExceeded" else None

    stuck = wait_for(progressing, timeout=60, message="Progressing=False/ProgressDeadlineExceeded")
    assert stuck["status"] == "False"
    pod = cluster.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/name=web")["items"][0]
    assert pod["status"]["phase"] == "Running"
    ready = condition(pod, "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    result = cluster.kubectl(
        "rollout", "status", "deployment/web", "-n", namespace, "--timeout=20s", check=False
    )
    assert result.returncode != 0
    assert "exceeded its progress deadline" in result.stderr


def test_crash_loop_pods_wait_in_back_off_with_growing_restarts(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        deployment("web", replicas=1, labels={BEHAVIOUR_LABEL: BEHAVIOUR_CRASH_LOOP}), namespace
    )

    def restarted_twice() -> dict[str, Any] | None:
        pods = cluster.get_json("pods", "-n", namespace)["items"]
        statuses = [s for pod in pods for s in pod["status"].get("containerStatuses", [])]
        return next((s for s in statuses if s.get("restartCount", 0) >= 2), None)

    status = wait_for(restarted_twice, timeout=60, message="a container restarted twice")
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["ready"] is False


def test_job_completes(cluster: Cluster, namespace: str) -> None:
    cluster.apply(job("migrate"), namespace)
    cluster.wait("job/migrate", "condition=Complete", namespace, timeout=60)
    status = cluster.get_json("job", "migrate", "-n", namespace)["status"]
    assert status["succeeded"] == 1
    assert not status.get("failed")


def test_job_marked_to_fail_ends_failed_with_backoff_limit_exceeded(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        job("migrate", labels={BEHAVIOUR_LABEL: BEHAVIOUR_FAIL}, backoff_limit=1), namespace
    )
    cluster.wait("job/migrate", "condition=Failed", namespace, timeout=90)
    failed_job = cluster.get_json("job", "migrate", "-n", namespace)
    failed = condition(failed_job, "Failed")
    assert failed is not None
    assert failed["reason"] == "BackoffLimitExceeded"
    assert failed_job["status"]["failed"] == 2  # the first try and one retry


def test_deleting_an_owner_garbage_collects_its_dependents(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}, namespace
    )
    owner = cluster.get_json("configmap", "owner", "-n", namespace)
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    cluster.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"dependent-{i}", "ownerReferences": [reference]},
            }
            for i in range(2)
        ],
        namespace,
    )
    cluster.apply(deployment("web", replicas=2), namespace)
    rollout(cluster, namespace, "web")

    cluster.kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=background")
    cluster.kubectl("delete", "deployment", "web", "-n", namespace, "--cascade=background")

    def collected() -> bool:
        names = {
            item["metadata"]["name"]
            for item in cluster.get_json("configmaps", "-n", namespace)["items"]
        }
        leftovers = cluster.get_json("replicasets,pods", "-n", namespace)["items"]
        return not names & {"dependent-0", "dependent-1"} and not leftovers

    wait_for(collected, timeout=60, message="dependents of the deleted owners to be collected")


@pytest.mark.parametrize("namespace", ["restricted"], indirect=True)
def test_restricted_namespace_rejects_a_privileged_pod(cluster: Cluster, namespace: str) -> None:
    privileged = restricted_pod("privileged")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(CommandFailed) as refused:
        cluster.apply(privileged, namespace)
    message = refused.value.result.stderr
    assert "violates PodSecurity" in message
    assert '"restricted:latest"' in message
    assert "privileged" in message

    cluster.apply(restricted_pod("compliant"), namespace)
    cluster.wait("pod/compliant", "condition=Ready", namespace, timeout=60)


def test_service_account_with_a_narrow_role_is_refused_outside_it(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "configmap-reader"},
                "rules": [
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "configmap-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
        ],
        namespace,
    )
    kubeconfig = cluster.service_account_kubeconfig(
        namespace, "reader", tmp_path / "reader.kubeconfig"
    )

    api = client.CoreV1Api(cluster.api_client(kubeconfig))
    try:
        allowed = api.list_namespaced_config_map(namespace)
        names = {item.metadata.name for item in allowed.items if item.metadata is not None}
        assert "kube-root-ca.crt" in names

        outside_the_role: list[Callable[[], object]] = [
            lambda: api.list_namespaced_secret(namespace),
            lambda: api.list_namespaced_config_map("default"),
            lambda: api.delete_namespaced_config_map("kube-root-ca.crt", namespace),
        ]
        for forbidden in outside_the_role:
            with pytest.raises(ApiException) as refused:
                forbidden()
            assert refused.value.status == 403
    finally:
        api.api_client.close()


def test_claims_of_the_standard_storage_class_are_provisioned_and_reclaimed(
    cluster: Cluster, namespace: str
) -> None:
    labels = {"app.kubernetes.io/name": "db"}
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 1,
                "serviceName": "db",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "db",
                                "image": IMAGE,
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ]
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "storageClassName": "standard",
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                ],
            },
        },
        namespace,
    )
    cluster.kubectl(
        "rollout", "status", "statefulset/db", "-n", namespace, "--timeout=60s", timeout=90
    )
    claim = cluster.get_json("pvc", "data-db-0", "-n", namespace)
    assert claim["status"]["phase"] == "Bound"
    volume = claim["spec"]["volumeName"]
    assert cluster.get_json("pv", volume)["spec"]["claimRef"]["name"] == "data-db-0"

    cluster.kubectl("delete", "statefulset", "db", "-n", namespace)
    cluster.kubectl("delete", "pvc", "data-db-0", "-n", namespace, "--wait=false")
    wait_for(
        lambda: cluster.kubectl("get", "pv", volume, check=False).returncode != 0,
        timeout=60,
        message=f"PersistentVolume {volume} to be reclaimed",
    )
