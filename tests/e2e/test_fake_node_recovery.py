"""The fake node gets over missed heartbeats the way a kubelet's node does, and so do its pods.

Under load kwok can miss the node's heartbeats; the node lifecycle controller then marks the
node NotReady and every pod on it not Ready. Once the node is back, its running pods must turn
Ready again, or every later test waiting for a rollout on this plane hangs.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from .kube import Cluster, wait_for

TAINT = {"key": "partyquiz.dev/recovery-test", "value": "only", "effect": "NoSchedule"}


def ready(obj: dict[str, Any]) -> str | None:
    conditions = obj.get("status", {}).get("conditions") or []
    return next((c["status"] for c in conditions if c["type"] == "Ready"), None)


@pytest.fixture
def node(cluster: Cluster) -> Iterator[str]:
    """A fake node of its own (tainted: nothing else lands on it), removed afterwards."""
    name = f"kwok-recovery-{secrets.token_hex(3)}"
    manifest = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "type": "kwok"},
        },
        "spec": {"taints": [TAINT]},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        cluster.wait(f"node/{name}", "condition=Ready", None, timeout=120)
        yield name
    finally:
        cluster.kubectl("delete", "node", name, "--ignore-not-found", "--wait=false")


def patch_status(cluster: Cluster, what: list[str], conditions: list[dict[str, str]]) -> None:
    patch = json.dumps({"status": {"conditions": conditions}})
    cluster.kubectl("patch", *what, "--subresource=status", "--type=strategic", "-p", patch)


def test_pods_marked_not_ready_while_the_node_was_unreachable_turn_ready_again(
    cluster: Cluster, namespace: str, node: str
) -> None:
    # Tolerating the taints of an unreachable node keeps the pod from being evicted meanwhile.
    tolerations = [
        {"key": TAINT["key"], "operator": "Exists"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {
            "nodeName": node,
            "tolerations": tolerations,
            "containers": [{"name": "web", "image": "registry.invalid/web:1"}],
        },
    }
    cluster.apply(pod, namespace)
    cluster.wait("pod/web", "condition=Ready", namespace, timeout=60)

    # What the node lifecycle controller writes when the heartbeats stop.
    patch_status(
        cluster,
        ["node", node],
        [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}],
    )
    patch_status(
        cluster,
        ["pod", "web", "-n", namespace],
        [{"type": "Ready", "status": "False", "reason": "NodeNotReady"}],
    )

    wait_for(
        lambda: ready(cluster.get_json("node", node)) == "True",
        timeout=60,
        message="the node to be Ready again",
    )
    wait_for(
        lambda: ready(cluster.get_json("pod", "web", "-n", namespace)) == "True",
        timeout=60,
        message="the pod to be Ready again",
    )
    running = cluster.get_json("pod", "web", "-n", namespace)
    assert running["status"]["phase"] == "Running"
