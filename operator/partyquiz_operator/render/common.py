"""What every rendered child shares: the instance, names, labels, owner reference, pod basics.

Owns the naming scheme of children, the recommended labels (selector labels never change), and
the building blocks of pods that meet Pod Security "restricted". Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from partyquiz_operator import api

Manifest = dict[str, Any]

FIELD_MANAGER = "partyquiz-operator"
APP_NAME = "partyquiz"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
REVISION_ANNOTATION = "partyquiz.dev/revision"
REVISION_LABEL = "partyquiz.dev/revision"
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 - a per-pod emptyDir
WEB_PORT = 8000
WS_PORT = 8001
POSTGRES_PORT = 5432
REDIS_PORT = 6379
WS_PATH = "/ws"

COMPONENT_WEB = "web"
COMPONENT_WS = "ws"
COMPONENT_DATABASE = "database"
COMPONENT_CACHE = "cache"
COMPONENT_MIGRATION = "migration"
COMPONENT_BACKUP = "backup"


@dataclass(frozen=True)
class Instance:
    """The identity of a PartyQuiz plus its parsed spec: what every renderer needs."""

    name: str
    namespace: str
    uid: str
    spec: api.PartyQuizSpec
    generation: int = 1


def service_account_name(inst: Instance) -> str:
    """Return the name of the pods' ServiceAccount."""
    return inst.name


def web_name(inst: Instance) -> str:
    """Return the name of the web Deployment, Service, PDB and HPA."""
    return f"{inst.name}-web"


def ws_name(inst: Instance) -> str:
    """Return the name of the game Deployment, Service and PDB."""
    return f"{inst.name}-ws"


def postgres_name(inst: Instance) -> str:
    """Return the name of the PostgreSQL StatefulSet, Service and NetworkPolicy."""
    return f"{inst.name}-postgres"


def redis_name(inst: Instance) -> str:
    """Return the name of the Redis StatefulSet, Service and NetworkPolicy."""
    return f"{inst.name}-redis"


def selector_labels(inst: Instance, component: str) -> dict[str, str]:
    """Return the immutable labels that select a component's pods."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        INSTANCE_LABEL: inst.name,
        COMPONENT_LABEL: component,
    }


def common_labels(inst: Instance, component: str) -> dict[str, str]:
    """Return the full recommended label set of a child (selector labels plus the rest)."""
    return {
        **selector_labels(inst, component),
        "app.kubernetes.io/part-of": APP_NAME,
        MANAGED_BY_LABEL: FIELD_MANAGER,
    }


def owner_reference(inst: Instance) -> dict[str, Any]:
    """Return the controller owner reference pointing at the PartyQuiz."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": inst.name,
        "uid": inst.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    inst: Instance,
    name: str,
    component: str,
    *,
    annotations: Mapping[str, str] | None = None,
    owned: bool = True,
) -> dict[str, Any]:
    """Return a child's metadata: name, namespace, labels and (unless kept) the owner."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": inst.namespace,
        "labels": common_labels(inst, component),
    }
    if owned:
        meta["ownerReferences"] = [owner_reference(inst)]
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def pod_security_context(uid: int) -> dict[str, Any]:
    """Return a pod security context that meets Pod Security "restricted"."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(uid: int) -> dict[str, Any]:
    """Return a container security context that meets Pod Security "restricted"."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(value: api.Resources) -> dict[str, Any]:
    """Return the container resources of ``value`` as the API takes them."""
    return value.model_dump(by_alias=True, exclude_none=True, mode="json")


def empty_dir(name: str, size: str = "64Mi") -> dict[str, Any]:
    """Return an emptyDir volume capped at ``size``."""
    return {"name": name, "emptyDir": {"sizeLimit": size}}


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    """Return an env var read from ``key`` of Secret ``secret``."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def http_probes(port: str) -> dict[str, Any]:
    """Return startup (/healthz), readiness (/readyz) and liveness (/healthz) probes."""
    return {
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": port},
            "periodSeconds": 2,
            "failureThreshold": 60,
            "timeoutSeconds": 2,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": port},
            "periodSeconds": 5,
            "failureThreshold": 3,
            "timeoutSeconds": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": port},
            "periodSeconds": 10,
            "failureThreshold": 3,
            "timeoutSeconds": 2,
        },
    }


def exec_probes(command: list[str], *, startup_failures: int, alive: list[str]) -> dict[str, Any]:
    """Return probes running commands: ``command`` says ready, ``alive`` that the process lives.

    Startup and liveness ask only whether the process answers, so a long recovery is never
    killed; readiness asks whether it serves.
    """
    ready = {"exec": {"command": command}}
    answers = {"exec": {"command": alive}}
    return {
        "startupProbe": {
            **answers,
            "periodSeconds": 2,
            "failureThreshold": startup_failures,
            "timeoutSeconds": 5,
        },
        "readinessProbe": {**ready, "periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 5},
        "livenessProbe": {
            **answers,
            "periodSeconds": 15,
            "failureThreshold": 4,
            "timeoutSeconds": 5,
        },
    }


def pod_spec(
    inst: Instance,
    containers: list[dict[str, Any]],
    *,
    uid: int,
    volumes: list[dict[str, Any]],
    grace_seconds: int,
) -> dict[str, Any]:
    """Return a pod spec: the instance's account without a token, restricted security."""
    return {
        "serviceAccountName": service_account_name(inst),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(uid),
        "terminationGracePeriodSeconds": grace_seconds,
        "containers": containers,
        "volumes": volumes,
    }
