"""Harness for operator e2e tests: the operator process, chart rendering, volumes and waits.

Owns the operator process (started from this checkout with a kubeconfig holding a
token of the chart's ServiceAccount, so RBAC is exactly what the chart grants), its metrics,
and helpers that provide volumes and wait on PartyQuiz status. Fixtures live in conftest.py.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.kube import Cluster, wait_for

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "partyquiz-operator"
EXAMPLES = REPO / "examples"
# Unique per test session, so concurrent sessions on one plane never share (or tear down)
# each other's RBAC.
SESSION = secrets.token_hex(3)
OPERATOR_NAMESPACE = f"partyquiz-operator-e2e-{SESSION}"
RELEASE = f"pq{SESSION}"
SERVICE_ACCOUNT = f"{RELEASE}-partyquiz-operator"
RESYNC_SECONDS = 5.0
WRITE_VERBS = ("apply", "create", "patch", "update", "delete")
# What the chart installs outside its namespace (tests remove these again).
CLUSTER_SCOPED = (
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def render_chart(cluster: Cluster, namespace: str, *values: str) -> list[dict[str, Any]]:
    """Return the chart's objects rendered by `helm template` (CRDs included)."""
    args = ["template", RELEASE, str(CHART), "-n", namespace, "--include-crds"]
    args += ["--kube-version", cluster.version]
    for value in values:
        args += ["--set", value]
    rendered = cluster.helm(*args).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


@dataclass
class OperatorProcess:
    """The operator under test, run from this checkout as the chart's ServiceAccount."""

    kubeconfig: Path
    log_path: Path
    metrics_port: int = field(default_factory=_free_port)
    health_port: int = field(default_factory=_free_port)
    namespaces: tuple[str, ...] = ()
    resync_seconds: float = RESYNC_SECONDS
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the operator and wait until its liveness endpoint answers."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "partyquiz_operator",
                "run",
                *(
                    [arg for ns in self.namespaces for arg in ("--namespace", ns)]
                    if self.namespaces
                    else ["--all-namespaces"]
                ),
                "--kubeconfig",
                str(self.kubeconfig),
                "--metrics-port",
                str(self.metrics_port),
                "--health-port",
                str(self.health_port),
                "--resync-seconds",
                str(self.resync_seconds),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
            cwd=REPO,
        )
        log.close()
        wait_for(self._healthy, timeout=60, message=self._describe)

    def _healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"operator exited: {self._describe()}")
        try:
            with urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (URLError, OSError):
            return False

    def _describe(self) -> str:
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        return f"operator log tail:\n{tail}"

    def kill(self) -> None:
        """SIGKILL the operator (no graceful shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM the operator and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Return every sample of /metrics keyed by (name, sorted labels)."""
        with urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def writes(self) -> float:
        """Return how many mutating API requests the reconciler made so far."""
        return sum(
            value
            for (name, labels), value in self.metrics().items()
            if name == "partyquiz_operator_kube_api_requests_total"
            and dict(labels).get("verb") in WRITE_VERBS
        )

    def wait_passes(self, count: int) -> None:
        """Wait until ``count`` more reconcile passes have finished."""
        start = self.passes()
        wait_for(
            lambda: self.passes() >= start + count,
            timeout=RESYNC_SECONDS * count * 4 + 30,
            message=f"{count} more reconcile passes",
        )

    def log_mentions(self, text: str) -> int:
        """Return how many lines of the operator's log contain ``text``."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return sum(text in line for line in lines)

    def passes(self) -> float:
        """Return how many reconcile passes finished so far (any handler, any result)."""
        return sum(
            value
            for (name, _), value in self.metrics().items()
            if name == "partyquiz_operator_reconcile_total"
        )


def provide_volumes(cluster: Cluster, namespace: str, claims: list[str]) -> list[str]:
    """Create PersistentVolumes pre-bound to ``claims`` (this plane has no provisioner)."""
    names = []
    for claim in claims:
        name = f"{namespace}-{claim}"[:63]
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {"partyquiz.dev/e2e": "true"}},
                "spec": {
                    "capacity": {"storage": "50Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": f"/tmp/{name}"},
                    "claimRef": {"namespace": namespace, "name": claim},
                },
            },
            namespace,
        )
        names.append(name)
    return names


def get_pq(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """Return the PartyQuiz as JSON."""
    result: dict[str, Any] = cluster.get_json("partyquiz", name, "-n", namespace)
    return result


def wait_for_phase(
    cluster: Cluster, namespace: str, name: str, phase: str, timeout: float = 120
) -> dict[str, Any]:
    """Wait until the PartyQuiz reports ``phase`` for its current generation; return it."""
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal last
        last = get_pq(cluster, namespace, name)
        st = last.get("status", {})
        current = st.get("observedGeneration") == last["metadata"]["generation"]
        return last if current and st.get("phase") == phase else None

    def describe() -> str:
        status = json.dumps(last.get("status"))
        return f"PartyQuiz {namespace}/{name} phase {phase}; last status: {status}"

    return wait_for(reached, timeout=timeout, interval=0.5, message=describe)


def condition(pq: dict[str, Any], type_: str) -> dict[str, Any]:
    """Return the condition of ``type_`` from a PartyQuiz body."""
    return next(c for c in pq["status"]["conditions"] if c["type"] == type_)


def load_example(name: str) -> list[dict[str, Any]]:
    """Return the documents of ``examples/<name>``."""
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


# The smallest PartyQuiz the API server accepts; tests change one part of it at a time.
MINIMAL: dict[str, Any] = {
    "apiVersion": "partyquiz.dev/v1alpha1",
    "kind": "PartyQuiz",
    "metadata": {"name": "quiz"},
    "spec": {"version": "1.4.0", "database": {"managed": {}}, "redis": {"managed": {}}},
}


def with_spec(**changes: Any) -> dict[str, Any]:
    """Return a copy of MINIMAL with ``changes`` set in its spec."""
    manifest = copy.deepcopy(MINIMAL)
    manifest["spec"].update(changes)
    return manifest


def assert_refused_at_admission(
    cluster: Cluster, namespace: str, manifest: dict[str, Any], message: str
) -> None:
    """Assert that a server-side dry run of ``manifest`` is refused, saying ``message``."""
    result = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "--dry-run=server",
        "-f",
        "-",
        input=json.dumps(manifest),
        check=False,
    )
    assert result.returncode != 0, f"accepted: {json.dumps(manifest)}"
    assert message in result.stderr, result.stderr
