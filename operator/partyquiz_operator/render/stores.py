"""Data stores: the credentials Secret, PostgreSQL and Redis StatefulSets, their volumes.

Owns where each service finds its database, Redis and JWT secret (generated or the user's own
Secret) and the StatefulSets with their volume claim templates. Pure.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from partyquiz_operator import api
from partyquiz_operator.render.common import (
    COMPONENT_CACHE,
    COMPONENT_DATABASE,
    POSTGRES_PORT,
    REDIS_PORT,
    TMP_MOUNT,
    Instance,
    Manifest,
    common_labels,
    container_security_context,
    empty_dir,
    exec_probes,
    metadata,
    pod_spec,
    postgres_name,
    redis_name,
    resources,
    secret_env,
    selector_labels,
)

POSTGRES_UID = 999
REDIS_UID = 999
DATABASE_USER = "partyquiz"
DATABASE_NAME = "partyquiz"
JWT_SECRET_BYTES = 48
MIN_JWT_SECRET_BYTES = 32  # what the web and ws services refuse to start below
PASSWORD_BYTES = 24
DATA_VOLUME = "data"

# On the PostgreSQL data volume: a digest of the password the database was initialised with.
CREDENTIALS_ANNOTATION = "partyquiz.dev/credentials-digest"

KEY_JWT = "jwt-secret"
KEY_POSTGRES_PASSWORD = "postgres-password"  # noqa: S105 - a key name
KEY_REDIS_PASSWORD = "redis-password"  # noqa: S105 - a key name
KEY_DATABASE_URL = "database-url"
KEY_REDIS_URL = "redis-url"


def credentials_secret_name(inst: Instance) -> str:
    """Return the name of the generated credentials Secret."""
    return f"{inst.name}-credentials"


def headless_name(statefulset_name: str) -> str:
    """Return the governing headless Service name of a StatefulSet."""
    return f"{statefulset_name}-headless"


def data_pvc_name(statefulset_name: str) -> str:
    """Return the name of the data PVC of a single-replica StatefulSet."""
    return f"{DATA_VOLUME}-{statefulset_name}-0"


def jwt_ref(inst: Instance) -> tuple[str, str]:
    """Return the (Secret, key) holding the JWT signing secret."""
    ref = inst.spec.jwt_secret_ref
    if ref is not None:
        return ref.name, ref.key
    return credentials_secret_name(inst), KEY_JWT


def database_ref(inst: Instance) -> tuple[str, str]:
    """Return the (Secret, key) holding the database URL."""
    external = inst.spec.database.external
    if external is not None:
        return external.secret_ref.name, external.secret_ref.key
    return credentials_secret_name(inst), KEY_DATABASE_URL


def redis_ref(inst: Instance) -> tuple[str, str]:
    """Return the (Secret, key) holding the Redis URL."""
    external = inst.spec.redis.external
    if external is not None:
        return external.secret_ref.name, external.secret_ref.key
    return credentials_secret_name(inst), KEY_REDIS_URL


def referenced_secrets(inst: Instance) -> list[tuple[str, str]]:
    """Return the user-supplied (Secret, key) pairs the pods read; they must exist."""
    refs: list[tuple[str, str]] = []
    if inst.spec.database.external is not None:
        refs.append(database_ref(inst))
    if inst.spec.redis.external is not None:
        refs.append(redis_ref(inst))
    if inst.spec.jwt_secret_ref is not None:
        refs.append(jwt_ref(inst))
    return refs


def credentials_digest(password: str) -> str:
    """Return the digest of a PostgreSQL password that its data volume is marked with."""
    return hashlib.sha256(password.encode()).hexdigest()[:16]


def _encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def build_credentials_secret(
    inst: Instance, existing: Mapping[str, str], new_token: Callable[[int], str]
) -> Manifest:
    """Return the generated credentials Secret, keeping every value that already exists.

    ``existing`` holds the decoded data of the live Secret (empty when absent); ``new_token(n)``
    returns a fresh URL-safe random string of ``n`` bytes of entropy. The Secret is the only
    copy of the passwords the data volumes were initialised with, so it follows their retention:
    kept when the PartyQuiz is deleted unless ``retainDataOnDelete`` is false.
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
        "metadata": metadata(
            inst,
            credentials_secret_name(inst),
            "credentials",
            owned=not inst.spec.retain_data_on_delete,
        ),
        "type": "Opaque",
        "data": {key: _encode(value) for key, value in sorted(data.items())},
    }


