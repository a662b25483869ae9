"""Pure builders: one function per child object of a PartyQuiz, typed spec in, manifest dict out.

Owns names, labels, selectors, pod templates (probes, resources, restricted pod security) and
the revision hash. Time and randomness come in as arguments. It must not do I/O, read the clock
or the environment, or import kopf or the Kubernetes client.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from partyquiz_operator import api

Manifest = dict[str, Any]

FIELD_MANAGER = "partyquiz-operator"
APP_NAME = "partyquiz"
REVISION_ANNOTATION = "partyquiz.dev/revision"
REVISION_LABEL = "partyquiz.dev/revision"

WEB_PORT = 8000
WS_PORT = 8001
POSTGRES_PORT = 5432
REDIS_PORT = 6379
APP_UID = 10001
POSTGRES_UID = 999
REDIS_UID = 999
DATABASE_USER = "partyquiz"
DATABASE_NAME = "partyquiz"
WS_PATH = "/ws"
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 - a per-pod emptyDir
JWT_SECRET_BYTES = 48
MIN_JWT_SECRET_BYTES = 32  # what the web and ws services refuse to start below
PASSWORD_BYTES = 24
DATA_VOLUME = "data"

COMPONENT_WEB = "web"
COMPONENT_WS = "ws"
COMPONENT_DATABASE = "database"
COMPONENT_CACHE = "cache"
COMPONENT_MIGRATION = "migration"
COMPONENT_BACKUP = "backup"
# Seconds a terminating game pod waits before SIGTERM so Services stop routing to it first;
# reconnecting players then land on another replica instead of the draining one.
WS_PRE_STOP_SECONDS = 3
# Seconds left after the drain for the process to close its listeners and exit.
WS_EXIT_MARGIN_SECONDS = 7
# Seconds a migration (and a backup) pod keeps trying while the database does not answer yet.
MIGRATION_WAIT_SECONDS = 60

KEY_JWT = "jwt-secret"
KEY_POSTGRES_PASSWORD = "postgres-password"  # noqa: S105 - a key name
KEY_REDIS_PASSWORD = "redis-password"  # noqa: S105 - a key name
KEY_DATABASE_URL = "database-url"
KEY_REDIS_URL = "redis-url"


@dataclass(frozen=True)
class Instance:
    """The identity of a PartyQuiz plus its parsed spec: what every builder needs."""

    name: str
    namespace: str
    uid: str
    spec: api.PartyQuizSpec
    generation: int = 1


# --- names --------------------------------------------------------------------------------


def service_account_name(inst: Instance) -> str:
    """Return the name of the pods' ServiceAccount."""
    return inst.name


def credentials_secret_name(inst: Instance) -> str:
    """Return the name of the generated credentials Secret."""
    return f"{inst.name}-credentials"


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


def headless_name(statefulset_name: str) -> str:
    """Return the governing headless Service name of a StatefulSet."""
    return f"{statefulset_name}-headless"


def migration_job_name(inst: Instance, revision: str) -> str:
    """Return the name of the migration Job of ``revision``."""
    return f"{inst.name}-migrate-{revision}"


def data_pvc_name(statefulset_name: str) -> str:
    """Return the name of the data PVC of a single-replica StatefulSet."""
    return f"{DATA_VOLUME}-{statefulset_name}-0"


def web_image(spec: api.PartyQuizSpec) -> str:
    """Return the web image: the override or the official image tagged with the version."""
    return spec.images.web or f"{api.DEFAULT_WEB_IMAGE_REPOSITORY}:{spec.version}"


def ws_image(spec: api.PartyQuizSpec) -> str:
    """Return the game image: the override or the official image tagged with the version."""
    return spec.images.ws or f"{api.DEFAULT_WS_IMAGE_REPOSITORY}:{spec.version}"


def web_internal_url(inst: Instance) -> str:
    """Return the in-cluster URL of the web service."""
    return f"http://{web_name(inst)}.{inst.namespace}.svc:{WEB_PORT}"


