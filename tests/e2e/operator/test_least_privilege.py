"""The chart's account holds exactly the rights the operator uses, and no Secret but its own.

The whole lifecycle (create, upgrade with backups, scaling, delete with and without kept data)
runs as this account in the other operator tests; these check that nothing broader is granted
than those tests needed, and that the admission policy keeps the Secret rights to the
operator's own Secrets.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.kube import Cluster

Rights = set[tuple[str, str, str]]

# (API group, resource, verb) the operator's account is granted beyond any account's own.
# Secrets: read by name, written by server-side apply; never listed, watched or deleted.
EXPECTED: Rights = {
    *(("partyquiz.dev", "partyquizzes", v) for v in ("list", "watch", "patch")),
    ("partyquiz.dev", "partyquizzes/status", "patch"),
    ("partyquiz.dev", "partyquizzes/finalizers", "update"),
    *(("", "secrets", v) for v in ("get", "create", "patch")),
    *(
        (group, resource, verb)
        for group, resource in (
            ("", "services"),
            ("", "serviceaccounts"),
            ("policy", "poddisruptionbudgets"),
            ("networking.k8s.io", "networkpolicies"),
        )
        for verb in ("get", "list", "watch", "create", "patch")
    ),
    *(
        (group, resource, verb)
        for group, resource in (
            ("", "persistentvolumeclaims"),
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("batch", "jobs"),
            ("batch", "cronjobs"),
            ("networking.k8s.io", "ingresses"),
            ("autoscaling", "horizontalpodautoscalers"),
        )
        for verb in ("get", "list", "watch", "create", "patch", "delete")
    ),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "events", "create"),
    *(
        ("monitoring.coreos.com", resource, verb)
        for resource in ("servicemonitors", "prometheusrules")
        for verb in ("get", "create", "patch", "delete")
    ),
}
MANAGED = {"app.kubernetes.io/managed-by": "partyquiz-operator"}


def granted(cluster: Cluster, kubeconfig: Path, namespace: str) -> Rights:
    """Return what the kubeconfig's account may do in ``namespace``, as the API server says."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    answer = cluster.kubectl(
        "--kubeconfig",
        str(kubeconfig),
        "create",
        "--validate=false",
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(review),
    )
    rights: Rights = set()
    for rule in json.loads(answer.stdout)["status"]["resourceRules"]:
        assert not rule.get("resourceNames"), rule
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                rights |= {(group, resource, verb) for verb in rule["verbs"]}
    return rights


def as_operator(
    cluster: Cluster, kubeconfig: Path, namespace: str, *args: str, manifest: object = None
) -> tuple[int, str]:
    """Run kubectl as the operator's account; return its exit code and error output."""
    data = None if manifest is None else json.dumps(manifest)
    done = cluster.kubectl(
        "--kubeconfig", str(kubeconfig), "-n", namespace, *args, input=data, check=False
    )
    return done.returncode, done.stderr


def secret(
    name: str, labels: dict[str, str], *, type_: str = "Opaque", account: str | None = None
) -> dict[str, object]:
    """Return a Secret manifest; ``account``: a token Secret of that ServiceAccount."""
    meta: dict[str, object] = {"name": name, "labels": labels}
    if account is not None:
        meta["annotations"] = {"kubernetes.io/service-account.name": account}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": type_}


def test_the_operators_account_is_granted_exactly_what_the_operator_uses(
    cluster: Cluster, operator_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    # What every authenticated account may do (reviews, discovery) is not the chart's grant.
    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    nobody = cluster.service_account_kubeconfig(namespace, "nobody", tmp_path / "nobody")
    everyone = granted(cluster, nobody, namespace)

    rights = granted(cluster, operator_kubeconfig, namespace) - everyone

    assert rights == EXPECTED
    # The same holds where the operator runs nothing, kube-system included (cluster-wide mode).
    assert granted(cluster, operator_kubeconfig, "kube-system") - everyone == EXPECTED


def test_the_operators_account_writes_only_its_own_secrets_and_never_a_token(
    cluster: Cluster, operator_kubeconfig: Path, namespace: str
) -> None:
    create = ("create", "--dry-run=server", "-f", "-")
    own = secret("quiz-credentials", MANAGED)
    assert as_operator(cluster, operator_kubeconfig, namespace, *create, manifest=own) == (0, "")

    code, error = as_operator(
        cluster, operator_kubeconfig, namespace, *create, manifest=secret("others", {})
    )
    assert code != 0
    assert "writes only Secrets labelled" in error

    # A token Secret would give the operator the rights of any account, even labelled as its own.
    for where in (namespace, "kube-system"):
        token = secret(
            "minted", MANAGED, type_="kubernetes.io/service-account-token", account="default"
        )
        code, error = as_operator(cluster, operator_kubeconfig, where, *create, manifest=token)
        assert code != 0, where
        assert "never writes ServiceAccount token Secrets" in error

    # A user's Secret (an external database's URL, say) cannot be taken over by labelling it.
    cluster.apply(secret("stores", {}), namespace)
    code, error = as_operator(
        cluster, operator_kubeconfig, namespace, "label", "secret", "stores",
        "app.kubernetes.io/managed-by=partyquiz-operator",
    )  # fmt: skip
    assert code != 0
    assert "writes only Secrets labelled" in error
    code, _ = as_operator(cluster, operator_kubeconfig, namespace, "get", "secrets")
    assert code != 0  # and it cannot list them either
