"""The operator, run with the chart's RBAC, turns PartyQuiz manifests into running stacks."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.e2e.kube import Cluster, wait_for
from tests.e2e.operator.harness import (
    WRITE_VERBS,
    OperatorProcess,
    condition,
    get_pq,
    load_example,
    wait_for_phase,
)

ProvideVolumes = Callable[..., None]
MANAGED_BY = "app.kubernetes.io/managed-by=partyquiz-operator"
RECOMMENDED = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
CHILD_KINDS = (
    "deployments,statefulsets,services,secrets,serviceaccounts,jobs,"
    "poddisruptionbudgets,networkpolicies,ingresses,horizontalpodautoscalers"
)
MINIMAL: dict[str, Any] = load_example("minimal.yaml")[0]


def children(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.get_json(CHILD_KINDS, "-n", namespace, "-l", MANAGED_BY)[
        "items"
    ]
    return items


def versions(cluster: Cluster, namespace: str) -> dict[str, str]:
    """Return the resourceVersion of every child, keyed by kind/name."""
    return {
        f"{c['kind']}/{c['metadata']['name']}": c["metadata"]["resourceVersion"]
        for c in children(cluster, namespace)
    }


def names(cluster: Cluster, namespace: str, kind: str) -> set[str]:
    items = cluster.get_json(kind, "-n", namespace)["items"]
    return {item["metadata"]["name"] for item in items}


def migration_jobs(cluster: Cluster, namespace: str) -> set[str]:
    """Return the names of the migration Jobs (backup Jobs left out)."""
    return {n for n in names(cluster, namespace, "jobs") if n.startswith("quiz-migrate-")}


def apply_quiz(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.apply(manifest, namespace)


def quiz(name: str = "quiz", **spec: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(MINIMAL)
    manifest["metadata"]["name"] = name
    manifest["spec"].update(spec)
    return manifest


def assert_children_owned_and_labelled(
    cluster: Cluster, namespace: str, pq: dict[str, Any]
) -> list[dict[str, Any]]:
    found = children(cluster, namespace)
    assert found
    uid = pq["metadata"]["uid"]
    # The credentials stay with the data volumes when the data is kept: nothing owns them.
    kept = {f"Secret/{pq['metadata']['name']}-credentials"}
    retained = pq["spec"].get("retainDataOnDelete", True)
    for child in found:
        meta = child["metadata"]
        ident = f"{child['kind']}/{meta['name']}"
        if retained and ident in kept:
            assert not meta.get("ownerReferences"), ident
            continue
        assert any(
            ref["uid"] == uid and ref.get("controller") for ref in meta.get("ownerReferences", [])
        ), ident
        for label in RECOMMENDED:
            assert label in meta["labels"], f"{ident} lacks {label}"
    return found


@pytest.mark.parametrize("namespace", ["restricted"], indirect=True)
def test_minimal_example_becomes_ready_with_every_child_in_a_restricted_namespace(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz")
    apply_quiz(cluster, namespace, MINIMAL)
    pq = wait_for_phase(cluster, namespace, "quiz", "Ready")

    found = assert_children_owned_and_labelled(cluster, namespace, pq)
    kinds = {(c["kind"], c["metadata"]["name"]) for c in found}
    for expected in [
        ("Deployment", "quiz-web"),
        ("Deployment", "quiz-ws"),
        ("StatefulSet", "quiz-postgres"),
        ("StatefulSet", "quiz-redis"),
        ("Service", "quiz-web"),
        ("Service", "quiz-ws"),
        ("Service", "quiz-postgres"),
        ("Service", "quiz-redis"),
        ("Secret", "quiz-credentials"),
        ("ServiceAccount", "quiz"),
        ("PodDisruptionBudget", "quiz-web"),
        ("PodDisruptionBudget", "quiz-ws"),
        ("NetworkPolicy", "quiz-postgres"),
        ("NetworkPolicy", "quiz-redis"),
    ]:
        assert expected in kinds, expected
    assert any(kind == "Job" and name.startswith("quiz-migrate-") for kind, name in kinds)

    # Every pod the operator made was admitted under "restricted" and is running.
    pods = cluster.get_json("pods", "-n", namespace)["items"]
    assert {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods} >= {
        "web",
        "ws",
        "database",
        "cache",
        "migration",
    }

    st = pq["status"]
    assert condition(pq, "Ready")["status"] == "True"
    assert condition(pq, "MigrationComplete")["status"] == "True"
    assert st["revisions"]["current"] == st["revisions"]["target"] == st["revisions"]["migrated"]
    assert st["components"]["web"]["summary"] == "2/2"
    assert st["endpoints"]["web"] == f"http://quiz-web.{namespace}.svc:8000"

    secret = cluster.get_json("secret", "quiz-credentials", "-n", namespace)
    assert len(base64.b64decode(secret["data"]["jwt-secret"])) >= 32

    table = cluster.kubectl("get", "pq", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "VERSION", "PHASE", "READY", "WEB", "WS", "AGE"]
    assert row.split()[:6] == ["quiz", "1.4.0", "Ready", "True", "2/2", "2/2"]

    events = cluster.get_json(
        "events", "-n", namespace, "--field-selector", "involvedObject.kind=PartyQuiz"
    )["items"]
    assert "PhaseReady" in {e["reason"] for e in events}


@pytest.mark.parametrize("namespace", ["restricted"], indirect=True)
def test_production_example_uses_the_external_database_and_creates_no_postgres(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz", ("redis",))
    cluster.apply(load_example("production.yaml"), namespace)
    pq = wait_for_phase(cluster, namespace, "quiz", "Ready")
    assert_children_owned_and_labelled(cluster, namespace, pq)

    assert names(cluster, namespace, "statefulsets") == {"quiz-redis"}
    assert "quiz-postgres" not in names(cluster, namespace, "services")
    assert condition(pq, "DatabaseReady")["reason"] == "External"
    web = cluster.get_json("deployment", "quiz-web", "-n", namespace)
    env = {e["name"]: e for e in web["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PARTYQUIZ_WEB_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "quiz-database",
        "key": "url",
    }
    assert env["PARTYQUIZ_WEB_JWT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "quiz-jwt",
        "key": "secret",
    }
    assert env["PARTYQUIZ_WEB_PUBLIC_WS_URL"]["value"] == "wss://quiz.example.com/ws"
    assert names(cluster, namespace, "ingresses") == {"quiz"}
    assert names(cluster, namespace, "horizontalpodautoscalers") == {"quiz-web"}
    assert pq["status"]["endpoints"]["public"] == "https://quiz.example.com"


def test_external_database_and_redis_create_no_statefulset(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    url = "postgresql+asyncpg://u:p@db.example:5432/q"
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "stores",
        "-n",
        namespace,
        f"--from-literal=db={url}",
        "--from-literal=redis=redis://cache.example:6379/0",
    )
    ref = {"external": {"secretRef": {"name": "stores", "key": "db"}}}
    redis = {"external": {"secretRef": {"name": "stores", "key": "redis"}}}
    apply_quiz(cluster, namespace, quiz(database=ref, redis=redis))
    wait_for_phase(cluster, namespace, "quiz", "Ready")
    assert names(cluster, namespace, "statefulsets") == set()
    assert names(cluster, namespace, "networkpolicies") == set()
    ws = cluster.get_json("deployment", "quiz-ws", "-n", namespace)
    env = {e["name"]: e for e in ws["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PARTYQUIZ_WS_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "stores",
        "key": "redis",
    }


def test_missing_external_secret_is_reported_and_recovered_once_created(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    ref = {"external": {"secretRef": {"name": "later", "key": "db"}}}
    redis = {"external": {"secretRef": {"name": "later", "key": "url"}}}
    apply_quiz(cluster, namespace, quiz(database=ref, redis=redis))

    def reported() -> bool:
        pq = get_pq(cluster, namespace, "quiz")
        ready = [c for c in pq.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        return bool(ready) and "Secret later" in ready[0]["message"]

    wait_for(reported, timeout=60, message="a condition naming the missing Secret")
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "later",
        "-n",
        namespace,
        "--from-literal=db=postgresql+asyncpg://u:p@db.example:5432/q",
        "--from-literal=url=redis://x:6379/0",
    )
    wait_for_phase(cluster, namespace, "quiz", "Ready", timeout=120)


def test_a_secret_of_the_credentials_name_made_by_someone_else_is_reported_never_taken(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.kubectl(
        "create", "secret", "generic", "quiz-credentials", "-n", namespace,
        "--from-literal=password=mine",
    )  # fmt: skip
    apply_quiz(cluster, namespace, quiz())

    def reported() -> bool:
        conditions = (get_pq(cluster, namespace, "quiz").get("status") or {}).get("conditions")
        return any(
            c["type"] == "Degraded" and c["reason"] == "NameConflict" for c in conditions or []
        )

    wait_for(reported, timeout=60, message="Degraded with reason NameConflict")
    degraded = condition(get_pq(cluster, namespace, "quiz"), "Degraded")
    assert "Secret quiz-credentials" in degraded["message"]
    secret = cluster.get_json("secret", "quiz-credentials", "-n", namespace)
    assert secret["data"] == {"password": base64.b64encode(b"mine").decode()}
    assert "labels" not in secret["metadata"]
    assert not names(cluster, namespace, "statefulsets")


@pytest.mark.parametrize("namespace", ["restricted"], indirect=True)
def test_full_example_becomes_ready(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz-full")
    cluster.apply(load_example("full.yaml"), namespace)
    pq = wait_for_phase(cluster, namespace, "quiz-full", "Ready")
    assert_children_owned_and_labelled(cluster, namespace, pq)
    pods = cluster.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/component=web")
    for pod in pods["items"]:
        assert pod["metadata"]["labels"]["team"] == "events"
        assert pod["metadata"]["annotations"]["example.com/owner"] == "events-team"


def test_a_second_reconcile_writes_nothing_and_drift_is_repaired(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz")
    apply_quiz(cluster, namespace, quiz())
    wait_for_phase(cluster, namespace, "quiz", "Ready")

    # Let in-flight passes settle, then prove that further passes write nothing: every child
    # keeps its resourceVersion and the status stays byte-for-byte the same. (The operator's
    # write counter is process-wide and other tests' instances share it, so versions are the
    # per-instance evidence; the log shows no apply for this namespace either.)
    operator.wait_passes(2)
    before = versions(cluster, namespace)
    status_before = get_pq(cluster, namespace, "quiz")["status"]
    applies_before = operator.log_mentions(f"applying Deployment {namespace}/")
    cluster.kubectl("annotate", "pq", "quiz", "-n", namespace, "example.com/poke=1")
    operator.wait_passes(4)
    assert versions(cluster, namespace) == before
    assert get_pq(cluster, namespace, "quiz")["status"] == status_before
    assert operator.log_mentions(f"applying Deployment {namespace}/") == applies_before

    # A deleted child comes back.
    old_uid = cluster.get_json("service", "quiz-web", "-n", namespace)["metadata"]["uid"]
    cluster.kubectl("delete", "service", "quiz-web", "-n", namespace)
    wait_for(
        lambda: (
            cluster.kubectl("get", "service", "quiz-web", "-n", namespace, check=False).returncode
            == 0
        ),
        timeout=60,
        message="service quiz-web to be recreated",
    )
    assert cluster.get_json("service", "quiz-web", "-n", namespace)["metadata"]["uid"] != old_uid

    # A hand-edited field the operator owns is put back.
    cluster.kubectl("scale", "deployment", "quiz-ws", "-n", namespace, "--replicas=5")
    wait_for(
        lambda: cluster.get_json("deployment", "quiz-ws", "-n", namespace)["spec"]["replicas"] == 2,
        timeout=60,
        message="deployment quiz-ws scaled back to 2",
    )
    # Another deleted child comes back too.
    cluster.kubectl("delete", "networkpolicy", "quiz-redis", "-n", namespace)
    wait_for(
        lambda: "quiz-redis" in names(cluster, namespace, "networkpolicies"),
        timeout=60,
        message="networkpolicy quiz-redis to be recreated",
    )
    wait_for_phase(cluster, namespace, "quiz", "Ready")


def test_suspend_stops_changes_and_says_so(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz")
    apply_quiz(cluster, namespace, quiz())
    wait_for_phase(cluster, namespace, "quiz", "Ready")

    cluster.kubectl(
        "patch", "pq", "quiz", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    pq = wait_for_phase(cluster, namespace, "quiz", "Suspended")
    assert condition(pq, "Progressing")["reason"] == "Suspended"
    assert "suspend" in condition(pq, "Progressing")["message"]

    cluster.kubectl("delete", "service", "quiz-ws", "-n", namespace)
    cluster.kubectl(
        "patch",
        "pq",
        "quiz",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"ws":{"replicas":3}}}',
    )
    operator.wait_passes(3)
    assert "quiz-ws" not in names(cluster, namespace, "services")
    ws = cluster.get_json("deployment", "quiz-ws", "-n", namespace)
    assert ws["spec"]["replicas"] == 2

    cluster.kubectl(
        "patch", "pq", "quiz", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    wait_for(
        lambda: "quiz-ws" in names(cluster, namespace, "services"),
        timeout=60,
        message="service quiz-ws to be recreated after resuming",
    )
    wait_for(
        lambda: cluster.get_json("deployment", "quiz-ws", "-n", namespace)["spec"]["replicas"] == 3,
        timeout=60,
        message="deployment quiz-ws scaled to 3 after resuming",
    )


@pytest.mark.parametrize("retain", [True, False], ids=["retain", "delete-data"])
def test_deleting_removes_workloads_and_keeps_pvcs_only_when_retained(
    cluster: Cluster,
    operator: OperatorProcess,
    namespace: str,
    volumes: ProvideVolumes,
    retain: bool,
) -> None:
    volumes(namespace, "quiz")
    apply_quiz(cluster, namespace, quiz(retainDataOnDelete=retain))
    wait_for_phase(cluster, namespace, "quiz", "Ready")
    pvcs = {"data-quiz-postgres-0", "data-quiz-redis-0"}
    assert names(cluster, namespace, "pvc") == pvcs
    finalizers = get_pq(cluster, namespace, "quiz")["metadata"].get("finalizers", [])
    assert ("partyquiz.dev/cleanup" in finalizers) is (not retain)

    cluster.kubectl("delete", "pq", "quiz", "-n", namespace, "--wait=true", timeout=120)
    wait_for(
        lambda: not names(cluster, namespace, "statefulsets,deployments"),
        timeout=90,
        message="workloads to be deleted",
    )
    if retain:
        assert names(cluster, namespace, "pvc") == pvcs
    else:
        wait_for(
            lambda: not names(cluster, namespace, "pvc"),
            timeout=90,
            message="PVCs to be deleted",
        )


def test_deleting_its_namespace_puts_back_none_of_the_children_going_with_it(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz")
    apply_quiz(cluster, namespace, quiz())
    wait_for_phase(cluster, namespace, "quiz", "Ready")
    count = len(children(cluster, namespace))

    cluster.kubectl("delete", "namespace", namespace, "--wait=true", timeout=180)
    # Every child the namespace controller removed was a watch event; after the first write
    # refused (the namespace is terminating) no pass tried to create anything there again.
    # Writes already on their way when that refusal came back are refused too: at most two
    # (a pass's status events are posted beside the next pass).
    refused = {
        f"{dict(labels)['verb']} {dict(labels)['resource']}": value
        for (name, labels), value in operator.metrics().items()
        if name == "partyquiz_operator_kube_api_requests_total"
        and dict(labels).get("verb") in WRITE_VERBS
        and dict(labels).get("code") == "403"
    }
    assert count >= 10
    assert sum(refused.values()) <= 2, f"refused while {count} children went: {refused}"


def test_killing_the_operator_mid_reconcile_and_restarting_converges(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    apply_quiz(cluster, namespace, quiz())
    # Without volumes the data stores cannot start: the operator is caught half-way.
    wait_for(
        lambda: "quiz-postgres" in names(cluster, namespace, "statefulsets"),
        timeout=60,
        message="the PostgreSQL StatefulSet to be created",
    )
    operator.kill()
    try:
        pq = get_pq(cluster, namespace, "quiz")
        assert pq.get("status", {}).get("phase") != "Ready"
        volumes(namespace, "quiz")
    finally:
        operator.start()
    pq = wait_for_phase(cluster, namespace, "quiz", "Ready", timeout=180)
    jobs = migration_jobs(cluster, namespace)
    assert len(jobs) == 1, jobs
    assert pq["status"]["revisions"]["current"] is not None


def test_invalid_jwt_secret_is_reported_without_touching_workloads(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "weak",
        "-n",
        namespace,
        "--from-literal=jwt=short",
        "--from-literal=url=redis://x:6379/0",
    )
    ref = {"external": {"secretRef": {"name": "weak", "key": "url"}}}
    apply_quiz(
        cluster,
        namespace,
        quiz(database=ref, redis=ref, jwtSecretRef={"name": "weak", "key": "jwt"}),
    )

    def reported() -> dict[str, Any] | None:
        pq = get_pq(cluster, namespace, "quiz")
        conds = {c["type"]: c for c in pq.get("status", {}).get("conditions", [])}
        degraded = conds.get("Degraded")
        return pq if degraded and "at least 32" in degraded["message"] else None

    pq = wait_for(reported, timeout=60, message="a Degraded condition about the JWT secret")
    assert condition(pq, "Ready")["status"] == "False"
    assert names(cluster, namespace, "deployments") == set()
    assert json.dumps(pq["status"]).count("at least 32") >= 1


def test_dropping_ingress_and_autoscaling_removes_them_and_restores_replicas(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz")
    apply_quiz(
        cluster,
        namespace,
        quiz(
            ingress={"host": "quiz.example.com"},
            web={"autoscaling": {"minReplicas": 2, "maxReplicas": 3}},
        ),
    )
    wait_for_phase(cluster, namespace, "quiz", "Ready")
    assert names(cluster, namespace, "ingresses") == {"quiz"}
    assert names(cluster, namespace, "horizontalpodautoscalers") == {"quiz-web"}

    patch = [
        {"op": "remove", "path": "/spec/ingress"},
        {"op": "replace", "path": "/spec/web", "value": {"replicas": 3}},
    ]
    cluster.kubectl("patch", "pq", "quiz", "-n", namespace, "--type=json", "-p", json.dumps(patch))
    wait_for(
        lambda: not names(cluster, namespace, "ingresses,horizontalpodautoscalers"),
        timeout=60,
        message="the Ingress and the HPA to be removed",
    )
    wait_for(
        lambda: (
            cluster.get_json("deployment", "quiz-web", "-n", namespace)["spec"]["replicas"] == 3
        ),
        timeout=60,
        message="deployment quiz-web to run 3 replicas",
    )
    pq = wait_for_phase(cluster, namespace, "quiz", "Ready")
    assert "public" not in pq["status"]["endpoints"]


def test_pods_that_never_become_ready_fail_the_rollout_by_its_deadline(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz")
    apply_quiz(
        cluster,
        namespace,
        quiz(
            podLabels={"kwok.partyquiz.dev/behaviour": "never-ready"},
            rollout={"progressDeadlineSeconds": 10},
        ),
    )
    pq = wait_for_phase(cluster, namespace, "quiz", "Degraded", timeout=180)
    degraded = condition(pq, "Degraded")
    assert degraded["status"] == "True"
    assert "progress deadline" in degraded["message"]
    assert condition(pq, "Ready")["status"] == "False"
    assert pq["status"]["revisions"].get("current") is None
    pods = cluster.get_json(
        "pods", "-n", namespace, "-l", "kwok.partyquiz.dev/behaviour=never-ready"
    )["items"]
    assert {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods} == {"web", "ws"}


def test_a_version_change_migrates_first_then_rolls_out_the_new_revision(
    cluster: Cluster, operator: OperatorProcess, namespace: str, volumes: ProvideVolumes
) -> None:
    volumes(namespace, "quiz")
    apply_quiz(cluster, namespace, quiz())
    first = wait_for_phase(cluster, namespace, "quiz", "Ready")["status"]["revisions"]["current"]

    cluster.kubectl(
        "patch", "pq", "quiz", "-n", namespace, "--type=merge", "-p", '{"spec":{"version":"1.5.0"}}'
    )
    pq = wait_for_phase(cluster, namespace, "quiz", "Ready")
    revisions = pq["status"]["revisions"]
    assert revisions["current"] != first
    assert revisions["current"] == revisions["target"] == revisions["migrated"]
    assert pq["status"]["version"] == "1.5.0"
    assert migration_jobs(cluster, namespace) == {
        f"quiz-migrate-{first}",
        f"quiz-migrate-{revisions['current']}",
    }
    for deployment in ("quiz-web", "quiz-ws"):
        dep = cluster.get_json("deployment", deployment, "-n", namespace)
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.endswith(":1.5.0"), image
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert annotations["partyquiz.dev/revision"] == revisions["current"]
    events = cluster.get_json(
        "events", "-n", namespace, "--field-selector", "involvedObject.kind=PartyQuiz"
    )["items"]
    # Once for the install, once for the upgrade: the migration ran before the new pods.
    assert [e["reason"] for e in events].count("PhaseMigrating") >= 2

    # A further upgrade prunes the Job of the revision that no longer runs anywhere.
    cluster.kubectl(
        "patch", "pq", "quiz", "-n", namespace, "--type=merge", "-p", '{"spec":{"version":"1.6.0"}}'
    )
    third = wait_for_phase(cluster, namespace, "quiz", "Ready")["status"]["revisions"]["current"]
    wait_for(
        lambda: (
            migration_jobs(cluster, namespace)
            == {f"quiz-migrate-{revisions['current']}", f"quiz-migrate-{third}"}
        ),
        timeout=60,
        message="only the migration Jobs of the last two revisions to remain",
    )


def test_provisioned_volumes_grow_in_place_when_storage_is_raised(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    standard = {"storageClassName": "standard", "storage": "1Gi"}
    apply_quiz(
        cluster,
        namespace,
        quiz(database={"managed": dict(standard)}, redis={"managed": dict(standard)}),
    )
    wait_for_phase(cluster, namespace, "quiz", "Ready")
    pvc = cluster.get_json("pvc", "data-quiz-postgres-0", "-n", namespace)
    assert pvc["spec"]["storageClassName"] == "standard"

    cluster.kubectl(
        "patch",
        "pq",
        "quiz",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"database":{"managed":{"storage":"3Gi"}}}}',
    )
    wait_for(
        lambda: (
            cluster.get_json("pvc", "data-quiz-postgres-0", "-n", namespace)["spec"]["resources"][
                "requests"
            ]["storage"]
            == "3Gi"
        ),
        timeout=60,
        message="the PostgreSQL PVC to request 3Gi",
    )
    # The StatefulSet's claim template is immutable and keeps the size it was created with.
    sts = cluster.get_json("statefulset", "quiz-postgres", "-n", namespace)
    template = sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    assert template["storage"] == "1Gi"
    pq = wait_for_phase(cluster, namespace, "quiz", "Ready")
    assert condition(pq, "Degraded")["status"] == "False"