def ws_internal_url(inst: Instance) -> str:
    """Return the in-cluster websocket URL of the game service."""
    return f"ws://{ws_name(inst)}.{inst.namespace}.svc:{WS_PORT}{WS_PATH}"


def public_url(inst: Instance) -> str | None:
    """Return the public base URL when an Ingress is configured."""
    ingress = inst.spec.ingress
    if ingress is None:
        return None
    scheme = "https" if ingress.tls_secret_name else "http"
    return f"{scheme}://{ingress.host}"


def public_ws_url(inst: Instance) -> str:
    """Return the websocket URL browsers are told to connect to."""
    ingress = inst.spec.ingress
    if ingress is None:
        return ws_internal_url(inst)
    scheme = "wss" if ingress.tls_secret_name else "ws"
    return f"{scheme}://{ingress.host}{WS_PATH}"


# --- metadata -----------------------------------------------------------------------------


def selector_labels(inst: Instance, component: str) -> dict[str, str]:
    """Return the immutable labels that select a component's pods."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": inst.name,
        "app.kubernetes.io/component": component,
    }


def common_labels(inst: Instance, component: str) -> dict[str, str]:
    """Return the full recommended label set of a child (selector labels plus the rest)."""
    return {
        **selector_labels(inst, component),
        "app.kubernetes.io/part-of": APP_NAME,
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
    }


def is_managed(body: Mapping[str, Any]) -> bool:
    """Return whether ``body`` carries the operator's ``app.kubernetes.io/managed-by`` label."""
    labels = body.get("metadata", {}).get("labels") or {}
    return bool(labels.get("app.kubernetes.io/managed-by") == FIELD_MANAGER)


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


def labelled_metadata(inst: Instance, name: str, component: str) -> dict[str, Any]:
    """Return the metadata every child carries: name, namespace, labels, owner reference."""
    return _metadata(inst, name, component)


