"""Harness for the real-node tier: the node's scripts, its images, pods and port-forwards.

Owns the test-side handle on a real node (`RealNode`: the `tests.e2e.kube.Cluster` handle plus
what only a real node has: its network namespace, cgroup root and image import), the places a
run keeps its state (derived from PARTYQUIZ_CLUSTER_DIR / PARTYQUIZ_CLUSTER_PORT_BASE so
concurrent runs never meet), and small helpers that run a pod to completion or forward a
port. It starts nothing at import; conftest.py's fixtures drive hack/cluster/*.sh.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.kube import Cluster, wait_for

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPTS = REPO / "hack" / "cluster"
IMAGE_SCRIPTS = REPO / "hack" / "images"
CACHE = Path(
    os.environ.get("PARTYQUIZ_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "partyquiz"
)
# The tier's node sits beside the kwok plane of the same run (the e2e tier may still hold it):
# its own state dir and a port base this far above the run's.
NODE_PORT_OFFSET = 500
# A second node, started while the first runs, to prove two runs do not meet.
SECOND_NODE_PORT_OFFSET = 700
STATUS_NOT_RUNNING = 3
APP_UID = 10001


def run_base() -> tuple[Path, int]:
    """The state dir and port base of this run (what the kwok plane of the e2e tier uses)."""
    state = os.environ.get("PARTYQUIZ_CLUSTER_DIR") or str(CACHE / "cluster" / "run")
    base = int(os.environ.get("PARTYQUIZ_CLUSTER_PORT_BASE") or "17000")
    return Path(state), base


def node_location(offset: int = NODE_PORT_OFFSET, suffix: str = "node") -> tuple[Path, int]:
    """The state dir and port base of a real node of this run."""
    state, base = run_base()
    return state.with_name(f"{state.name}-{suffix}"), base + offset


def script_env(state_dir: Path, port_base: int) -> dict[str, str]:
    return {
        **os.environ,
        "PARTYQUIZ_CLUSTER_DIR": str(state_dir),
        "PARTYQUIZ_CLUSTER_PORT_BASE": str(port_base),
        "PARTYQUIZ_CLUSTER_NODE": "real",
    }


def run_script(
    path: Path, *args: str, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env),
        check=False,
    )


def archive_path(image: str) -> Path:
    """Where hack/images/archive.sh keeps the OCI archive of ``image``."""
    return CACHE / "images" / "oci" / (image.replace("/", "_").replace(":", "_") + ".oci.tar")


class ScriptFailed(AssertionError):
    """A hack/ script exited non-zero; the message carries its output."""

    def __init__(self, what: str, result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"{what} exited {result.returncode}\nstdout:\n{result.stdout[-4000:]}\n"
            f"stderr:\n{result.stderr[-6000:]}"
        )


@dataclass(frozen=True)
class RealNode:
    """A running real node and its control plane.

    Attributes:
        cluster: kubectl/helm/apply/wait through the host's loopback port (tests.e2e.kube).
        env: the environment hack/cluster/*.sh need to act on this node.
        netns, cgroup_root, node_dir: what the node holds on the host (hack/cluster/node/lib.sh).
    """

    cluster: Cluster
    env: Mapping[str, str]
    netns: str
    cgroup_root: str
    node_dir: Path

    @classmethod
    def start(cls, state_dir: Path, port_base: int, *, timeout: float = 300) -> RealNode:
        """Start (or reuse) the real node at ``state_dir``/``port_base`` and return its handle."""
        env = script_env(state_dir, port_base)
        up = run_script(CLUSTER_SCRIPTS / "up.sh", env=env, timeout=timeout)
        if up.returncode != 0:
            # The host gets back what the failed start made (network namespace, mounts,
            # cgroups); the logs stay for the report.
            run_script(CLUSTER_SCRIPTS / "down.sh", env=env, timeout=180)
            raise ScriptFailed("hack/cluster/up.sh (real node)", up)
        return cls.attach(env)

    @classmethod
    def attach(cls, env: Mapping[str, str]) -> RealNode:
        status = run_script(CLUSTER_SCRIPTS / "status.sh", "--env", env=env, timeout=30)
        if status.returncode != 0:
            raise ScriptFailed("hack/cluster/status.sh --env", status)
        values = dict(line.split("=", 1) for line in status.stdout.splitlines() if "=" in line)
        return cls(
            cluster=Cluster.from_env_lines(status.stdout),
            env=dict(env),
            netns=values["NETNS"],
            cgroup_root=values["CGROUP_ROOT"],
            node_dir=Path(values["NODE_DIR"]),
        )

    def stop(self, *, purge: bool = False, timeout: float = 180) -> None:
        args = ("--purge",) if purge else ()
        down = run_script(CLUSTER_SCRIPTS / "down.sh", *args, env=self.env, timeout=timeout)
        if down.returncode != 0:
            raise ScriptFailed("hack/cluster/down.sh (real node)", down)

    def healthy(self) -> bool:
        status = run_script(CLUSTER_SCRIPTS / "status.sh", env=self.env, timeout=60)
        return status.returncode == 0

    def load_images(self, *images: str) -> None:
        """Import images into the node's containerd from their OCI archives (no-op if there)."""
        archives = [str(archive_path(image)) for image in images]
        result = run_script(
            CLUSTER_SCRIPTS / "node" / "images.sh", *archives, env=self.env, timeout=600
        )
        if result.returncode != 0:
            raise ScriptFailed("hack/cluster/node/images.sh", result)

    def tag_image(self, image: str, tag: str) -> None:
        """Give an image on the node a second name, as a registry would serve a new tag."""
        result = run_script(
            CLUSTER_SCRIPTS / "node" / "images.sh", "--tag", image, tag, env=self.env, timeout=60
        )
        if result.returncode != 0:
            raise ScriptFailed("hack/cluster/node/images.sh --tag", result)

    def in_netns(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a host binary inside the node's network namespace (where pods' IPs route)."""
        return subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.netns}", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


# --- pods ---------------------------------------------------------------------------------


def restricted_security(uid: int = APP_UID) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pod and container security contexts that meet Pod Security "restricted"."""
    pod = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    return pod, container


def pod_manifest(
    name: str,
    image: str,
    command: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    uid: int = APP_UID,
    restart: str = "Never",
) -> dict[str, Any]:
    """A restricted pod running ``command`` from ``image`` (already on the node)."""
    pod_security, container_security = restricted_security(uid)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {
            "restartPolicy": restart,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": pod_security,
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": list(command),
                    "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                    "securityContext": container_security,
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
        },
    }


def pod_phase(cluster: Cluster, namespace: str, name: str) -> str:
    pod = cluster.get_json("pod", name, "-n", namespace)
    return str(pod.get("status", {}).get("phase", ""))


def wait_finished(
    cluster: Cluster, namespace: str, name: str, *, timeout: float
) -> tuple[str, str]:
    """Wait until a pod has run to the end; return (phase, log)."""
    phase = wait_for(
        lambda: (p := pod_phase(cluster, namespace, name)) in ("Succeeded", "Failed") and p,
        timeout=timeout,
        interval=0.5,
        message=lambda: (
            f"pod {namespace}/{name} to finish: {describe_pod(cluster, namespace, name)}"
        ),
    )
    log = cluster.kubectl("logs", "-n", namespace, name, check=False).stdout
    return str(phase), log


def delete_pod(cluster: Cluster, namespace: str, name: str) -> None:
    cluster.kubectl(
        "delete", "pod", name, "-n", namespace, "--wait=false", "--ignore-not-found", check=False
    )


def run_to_completion(
    cluster: Cluster, namespace: str, manifest: Mapping[str, Any], *, timeout: float
) -> tuple[str, str]:
    """Create a pod, wait until it has run to the end; return (phase, log). Deletes it after."""
    name = manifest["metadata"]["name"]
    cluster.apply(manifest, namespace)
    try:
        return wait_finished(cluster, namespace, name, timeout=timeout)
    finally:
        delete_pod(cluster, namespace, name)


def describe_pod(cluster: Cluster, namespace: str, name: str) -> str:
    result = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return result.stderr.strip()
    status = json.loads(result.stdout).get("status", {})
    return json.dumps(
        {
            "phase": status.get("phase"),
            "conditions": status.get("conditions"),
            "containers": status.get("containerStatuses"),
        }
    )[:3000]


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@contextlib.contextmanager
def port_forward(cluster: Cluster, namespace: str, target: str, port: int) -> Iterator[int]:
    """Forward a free loopback port to ``target`` (``svc/x`` or ``pod/x``); yield the port."""
    argv = [
        str(cluster.kubectl), "--kubeconfig", str(cluster.kubeconfig), "port-forward",
        "-n", namespace, "--address", "127.0.0.1", target, f":{port}",
    ]  # fmt: skip
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            yield _forwarded_port(process, target)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _forwarded_port(process: subprocess.Popen[str], target: str) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1))
        if not line and process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"kubectl port-forward {target} exited: {stderr}")
    raise AssertionError(f"kubectl port-forward {target} did not start within 60 s")
