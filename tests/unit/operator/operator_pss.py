"""A checker for the Pod Security Standard "restricted" (v1.36 rules), for unit tests.

Owns the rule list only; it reads pod specs as dicts and never talks to a cluster. The e2e
tests cross-check it against the API server's own PodSecurity admission.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})


def restricted_violations(pod_spec: Mapping[str, Any]) -> list[str]:
    """Return every way ``pod_spec`` breaks Pod Security "restricted" (empty when it meets it)."""
    problems: list[str] = []
    pod_sc = pod_spec.get("securityContext", {}) or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(flag):
            problems.append(f"{flag} is set")
    for volume in pod_spec.get("volumes", []) or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']} uses {sorted(kinds)}")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    containers = [
        *(pod_spec.get("initContainers") or []),
        *(pod_spec.get("containers") or []),
        *(pod_spec.get("ephemeralContainers") or []),
    ]
    for container in containers:
        name = container.get("name", "?")
        sc = container.get("securityContext", {}) or {}
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{name}: capabilities do not drop ALL")
        added = set(caps.get("add") or [])
        if not added <= ALLOWED_ADDED_CAPABILITIES:
            problems.append(f"{name}: adds capabilities {sorted(added)}")
        run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if run_as_non_root is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile is {seccomp!r}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
    return problems


def hardening_violations(pod_spec: Mapping[str, Any]) -> list[str]:
    """Return breaches of the project's rules beyond "restricted" (read-only root, numeric uid)."""
    problems: list[str] = []
    pod_sc = pod_spec.get("securityContext", {}) or {}
    if pod_spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken is not false")
    for container in pod_spec.get("containers") or []:
        sc = container.get("securityContext", {}) or {}
        name = container.get("name", "?")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if not isinstance(uid, int) or uid <= 0:
            problems.append(f"{name}: runAsUser is not a numeric non-root uid")
        mounts = {m["mountPath"] for m in container.get("volumeMounts") or []}
        if "/tmp" not in mounts:
            problems.append(f"{name}: no writable /tmp")
        if not (container.get("resources") or {}).get("requests"):
            problems.append(f"{name}: no resource requests")
        if not (container.get("resources") or {}).get("limits"):
            problems.append(f"{name}: no resource limits")
    return problems