def _statefulset(
    inst: Instance,
    name: str,
    component: str,
    container: dict[str, Any],
    *,
    uid: int,
    volumes: list[dict[str, Any]],
    managed: api.ManagedDatabase | api.ManagedRedis,
    claim: str | None,
) -> Manifest:
    """Return a store's StatefulSet; its data claim keeps the size ``claim`` has (if any)."""
    retention = "Retain" if inst.spec.retain_data_on_delete else "Delete"
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": claim or managed.storage}},
    }
    if managed.storage_class_name is not None:
        claim_spec["storageClassName"] = managed.storage_class_name
    template = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": DATA_VOLUME, "labels": common_labels(inst, component)},
        "spec": claim_spec,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(inst, name, component),
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
                "spec": pod_spec(inst, [container], uid=uid, volumes=volumes, grace_seconds=60),
            },
            "volumeClaimTemplates": [template],
        },
    }


def claim_storage(statefulset: Mapping[str, Any] | None) -> str | None:
    """Return the storage size of a live StatefulSet's data claim template, if any."""
    for claim in (statefulset or {}).get("spec", {}).get("volumeClaimTemplates", []):
        if claim.get("metadata", {}).get("name") == DATA_VOLUME:
            value = claim.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
            return str(value) if value is not None else None
    return None


def build_postgres_statefulset(inst: Instance, *, claim: str | None = None) -> Manifest:
    """Return the managed PostgreSQL StatefulSet.

    ``claim`` keeps the size of the existing volume claim template: StatefulSet claim templates
    are immutable, so growth is applied to the PVC itself instead.
    """
    managed = inst.spec.database.managed
    if managed is None:
        raise ValueError("database is external")
    ready = ["pg_isready", "-h", "127.0.0.1", "-U", DATABASE_USER, "-d", DATABASE_NAME]
    # Alive while it answers at all: pg_isready exits 1 while the server rejects connections,
    # as during crash recovery, which may take long and must never be killed by its probes.
    answers = ["sh", "-c", f"{shlex.join(ready)}; [ $? -le 1 ]"]
    container = {
        "name": "postgres",
        "image": managed.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "POSTGRES_USER", "value": DATABASE_USER},
            {"name": "POSTGRES_DB", "value": DATABASE_NAME},
            secret_env("POSTGRES_PASSWORD", credentials_secret_name(inst), KEY_POSTGRES_PASSWORD),
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        **exec_probes(ready, startup_failures=150, alive=answers),
        "resources": resources(managed.resources),
        "securityContext": container_security_context(POSTGRES_UID),
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            dict(TMP_MOUNT),
        ],
    }
    return _statefulset(
        inst,
        postgres_name(inst),
        COMPONENT_DATABASE,
        container,
        uid=POSTGRES_UID,
        volumes=[empty_dir("run", "16Mi"), empty_dir("tmp", "256Mi")],
        managed=managed,
        claim=claim,
    )


def build_redis_statefulset(inst: Instance, *, claim: str | None = None) -> Manifest:
    """Return the managed Redis StatefulSet (append-only file on its volume)."""
    managed = inst.spec.redis.managed
    if managed is None:
        raise ValueError("redis is external")
    # The password reaches redis-cli through REDISCLI_AUTH and redis-server as configuration
    # on its standard input: never on a command line (ps) nor in the pod spec.
    ping = 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping'
    ready = ["sh", "-c", f"{ping} | grep -q PONG"]
    # Alive while it answers, also while it loads a large append-only file.
    answers = ["sh", "-c", f"{ping} | grep -qE 'PONG|LOADING'"]
    server = shlex.join(
        ["redis-server", "-", "--port", str(REDIS_PORT), "--appendonly", "yes", "--dir", "/data"]
    )
    container = {
        "name": "redis",
        "image": managed.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", f'exec {server} <<EOF\nrequirepass "$REDIS_PASSWORD"\nEOF\n'],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "env": [secret_env("REDIS_PASSWORD", credentials_secret_name(inst), KEY_REDIS_PASSWORD)],
        **exec_probes(ready, startup_failures=60, alive=answers),
        "resources": resources(managed.resources),
        "securityContext": container_security_context(REDIS_UID),
        "volumeMounts": [{"name": DATA_VOLUME, "mountPath": "/data"}, dict(TMP_MOUNT)],
    }
    return _statefulset(
        inst,
        redis_name(inst),
        COMPONENT_CACHE,
        container,
        uid=REDIS_UID,
        volumes=[empty_dir("tmp")],
        managed=managed,
        claim=claim,
    )
