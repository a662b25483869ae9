"""Run one container of a pod the operator renders with podman, the way a kubelet would.

Owns the translation of a rendered pod spec into podman flags: the image with its `command`
(entrypoint) and `args` ($(VAR) references expanded from the container's env), env values and
Secret references resolved from a mapping, the security context (user, group, fsGroup,
read-only root with no other writable path, no capabilities, no privilege escalation),
emptyDirs as tmpfs and claims as podman volumes, and exec probes run with `podman exec`. The
network is a namespace of the test's own. It knows nothing about PostgreSQL or Redis.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.images.podman import PodmanError, podman, wait_for
from tests.netns import NetworkNamespace

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
ULIMITS = ("--ulimit", "nofile=1024:4096", "--ulimit", "nproc=1024:2048")


def pod_spec(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec inside a StatefulSet, Deployment, Job or CronJob manifest."""
    spec = manifest["spec"]
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def only_container(spec: Mapping[str, Any]) -> dict[str, Any]:
    (container,) = spec["containers"]
    return dict(container)


@dataclass(frozen=True)
class RenderedPod:
    """One container of a rendered pod, with what podman needs to run it here."""

    spec: dict[str, Any]  # the pod spec
    secrets: Mapping[str, str]  # Secret key -> value, for secretKeyRef
    claims: Mapping[str, str]  # pod volume name -> podman volume name
    env_overrides: Mapping[str, str] = field(default_factory=dict)

    @property
    def container(self) -> dict[str, Any]:
        return only_container(self.spec)

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for item in self.container.get("env", []):
            if "value" in item:
                values[item["name"]] = str(item["value"])
            else:
                values[item["name"]] = self.secrets[item["valueFrom"]["secretKeyRef"]["key"]]
        values.update(dict(self.env_overrides))
        return values

    def _expand(self, words: Sequence[str]) -> list[str]:
        env = self.env()
        return [_VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), word) for word in words]

    def _user_args(self) -> list[str]:
        context = {**self.spec.get("securityContext", {}), **self.container["securityContext"]}
        args = ["--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
        if "fsGroup" in self.spec.get("securityContext", {}):
            args += ["--group-add", str(self.spec["securityContext"]["fsGroup"])]
        assert context["runAsNonRoot"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        if context.get("readOnlyRootFilesystem"):
            # Only what the pod mounts is writable: none of podman's own tmpfs on /run, /tmp.
            args += ["--read-only", "--read-only-tmpfs=false"]
        return [*args, "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]

    def _mount_args(self) -> list[str]:
        volumes = {volume["name"]: volume for volume in self.spec.get("volumes", [])}
        args: list[str] = []
        for mount in self.container.get("volumeMounts", []):
            name, path = mount["name"], mount["mountPath"]
            if name in self.claims:
                # :U gives the volume to the container's user, as fsGroup does for a claim.
                args += ["--volume", f"{self.claims[name]}:{path}:U"]
            elif "emptyDir" in volumes.get(name, {}):
                args += ["--tmpfs", f"{path}:rw,nosuid,nodev,mode=1777"]
            else:
                raise AssertionError(f"no stand-in for volume {name!r} mounted at {path}")
        return args

    def run_args(self, namespace: NetworkNamespace, name: str) -> list[str]:
        """`podman run` flags and the command line; the caller adds --detach or --rm."""
        container = self.container
        entry: list[str] = []
        if "command" in container:
            entry = ["--entrypoint", json.dumps(self._expand(container["command"]))]
        env_args = [arg for key, value in self.env().items() for arg in ("--env", f"{key}={value}")]
        return [
            "--name", name, "--network", f"ns:{namespace.path}", *ULIMITS,
            *self._user_args(), *self._mount_args(), *env_args, *entry,
            container["image"], *self._expand(container.get("args", [])),
        ]  # fmt: skip


@dataclass
class Running:
    name: str
    pod: RenderedPod

    def exec(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        env_args = [
            arg for key, value in (env or {}).items() for arg in ("--env", f"{key}={value}")
        ]
        return podman("exec", *env_args, self.name, *args, timeout=timeout, check=False)

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def is_running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def wait_ready(self, timeout: float) -> None:
        """Wait for the container's readiness probe (an exec probe) to pass."""
        command = self.pod.container["readinessProbe"]["exec"]["command"]

        def ready() -> bool:
            if not self.is_running():
                raise PodmanError(f"{self.name} stopped before it was ready:\n{self.logs()}")
            return bool(self.exec(*command, timeout=30).returncode == 0)

        try:
            wait_for(ready, timeout, f"{self.name}'s readiness probe", interval=0.5)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.logs()[-3000:]}") from None

    def stop(self, grace_seconds: int = 60) -> int:
        """Stop it with the image's STOPSIGNAL; return its exit code."""
        podman("stop", "--time", str(grace_seconds), self.name, timeout=grace_seconds + 60)
        state = podman("inspect", "--format", "{{.State.ExitCode}}", self.name)
        return int(state.stdout.strip())


@contextlib.contextmanager
def running_pod(pod: RenderedPod, namespace: NetworkNamespace) -> Iterator[Running]:
    """Start the pod's container in the background; removed on exit, whatever happened."""
    name = f"pq-images-pod-{uuid.uuid4().hex[:8]}"
    podman("run", "--detach", *pod.run_args(namespace, name))
    try:
        yield Running(name, pod)
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def run_pod_to_completion(
    pod: RenderedPod, namespace: NetworkNamespace, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the pod's container until it exits (a Job's pod); return podman's result."""
    name = f"pq-images-job-{uuid.uuid4().hex[:8]}"
    try:
        return podman("run", *pod.run_args(namespace, name), timeout=timeout, check=False)
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


@contextlib.contextmanager
def podman_volume(prefix: str = "pq-images") -> Iterator[str]:
    """A new, empty podman volume; removed on exit."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", name)
    try:
        yield name
    finally:
        podman("volume", "rm", "--force", name, check=False)