def _metadata(
    inst: Instance,
    name: str,
    component: str,
    *,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": inst.namespace,
        "labels": common_labels(inst, component),
        "ownerReferences": [owner_reference(inst)],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


# --- pod building blocks --------------------------------------------------------------------


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


def _resources(resources: api.Resources) -> dict[str, Any]:
    return resources.model_dump(by_alias=True, exclude_none=True, mode="json")


def _empty_dir(name: str, size: str = "64Mi") -> dict[str, Any]:
    return {"name": name, "emptyDir": {"sizeLimit": size}}


def _http_probes(port: str) -> dict[str, Any]:
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


def _exec_probes(command: list[str], *, startup_failures: int) -> dict[str, Any]:
    return {
        "startupProbe": {
            "exec": {"command": command},
            "periodSeconds": 2,
            "failureThreshold": startup_failures,
            "timeoutSeconds": 5,
        },
        "readinessProbe": {
            "exec": {"command": command},
            "periodSeconds": 5,
            "failureThreshold": 3,
            "timeoutSeconds": 5,
        },
        "livenessProbe": {
            "exec": {"command": command},
            "periodSeconds": 15,
            "failureThreshold": 4,
            "timeoutSeconds": 5,
        },
    }


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _jwt_ref(inst: Instance) -> tuple[str, str]:
    ref = inst.spec.jwt_secret_ref
    if ref is not None:
        return ref.name, ref.key
    return credentials_secret_name(inst), KEY_JWT


def _database_ref(inst: Instance) -> tuple[str, str]:
    external = inst.spec.database.external
    if external is not None:
        return external.secret_ref.name, external.secret_ref.key
    return credentials_secret_name(inst), KEY_DATABASE_URL


def _redis_ref(inst: Instance) -> tuple[str, str]:
    external = inst.spec.redis.external
    if external is not None:
        return external.secret_ref.name, external.secret_ref.key
    return credentials_secret_name(inst), KEY_REDIS_URL


def referenced_secrets(inst: Instance) -> list[tuple[str, str]]:
    """Return the user-supplied (secret, key) pairs the pods read; they must exist."""
    refs: list[tuple[str, str]] = []
    if inst.spec.database.external is not None:
        refs.append(_database_ref(inst))
    if inst.spec.redis.external is not None:
        refs.append(_redis_ref(inst))
    if inst.spec.jwt_secret_ref is not None:
        refs.append(_jwt_ref(inst))
    return refs


def web_env(inst: Instance) -> list[dict[str, Any]]:
    """Return the environment of the web (and migration) container."""
    return [
        _secret_env("PARTYQUIZ_WEB_DATABASE_URL", *_database_ref(inst)),
        _secret_env("PARTYQUIZ_WEB_REDIS_URL", *_redis_ref(inst)),
        _secret_env("PARTYQUIZ_WEB_JWT_SECRET", *_jwt_ref(inst)),
        {"name": "PARTYQUIZ_WEB_PUBLIC_WS_URL", "value": public_ws_url(inst)},
    ]


def ws_env(inst: Instance) -> list[dict[str, Any]]:
    """Return the environment of the game container."""
    return [
        _secret_env("PARTYQUIZ_WS_REDIS_URL", *_redis_ref(inst)),
        _secret_env("PARTYQUIZ_WS_JWT_SECRET", *_jwt_ref(inst)),
        {"name": "PARTYQUIZ_WS_WEB_INTERNAL_URL", "value": web_internal_url(inst)},
        {"name": "PARTYQUIZ_WS_DRAIN_SECONDS", "value": str(inst.spec.ws.drain_seconds)},
    ]


def _pod_spec(
    inst: Instance,
    containers: list[dict[str, Any]],
    *,
    uid: int,
    volumes: list[dict[str, Any]],
    grace_seconds: int,
) -> dict[str, Any]:
    return {
        "serviceAccountName": service_account_name(inst),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(uid),
        "terminationGracePeriodSeconds": grace_seconds,
        "containers": containers,
        "volumes": volumes,
    }


def _app_template(
    inst: Instance,
    component: str,
    container: dict[str, Any],
    *,
    grace_seconds: int,
) -> dict[str, Any]:
    spec = inst.spec
    labels = {**spec.pod_labels, **common_labels(inst, component)}
    labels["app.kubernetes.io/version"] = spec.version
    metadata: dict[str, Any] = {"labels": labels}
    if spec.pod_annotations:
        metadata["annotations"] = dict(spec.pod_annotations)
    return {
        "metadata": metadata,
        "spec": _pod_spec(
            inst,
            [container],
            uid=APP_UID,
            volumes=[_empty_dir("tmp")],
            grace_seconds=grace_seconds,
        ),
    }


def web_pod_template(inst: Instance) -> dict[str, Any]:
    """Return the web pod template without its revision annotation."""
    spec = inst.spec
    container = {
        "name": "web",
        "image": web_image(spec),
        "imagePullPolicy": spec.images.pull_policy,
        # Arguments, not a command: the image's entrypoint keeps tini as PID 1, which
        # forwards SIGTERM from the first instant and reaps children.
        "args": ["serve"],
        "ports": [{"name": "http", "containerPort": WEB_PORT, "protocol": "TCP"}],
        "env": web_env(inst),
        **_http_probes("http"),
        "resources": _resources(spec.web.resources),
        "securityContext": container_security_context(APP_UID),
        "volumeMounts": [dict(TMP_MOUNT)],
    }
    return _app_template(inst, COMPONENT_WEB, container, grace_seconds=30)


def ws_pod_template(inst: Instance) -> dict[str, Any]:
    """Return the game pod template without its revision annotation."""
    spec = inst.spec
    container = {
        "name": "ws",
        "image": ws_image(spec),
        "imagePullPolicy": spec.images.pull_policy,
        # No command or args: the image's entrypoint is tini + partyquiz-ws.
        "ports": [{"name": "ws", "containerPort": WS_PORT, "protocol": "TCP"}],
        "env": ws_env(inst),
        **_http_probes("ws"),
        "resources": _resources(spec.ws.resources),
        "securityContext": container_security_context(APP_UID),
        "volumeMounts": [dict(TMP_MOUNT)],
    }
    container["lifecycle"] = {"preStop": {"sleep": {"seconds": WS_PRE_STOP_SECONDS}}}
    return _app_template(
        inst, COMPONENT_WS, container, grace_seconds=ws_termination_grace_seconds(spec)
    )


def ws_termination_grace_seconds(spec: api.PartyQuizSpec) -> int:
    """Return the game pods' grace period: pre-stop pause, then the drain, then a margin."""
    return WS_PRE_STOP_SECONDS + spec.ws.drain_seconds + WS_EXIT_MARGIN_SECONDS


def compute_revision(inst: Instance, secret_digests: Mapping[str, str]) -> str:
    """Return the revision: a short hash of everything that changes the web and ws pods.

    ``secret_digests`` maps each referenced user Secret key ("name/key") to a digest of its
    value, so rotating an external URL or JWT secret is a new revision too.
    """
    material = {
        "web": web_pod_template(inst),
        "ws": ws_pod_template(inst),
        "secrets": dict(sorted(secret_digests.items())),
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def _with_revision(template: dict[str, Any], revision: str) -> dict[str, Any]:
    annotations = dict(template["metadata"].get("annotations", {}))
    annotations[REVISION_ANNOTATION] = revision
    return {**template, "metadata": {**template["metadata"], "annotations": annotations}}


# --- children -----------------------------------------------------------------------------


def build_service_account(inst: Instance) -> Manifest:
    """Return the pods' ServiceAccount; pods get no API token."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(inst, service_account_name(inst), "serviceaccount"),
        "automountServiceAccountToken": False,
    }


def _encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def build_credentials_secret(
    inst: Instance,
    existing: Mapping[str, str],
    new_token: Callable[[int], str],
) -> Manifest:
    """Return the generated credentials Secret, keeping every value that already exists.

    ``existing`` holds the decoded data of the live Secret (empty when absent); ``new_token(n)``
    returns a fresh URL-safe random string of ``n`` bytes of entropy.
    """
    data: dict[str, str] = dict(existing)

    def keep_or_new(key: str, entropy: int) -> str:
        if key not in data:
            data[key] = new_token(entropy)
        return data[key]

    if inst.spec.jwt_secret_ref is None:
        keep_or_new(KEY_JWT, JWT_SECRET_BYTES)
    if inst.spec.database.managed is not None:
        password = keep_or_new(KEY_POSTGRES_PASSWORD, PASSWORD_BYTES)
        data.setdefault(
            KEY_DATABASE_URL,
            f"postgresql+asyncpg://{DATABASE_USER}:{password}@{postgres_name(inst)}"
            f".{inst.namespace}.svc:{POSTGRES_PORT}/{DATABASE_NAME}",
        )
    if inst.spec.redis.managed is not None:
        password = keep_or_new(KEY_REDIS_PASSWORD, PASSWORD_BYTES)
        data.setdefault(
            KEY_REDIS_URL,
            f"redis://:{password}@{redis_name(inst)}.{inst.namespace}.svc:{REDIS_PORT}/0",
        )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(inst, credentials_secret_name(inst), "credentials"),
        "type": "Opaque",
        "data": {key: _encode(value) for key, value in sorted(data.items())},
    }


def _service(
    inst: Instance,
    name: str,
    component: str,
    port_name: str,
    port: int,
    *,
    headless: bool = False,
) -> Manifest:
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector_labels(inst, component),
        "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}],
    }
    if headless:
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(inst, name, component),
        "spec": spec,
    }


def build_web_service(inst: Instance) -> Manifest:
    """Return the web Service (port 8000)."""
    return _service(inst, web_name(inst), COMPONENT_WEB, "http", WEB_PORT)


def build_ws_service(inst: Instance) -> Manifest:
    """Return the game Service (port 8001)."""
    return _service(inst, ws_name(inst), COMPONENT_WS, "ws", WS_PORT)


def build_postgres_services(inst: Instance) -> list[Manifest]:
    """Return the PostgreSQL client Service and the StatefulSet's headless Service."""
    name = postgres_name(inst)
    return [
        _service(inst, name, COMPONENT_DATABASE, "postgres", POSTGRES_PORT),
        _service(
            inst, headless_name(name), COMPONENT_DATABASE, "postgres", POSTGRES_PORT, headless=True
        ),
    ]


def build_redis_services(inst: Instance) -> list[Manifest]:
    """Return the Redis client Service and the StatefulSet's headless Service."""
    name = redis_name(inst)
    return [
        _service(inst, name, COMPONENT_CACHE, "redis", REDIS_PORT),
        _service(inst, headless_name(name), COMPONENT_CACHE, "redis", REDIS_PORT, headless=True),
    ]


def _volume_claim_template(
    inst: Instance, component: str, storage: str, storage_class: str | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": DATA_VOLUME, "labels": common_labels(inst, component)},
        "spec": spec,
    }


def _statefulset(
    inst: Instance,
    name: str,
    component: str,
    container: dict[str, Any],
    *,
    uid: int,
    volumes: list[dict[str, Any]],
    claim: dict[str, Any],
) -> Manifest:
    retention = "Retain" if inst.spec.retain_data_on_delete else "Delete"
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(inst, name, component),
        "spec": {
            "serviceName": headless_name(name),
            "replicas": 1,
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_labels(inst, component)},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": retention,
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": common_labels(inst, component)},
                "spec": _pod_spec(inst, [container], uid=uid, volumes=volumes, grace_seconds=60),
            },
            "volumeClaimTemplates": [claim],
        },
    }


