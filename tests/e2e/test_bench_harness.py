"""B5's harness on the plane: a count starts only once the previous count's namespace is gone."""

from __future__ import annotations

import threading

from bench.operator_bench import retire

from tests.e2e.operator.harness import provide_volumes

from .kube import Cluster, wait_for

HOLD = "partyquiz.dev/e2e-hold"


def _exists(cluster: Cluster, *resource: str) -> bool:
    found = cluster.kubectl("get", *resource, "--ignore-not-found", "-o", "name")
    return bool(found.stdout.strip())


def test_b5_retires_a_namespace_only_once_it_and_its_volumes_are_gone(
    cluster: Cluster, namespace: str
) -> None:
    (volume,) = provide_volumes(cluster, namespace, ["data"])
    # Something in the namespace that its deletion has to wait for, as it waits for the
    # PartyQuiz objects' clean-up and their children in a measurement.
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "held", "finalizers": [HOLD]},
        },
        namespace,
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            retire(cluster, namespace, [volume], timeout=120)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    retiring = threading.Thread(target=run, name="retire", daemon=True)
    retiring.start()
    try:
        wait_for(
            lambda: cluster.get_json("configmap", "held", "-n", namespace)["metadata"].get(
                "deletionTimestamp"
            ),
            timeout=120,
            message=f"the namespace controller deleting configmap/held in {namespace}",
        )
        assert _exists(cluster, "namespace", namespace)
        assert retiring.is_alive(), "retire returned while the namespace was still terminating"
    finally:
        cluster.kubectl(
            "patch",
            "configmap",
            "held",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )
    retiring.join(timeout=300)
    assert not retiring.is_alive()
    assert errors == []
    assert not _exists(cluster, "namespace", namespace)
    assert not _exists(cluster, "persistentvolume", volume)
