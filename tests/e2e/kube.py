"""Test-side handle on the local Kubernetes control plane and explicit waits.

Owns the `Cluster` object the e2e fixtures hand out, the `Tool` wrapper that runs kubectl/helm
against its kubeconfig, and `wait_for` polling. Starts and stops nothing itself: the plane's
lifecycle lives in hack/cluster/*.sh, driven by the fixtures in conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PosixPath
from typing import Any, TypeVar

T = TypeVar("T")

#: Label read by the kwok stages in hack/cluster/kwok-stages.yaml; set it on a pod (or a pod
#: template) to choose what the fake node makes of the pod.
BEHAVIOUR_LABEL = "kwok.partyquiz.dev/behaviour"
#: Pod phase ends Failed, exit code 1 (a Job retries, then fails with BackoffLimitExceeded).
BEHAVIOUR_FAIL = "fail"
#: Pod runs but never turns Ready (drives a rollout into ProgressDeadlineExceeded).
BEHAVIOUR_NEVER_READY = "never-ready"
#: Pod runs, containers wait in CrashLoopBackOff and restartCount keeps growing.
BEHAVIOUR_CRASH_LOOP = "crash-loop"


class WaitTimeout(AssertionError):
    """A condition did not hold within its deadline."""


class CommandFailed(AssertionError):
    """kubectl or helm exited non-zero; carries its output so the test report shows why."""

    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )


def wait_for(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Poll `predicate` until it returns something truthy and return that value.

    Raises `WaitTimeout` naming `message` (a string, or a callable evaluated at timeout so it can
    describe the last observed state) when `timeout` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {text}")
        time.sleep(interval)


class Tool(PosixPath):
    """Path of kubectl or helm that can also be called to run it against the cluster.

    `cluster.kubectl` is a `Path` (pass it to subprocess yourself, check `.exists()`), and
    `cluster.kubectl("get", "pods", "-n", ns)` runs it with KUBECONFIG set and returns the
    `CompletedProcess` (text mode). With `check=True` (default) a non-zero exit raises
    `CommandFailed` carrying stdout/stderr. Paths derived from it (`.parent`, `/`) are plain
    paths and cannot be called.
    """

    _env: Mapping[str, str] | None = None

    @classmethod
    def bound(cls, path: Path, env: Mapping[str, str]) -> Tool:
        tool = cls(path)
        tool._env = dict(env)
        return tool

    def __call__(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        if self._env is None:
            raise TypeError(f"{self} is not bound to a cluster")
        argv = [str(self), *args]
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self._env},
            check=False,
        )
        if check and result.returncode != 0:
            raise CommandFailed(argv, result)
        return result


@dataclass(frozen=True)
class Cluster:
    """A running local control plane (kube-apiserver, controller-manager, scheduler, etcd, kwok).

    Attributes:
        kubeconfig: admin kubeconfig (client cert in group system:masters).
        bin_dir: directory holding kube-apiserver, kubectl, helm, etcd, kwok ... of pinned versions.
        state_dir: certs, etcd data, logs/<component>.log, PID files.
        kubectl: `Tool` - a Path, and callable: `cluster.kubectl("get", "nodes")`.
        helm: `Tool` - a Path, and callable: `cluster.helm("install", ...)`.
        server: apiserver URL (https://127.0.0.1:<port>).
        version: pinned Kubernetes version, e.g. "v1.36.3".
        node_name: the kwok fake node every pod is scheduled onto.
    """

    kubeconfig: Path
    bin_dir: Path
    state_dir: Path
    kubectl: Tool
    helm: Tool
    server: str
    version: str
    node_name: str

    @classmethod
    def from_env_lines(cls, text: str) -> Cluster:
        """Build from the KEY=VALUE lines printed by `hack/cluster/status.sh --env`."""
        env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        kubeconfig = Path(env["KUBECONFIG"])
        bin_dir = Path(env["BIN_DIR"])
        tool_env = {"KUBECONFIG": str(kubeconfig)}
        return cls(
            kubeconfig=kubeconfig,
            bin_dir=bin_dir,
            state_dir=Path(env["STATE_DIR"]),
            kubectl=Tool.bound(bin_dir / "kubectl", tool_env),
            helm=Tool.bound(bin_dir / "helm", tool_env),
            server=env["APISERVER_URL"],
            version=env["K8S_VERSION"],
            node_name=env["NODE_NAME"],
        )

    @property
    def ca_cert(self) -> Path:
        """The cluster CA (PEM) that signed the apiserver's serving certificate."""
        return self.state_dir / "pki" / "ca.crt"

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """Write to `path` a kubeconfig that acts as ServiceAccount `namespace/name`.

        The token comes from the TokenRequest API (valid one hour), so RBAC applies exactly as
        it would to a pod running under that account.
        """
        token = self.kubectl("create", "token", name, "-n", namespace, "--duration=1h").stdout
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_cert)},
                }
            ],
            "users": [{"name": f"{namespace}-{name}", "user": {"token": token.strip()}}],
            "contexts": [
                {
                    "name": "sa",
                    "context": {
                        "cluster": "local",
                        "user": f"{namespace}-{name}",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": "sa",
        }
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path

    def get_json(self, *args: str) -> Any:
        """Run `kubectl get <args> -o json` and return the parsed document."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(
        self, manifest: Mapping[str, Any] | Sequence[Mapping[str, Any]], namespace: str
    ) -> None:
        """`kubectl apply` one object or a list of objects (dicts) into `namespace`."""
        items = [manifest] if isinstance(manifest, Mapping) else list(manifest)
        document = {"apiVersion": "v1", "kind": "List", "items": items}
        self.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(document))

    def create_namespace(self, name: str, labels: Mapping[str, str], *, restricted: bool) -> None:
        """Create namespace `name` with `labels` and wait until pods can be created in it.

        With `restricted`, the "restricted" Pod Security Standard is enforced (and warned and
        audited) at its latest version.
        """
        all_labels = dict(labels)
        if restricted:
            for mode in ("enforce", "warn", "audit"):
                all_labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
                all_labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": all_labels},
            },
            name,
        )
        # Pods are refused until the token controller has created the namespace's default account.
        wait_for(
            lambda: (
                self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode
                == 0
            ),
            timeout=30,
            message=f"ServiceAccount default in namespace {name}",
        )

    def wait(
        self, resource: str, condition: str, namespace: str | None, timeout: float = 60
    ) -> None:
        """`kubectl wait --for=<condition> <resource>`, e.g. ("job/x", "condition=Complete")."""
        ns = ["-n", namespace] if namespace else []
        self.kubectl(
            "wait",
            *ns,
            f"--for={condition}",
            resource,
            f"--timeout={timeout:.0f}s",
            timeout=timeout + 30,
        )

    def api_client(self, kubeconfig: Path | None = None) -> Any:
        """A `kubernetes.client.ApiClient` for the admin kubeconfig, or for `kubeconfig`."""
        from kubernetes import config  # imported here: only tests that want it pay for it

        return config.new_client_from_config(config_file=str(kubeconfig or self.kubeconfig))  # type: ignore[no-untyped-call]