def build_postgres_statefulset(inst: Instance, *, claim_storage: str | None = None) -> Manifest:
    """Return the managed PostgreSQL StatefulSet.

    ``claim_storage`` keeps the size of the existing volume claim template: StatefulSet claim
    templates are immutable, so growth is applied to the PVC itself instead.
    """
    managed = inst.spec.database.managed
    if managed is None:
        raise ValueError("database is external")
    ready = ["pg_isready", "-h", "127.0.0.1", "-U", DATABASE_USER, "-d", DATABASE_NAME]
    container = {
        "name": "postgres",
        "image": managed.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "POSTGRES_USER", "value": DATABASE_USER},
            {"name": "POSTGRES_DB", "value": DATABASE_NAME},
            _secret_env("POSTGRES_PASSWORD", credentials_secret_name(inst), KEY_POSTGRES_PASSWORD),
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        **_exec_probes(ready, startup_failures=150),
        "resources": _resources(managed.resources),
        "securityContext": container_security_context(POSTGRES_UID),
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            dict(TMP_MOUNT),
        ],
    }
    claim = _volume_claim_template(
        inst, COMPONENT_DATABASE, claim_storage or managed.storage, managed.storage_class_name
    )
    return _statefulset(
        inst,
        postgres_name(inst),
        COMPONENT_DATABASE,
        container,
        uid=POSTGRES_UID,
        volumes=[_empty_dir("run", "16Mi"), _empty_dir("tmp", "256Mi")],
        claim=claim,
    )


