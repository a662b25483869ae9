"""The chart: lints, validates its values, runs restricted pods, and its namespaced RBAC works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.kube import Cluster, wait_for
from tests.e2e.operator.harness import (
    CHART,
    CLUSTER_SCOPED,
    REPO,
    SERVICE_ACCOUNT,
    OperatorProcess,
    get_pq,
    load_example,
    render_chart,
    wait_for_phase,
)


def test_chart_lints_in_every_mode(cluster: Cluster) -> None:
    for extra in (
        [],
        ["--set", "rbac.clusterWide=true", "--set", "metrics.serviceMonitor.enabled=true"],
    ):
        cluster.helm("lint", str(CHART), "--strict", "--kube-version", cluster.version, *extra)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("operator.workerThreads=0", "/operator/workerThreads"),
        ("surprise=1", "surprise"),
    ],
)
def test_values_schema_refuses_bad_values(cluster: Cluster, value: str, message: str) -> None:
    result = cluster.helm(
        "template",
        "pq",
        str(CHART),
        "--kube-version",
        cluster.version,
        "--set",
        value,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr


def _template(cluster: Cluster, release: str, namespace: str, *values: str) -> list[dict[str, Any]]:
    """`helm template` as a user runs it: no --kube-version, the CRDs left out."""
    args = ["template", release, str(CHART), "-n", namespace]
    for value in values:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(cluster.helm(*args).stdout) if doc]


@pytest.mark.parametrize("release", ["q" * 27, "q" * 37, "q" * 53])
def test_long_release_names_give_names_the_api_server_accepts(
    cluster: Cluster, namespace: str, release: str
) -> None:
    objects = _template(cluster, release, namespace, "grafanaDashboard.enabled=true")
    # The API server is the judge: every object passes its validation (dry run, nothing kept).
    listed = {"apiVersion": "v1", "kind": "List", "items": objects}
    cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(listed)
    )
    names = {o["kind"]: o["metadata"]["name"] for o in objects}
    assert len(names["CronJob"]) <= 52  # its Jobs' names add 11 characters
    assert len(names["Service"]) <= 63
    # Two long names that differ only at the end still name different objects.
    other = _template(cluster, release[:-1] + "r", namespace, "grafanaDashboard.enabled=true")
    for obj in other:
        assert obj["metadata"]["name"] != names[obj["kind"]], obj["kind"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("metrics.port=9000", "health.port=9000"), "metrics.port and health.port must differ"),
        (("finalizerReaper.schedule=99 99 99 99 99",), "/finalizerReaper/schedule"),
        (("finalizerReaper.schedule=every day",), "/finalizerReaper/schedule"),
    ],
)
def test_values_the_api_server_would_refuse_are_refused_by_helm(
    cluster: Cluster, values: tuple[str, ...], message: str
) -> None:
    args = [arg for value in values for arg in ("--set", value)]
    result = cluster.helm("template", "pq", str(CHART), *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_the_operator_and_the_reaper_keep_the_images_entrypoint(cluster: Cluster) -> None:
    """tini stays PID 1 (signals, reaping): the chart passes arguments, never a command."""
    objects = _template(cluster, "pq", "ops")
    workloads = {o["kind"]: o for o in objects if o["kind"] in ("Deployment", "CronJob")}
    operator = workloads["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    reaper = workloads["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "command" not in operator
    assert operator["args"][0] == "run"
    assert "command" not in reaper["containers"][0]
    assert reaper["containers"][0]["args"][0] == "release-finalizers"


def test_default_chart_grants_a_namespaced_role_without_wildcards(cluster: Cluster) -> None:
    objects = render_chart(cluster, "ops")
    kinds = {o["kind"] for o in objects}
    assert "ClusterRole" not in kinds
    assert "Role" in kinds
    role = next(o for o in objects if o["kind"] == "Role")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "*" not in rule["apiGroups"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    names = [o["metadata"]["name"] for o in objects]
    assert all(len(n) <= 63 for n in names)


@pytest.mark.parametrize("namespace", ["restricted"], indirect=True)
def test_chart_pods_are_admitted_under_restricted_pod_security(
    cluster: Cluster, namespace: str
) -> None:
    objects = render_chart(cluster, namespace)
    templates: list[dict[str, Any]] = []
    for obj in objects:
        if obj["kind"] == "Deployment":
            templates.append(obj["spec"]["template"])
        if obj["kind"] == "CronJob":
            templates.append(obj["spec"]["jobTemplate"]["spec"]["template"])
    assert len(templates) == 2
    for index, template in enumerate(templates):
        spec = dict(template["spec"])
        spec["serviceAccountName"] = "default"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"chart-pod-{index}", "labels": template["metadata"]["labels"]},
            "spec": spec,
        }
        result = cluster.kubectl(
            "apply",
            "-n",
            namespace,
            "--dry-run=server",
            "-f",
            "-",
            input=json.dumps(pod),
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "violate" not in result.stderr


def test_namespaced_install_reconciles_its_own_namespace(
    cluster: Cluster,
    operator: OperatorProcess,
    namespace: str,
    volumes: Any,
    tmp_path: Path,
) -> None:
    objects = render_chart(cluster, namespace)
    cluster.apply(
        [
            o
            for o in objects
            if o["kind"] not in ("CustomResourceDefinition", "Deployment", "CronJob")
        ],
        namespace,
    )
    kubeconfig = cluster.service_account_kubeconfig(namespace, SERVICE_ACCOUNT, tmp_path / "kc")
    scoped = OperatorProcess(
        kubeconfig=kubeconfig, log_path=tmp_path / "op.log", namespaces=(namespace,)
    )
    operator.stop()  # only one operator may act on a namespace
    try:
        scoped.start()
        try:
            volumes(namespace, "quiz")
            cluster.apply(load_example("minimal.yaml"), namespace)
            wait_for_phase(cluster, namespace, "quiz", "Ready")
            # This operator sees only this instance, so its request counter is the instance's:
            # once Ready, further passes (resync and a poked update) make no write at all.
            scoped.wait_passes(2)
            writes = scoped.writes()
            cluster.kubectl("annotate", "pq", "quiz", "-n", namespace, "example.com/poke=1")
            scoped.wait_passes(3)
            assert scoped.writes() == writes
            # The Role is namespaced: the account cannot read PartyQuiz objects elsewhere.
            denied = cluster.kubectl(
                "--kubeconfig", str(kubeconfig), "get", "pq", "-A", check=False
            )
            assert denied.returncode != 0
            assert "forbidden" in denied.stderr.lower()
        finally:
            scoped.stop()
    finally:
        operator.start()
        for obj in objects:
            if obj["kind"] in CLUSTER_SCOPED:
                name = obj["metadata"]["name"]
                cluster.kubectl("delete", obj["kind"].lower(), name, "--ignore-not-found")


def test_stale_finalizer_is_released_when_the_operator_is_down(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: Any
) -> None:
    volumes(namespace, "quiz")
    manifest = load_example("minimal.yaml")[0]
    manifest["spec"]["retainDataOnDelete"] = False
    cluster.apply(manifest, namespace)
    wait_for_phase(cluster, namespace, "quiz", "Ready")
    assert "partyquiz.dev/cleanup" in get_pq(cluster, namespace, "quiz")["metadata"]["finalizers"]

    operator.stop()
    try:
        cluster.kubectl("delete", "pq", "quiz", "-n", namespace, "--wait=false")
        assert get_pq(cluster, namespace, "quiz")["metadata"]["deletionTimestamp"]
        reaper = subprocess.run(
            [
                sys.executable,
                "-m",
                "partyquiz_operator",
                "release-finalizers",
                "--namespace",
                namespace,
                "--older-than",
                "0",
                "--kubeconfig",
                str(operator.kubeconfig),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            check=False,
        )
        assert reaper.returncode == 0, reaper.stderr
        assert f"{namespace}/quiz" in reaper.stdout
        wait_for(
            lambda: (
                cluster.kubectl("get", "pq", "quiz", "-n", namespace, check=False).returncode != 0
            ),
            timeout=60,
            message="the PartyQuiz to be gone",
        )
        # Without the operator, garbage collection still removes workloads and the data PVCs.
        wait_for(
            lambda: not cluster.get_json("statefulsets,deployments,pvc", "-n", namespace)["items"],
            timeout=120,
            message="workloads and PVCs to be garbage-collected",
        )
    finally:
        operator.start()