def build_redis_statefulset(inst: Instance, *, claim_storage: str | None = None) -> Manifest:
    """Return the managed Redis StatefulSet (append-only file on its volume)."""
    managed = inst.spec.redis.managed
    if managed is None:
        raise ValueError("redis is external")
    ping = ["sh", "-c", 'redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG']
    container = {
        "name": "redis",
        "image": managed.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["redis-server"],
        "args": [
            "--port",
            str(REDIS_PORT),
            "--appendonly",
            "yes",
            "--dir",
            "/data",
            "--requirepass",
            "$(REDIS_PASSWORD)",
        ],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "env": [_secret_env("REDIS_PASSWORD", credentials_secret_name(inst), KEY_REDIS_PASSWORD)],
        **_exec_probes(ping, startup_failures=60),
        "resources": _resources(managed.resources),
        "securityContext": container_security_context(REDIS_UID),
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": "/data"},
            dict(TMP_MOUNT),
        ],
    }
    claim = _volume_claim_template(
        inst, COMPONENT_CACHE, claim_storage or managed.storage, managed.storage_class_name
    )
    return _statefulset(
        inst,
        redis_name(inst),
        COMPONENT_CACHE,
        container,
        uid=REDIS_UID,
        volumes=[_empty_dir("tmp")],
        claim=claim,
    )


def _deployment(
    inst: Instance,
    name: str,
    component: str,
    template: dict[str, Any],
    *,
    replicas: int | None,
    revision: str,
) -> Manifest:
    spec: dict[str, Any] = {
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": inst.spec.rollout.progress_deadline_seconds,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "selector": {"matchLabels": selector_labels(inst, component)},
        "template": _with_revision(template, revision),
    }
    if replicas is not None:
        spec["replicas"] = replicas
    metadata = _metadata(inst, name, component, annotations={REVISION_ANNOTATION: revision})
    metadata["labels"]["app.kubernetes.io/version"] = inst.spec.version
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def build_web_deployment(inst: Instance, revision: str) -> Manifest:
    """Return the web Deployment rendered at ``revision``; replicas are left to the HPA if set."""
    replicas = None if inst.spec.web.autoscaling is not None else inst.spec.web.replicas
    return _deployment(
        inst,
        web_name(inst),
        COMPONENT_WEB,
        web_pod_template(inst),
        replicas=replicas,
        revision=revision,
    )


def build_ws_deployment(inst: Instance, revision: str) -> Manifest:
    """Return the game Deployment rendered at ``revision``."""
    return _deployment(
        inst,
        ws_name(inst),
        COMPONENT_WS,
        ws_pod_template(inst),
        replicas=inst.spec.ws.replicas,
        revision=revision,
    )


def build_migration_job(inst: Instance, revision: str) -> Manifest:
    """Return the migration Job of ``revision``: the web pod, minus probes, running migrate."""
    template = web_pod_template(inst)
    container = {
        key: value
        for key, value in template["spec"]["containers"][0].items()
        if key not in ("startupProbe", "readinessProbe", "livenessProbe", "ports")
    }
    container["name"] = "migrate"
    # A new pod's first connections can be refused for a moment (PostgreSQL restarting, or a
    # NetworkPolicy implementation that has not admitted the new pod's address yet), so migrate
    # keeps trying for a while instead of failing the attempt at once.
    container["args"] = ["migrate", "--wait", str(MIGRATION_WAIT_SECONDS)]
    labels = {**inst.spec.migrations.pod_labels, **common_labels(inst, COMPONENT_MIGRATION)}
    labels[REVISION_LABEL] = revision
    labels["app.kubernetes.io/version"] = inst.spec.version
    pod_spec = _pod_spec(
        inst, [container], uid=APP_UID, volumes=[_empty_dir("tmp")], grace_seconds=30
    )
    pod_spec["restartPolicy"] = "Never"
    metadata = _metadata(inst, migration_job_name(inst, revision), COMPONENT_MIGRATION)
    metadata["labels"] = dict(labels)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": inst.spec.migrations.backoff_limit,
            "activeDeadlineSeconds": inst.spec.migrations.active_deadline_seconds,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {REVISION_ANNOTATION: revision},
                },
                "spec": pod_spec,
            },
        },
    }


def _pdb(inst: Instance, name: str, component: str) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(inst, name, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(inst, component)},
        },
    }


def build_web_pdb(inst: Instance) -> Manifest:
    """Return the web PodDisruptionBudget (at most one pod voluntarily disrupted)."""
    return _pdb(inst, web_name(inst), COMPONENT_WEB)


def build_ws_pdb(inst: Instance) -> Manifest:
    """Return the game PodDisruptionBudget (drains one game pod at a time)."""
    return _pdb(inst, ws_name(inst), COMPONENT_WS)


def _network_policy(
    inst: Instance, name: str, component: str, clients: list[str], port: int
) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(inst, name, component),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(inst, component)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "podSelector": {
                                "matchLabels": {
                                    "app.kubernetes.io/name": APP_NAME,
                                    "app.kubernetes.io/instance": inst.name,
                                },
                                "matchExpressions": [
                                    {
                                        "key": "app.kubernetes.io/component",
                                        "operator": "In",
                                        "values": clients,
                                    }
                                ],
                            }
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            ],
        },
    }


def network_policy(
    inst: Instance, name: str, component: str, clients: list[str], port: int
) -> Manifest:
    """Return a NetworkPolicy admitting the ``clients`` components to ``component``'s port."""
    return _network_policy(inst, name, component, clients, port)


def build_postgres_network_policy(inst: Instance) -> Manifest:
    """Return the NetworkPolicy letting only web and migration pods reach PostgreSQL."""
    return _network_policy(
        inst,
        postgres_name(inst),
        COMPONENT_DATABASE,
        [COMPONENT_WEB, COMPONENT_MIGRATION],
        POSTGRES_PORT,
    )


def build_redis_network_policy(inst: Instance) -> Manifest:
    """Return the NetworkPolicy letting only web and game pods reach Redis."""
    return _network_policy(
        inst, redis_name(inst), COMPONENT_CACHE, [COMPONENT_WEB, COMPONENT_WS], REDIS_PORT
    )


def build_ingress(inst: Instance) -> Manifest:
    """Return the Ingress: the game service at /ws, the web service at /."""
    ingress = inst.spec.ingress
    if ingress is None:
        raise ValueError("no ingress configured")

    def path(prefix: str, service: str, port: int) -> dict[str, Any]:
        return {
            "path": prefix,
            "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": port}}},
        }

    spec: dict[str, Any] = {
        "rules": [
            {
                "host": ingress.host,
                "http": {
                    "paths": [
                        path(WS_PATH, ws_name(inst), WS_PORT),
                        path("/", web_name(inst), WEB_PORT),
                    ]
                },
            }
        ]
    }
    if ingress.class_name is not None:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name is not None:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(inst, inst.name, "ingress", annotations=ingress.annotations),
        "spec": spec,
    }


def build_web_autoscaler(inst: Instance) -> Manifest:
    """Return the web HorizontalPodAutoscaler (CPU utilisation)."""
    autoscaling = inst.spec.web.autoscaling
    if autoscaling is None:
        raise ValueError("autoscaling is off")
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(inst, web_name(inst), COMPONENT_WEB),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": web_name(inst),
            },
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def build_infrastructure(
    inst: Instance,
    *,
    credentials: Manifest,
    postgres_claim_storage: str | None = None,
    redis_claim_storage: str | None = None,
) -> list[Manifest]:
    """Return every child that does not depend on the revision, in apply order.

    The data stores' StatefulSets come first, right after the credentials and the network
    policies that must fence their pods from the moment they exist: their pods are the slowest
    step before a migration can run, so they start while the rest is applied.
    """
    children: list[Manifest] = [build_service_account(inst), credentials]
    postgres, redis = inst.spec.database.managed is not None, inst.spec.redis.managed is not None
    if postgres:
        children.append(build_postgres_network_policy(inst))
    if redis:
        children.append(build_redis_network_policy(inst))
    if postgres:
        children.append(build_postgres_statefulset(inst, claim_storage=postgres_claim_storage))
    if redis:
        children.append(build_redis_statefulset(inst, claim_storage=redis_claim_storage))
    if postgres:
        children += build_postgres_services(inst)
    if redis:
        children += build_redis_services(inst)
    children += [build_web_service(inst), build_ws_service(inst)]
    children += [build_web_pdb(inst), build_ws_pdb(inst)]
    if inst.spec.ingress is not None:
        children.append(build_ingress(inst))
    if inst.spec.web.autoscaling is not None:
        children.append(build_web_autoscaler(inst))
    return children
