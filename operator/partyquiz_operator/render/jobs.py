"""Jobs: the schema migration of a revision and the PostgreSQL backups (volume, Job, CronJob).

Owns the migration Job (the web pod without probes, running ``partyquiz-web migrate``), the
dump and restore command lines (shared with docs/operations.md and its integration test) and
the script a backup pod runs: dump to a partial file, rename it into place, then enforce
retention. Pure.
"""

from __future__ import annotations

import shlex
from typing import Any

from partyquiz_operator import api
from partyquiz_operator.render.common import (
    COMPONENT_BACKUP,
    COMPONENT_MIGRATION,
    POSTGRES_PORT,
    REVISION_ANNOTATION,
    REVISION_LABEL,
    TMP_MOUNT,
    Instance,
    Manifest,
    common_labels,
    container_security_context,
    empty_dir,
    metadata,
    pod_spec,
    postgres_name,
    secret_env,
)
from partyquiz_operator.render.stores import (
    DATABASE_NAME,
    DATABASE_USER,
    KEY_POSTGRES_PASSWORD,
    POSTGRES_UID,
    credentials_secret_name,
)
from partyquiz_operator.render.workloads import APP_UID, web_pod_template

BACKUP_DIR = "/backups"
BACKUP_VOLUME = "backups"
PRE_MIGRATION_PREFIX = "pre-migration"
SCHEDULED_PREFIX = "scheduled"
DUMP_SUFFIX = ".dump"
# A dump is a read-only transaction; give it the migration's deadline, never unbounded.
BACKUP_BACKOFF_LIMIT = 1
# Seconds a migration (and a backup) pod keeps trying while the database does not answer yet.
MIGRATION_WAIT_SECONDS = 60


def migration_job_name(inst: Instance, revision: str) -> str:
    """Return the name of the migration Job of ``revision``."""
    return f"{inst.name}-migrate-{revision}"


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
    spec = pod_spec(inst, [container], uid=APP_UID, volumes=[empty_dir("tmp")], grace_seconds=30)
    spec["restartPolicy"] = "Never"
    meta = metadata(inst, migration_job_name(inst, revision), COMPONENT_MIGRATION)
    meta["labels"] = dict(labels)
    pod_meta = {"labels": labels, "annotations": {REVISION_ANNOTATION: revision}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": inst.spec.migrations.backoff_limit,
            "activeDeadlineSeconds": inst.spec.migrations.active_deadline_seconds,
            "template": {"metadata": pod_meta, "spec": spec},
        },
    }


def pg_dump_args() -> list[str]:
    """Return the pg_dump command line (custom format); connection details come from PG* env."""
    return ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--compress=6"]


def pg_restore_args(database: str) -> list[str]:
    """Return the pg_restore command line that loads a dump into ``database``."""
    return [
        "pg_restore",
        "--no-owner",
        "--no-privileges",
        "--clean",
        "--if-exists",
        "--exit-on-error",
        "--single-transaction",
        "--dbname",
        database,
    ]


RESTORE_SQL = "/tmp/partyquiz-restore.sql"  # noqa: S108 - in the restore pod, which only it uses


def restore_script() -> str:
    """Return the script that restores the dump named by its first argument (PG* env: where).

    pg_restore alone, even with ``--clean``, replaces only the objects in the dump: a table a
    later migration added would survive the restore of an earlier dump, and that migration would
    fail on the next upgrade. So the dump is first turned into SQL (a dump that cannot be read
    stops there, before anything changed), then, in one transaction, the public schema is
    dropped, recreated and loaded: the database ends up exactly as dumped, or unchanged.
    """
    # Double quotes only, so the script can be passed in single quotes (docs/operations.md).
    return "\n".join(
        [
            "set -eu",
            f'trap "rm -f {RESTORE_SQL}" EXIT',
            f'pg_restore --no-owner --no-privileges --file {RESTORE_SQL} "$1"',
            "psql --no-psqlrc --quiet --single-transaction --set ON_ERROR_STOP=1"
            ' --command "SET client_min_messages = warning"'
            ' --command "DROP SCHEMA public CASCADE" --command "CREATE SCHEMA public"'
            f" --file {RESTORE_SQL}",
            'echo "restored $1"',
        ]
    )


def backup_pvc_name(inst: Instance) -> str:
    """Return the name of the backup volume claim."""
    return f"{inst.name}-backups"


def backup_job_name(inst: Instance, revision: str) -> str:
    """Return the name of the dump Job that precedes the migration of ``revision``."""
    return f"{inst.name}-backup-{revision}"


def backup_cronjob_name(inst: Instance) -> str:
    """Return the name of the scheduled backup CronJob."""
    return f"{inst.name}-backup"


def dump_file_pattern(prefix: str) -> str:
    """Return the shell glob matching the dumps of one kind."""
    return f"{BACKUP_DIR}/{prefix}-*{DUMP_SUFFIX}"


def backup_script(prefix: str, retain: int, wait_seconds: int = MIGRATION_WAIT_SECONDS) -> str:
    """Return the script of a backup pod.

    It first waits up to ``wait_seconds`` for PostgreSQL to accept connections: a new pod's
    first connections can be refused for a moment (the server restarting, or a NetworkPolicy
    implementation that has not admitted the pod's address yet), and pg_dump does not retry.
    Files are ``<prefix>-<UTC timestamp>[...]`` so a name sort is a time sort; the dump is
    written to ``*.partial`` and renamed only after pg_dump succeeded, so a crash never leaves
    something that looks like a backup; retention runs only after a good dump and deletes the
    oldest complete dumps of the same kind beyond ``retain``.
    """
    dump = shlex.join(pg_dump_args())
    pattern = dump_file_pattern(prefix)
    return "\n".join(
        [
            "set -eu",
            "waited=0",
            "until pg_isready --quiet --timeout=2; do",
            "  waited=$((waited + 1))",
            f'  if [ "$waited" -ge {wait_seconds} ]; then',
            '    echo "PostgreSQL at ${PGHOST:-localhost}:${PGPORT:-5432} did not accept'
            f' connections within {wait_seconds} s" >&2',
            "    exit 1",
            "  fi",
            "  sleep 1",
            "done",
            'stamp="$(date -u +%Y%m%dT%H%M%SZ)"',
            f'final="{BACKUP_DIR}/{prefix}-${{stamp}}${{DUMP_TAG:+-$DUMP_TAG}}{DUMP_SUFFIX}"',
            'partial="${final}.partial"',
            "trap 'rm -f \"$partial\"' EXIT",
            f'{dump} --file "$partial"',
            'mv "$partial" "$final"',
            "trap - EXIT",
            'echo "wrote $final ($(wc -c < "$final") bytes)"',
            f"ls -1 {pattern} 2>/dev/null | sort -r | tail -n +{retain + 1} | "
            'while read -r old; do rm -f -- "$old"; echo "removed $old"; done',
        ]
    )


def _managed(inst: Instance) -> api.ManagedDatabase:
    managed = inst.spec.database.managed
    if managed is None:
        raise ValueError("backups exist only for a managed database")
    return managed


def _backup_job_spec(inst: Instance, prefix: str, tag: str | None) -> dict[str, Any]:
    managed = _managed(inst)
    env: list[dict[str, Any]] = [
        {"name": "PGHOST", "value": postgres_name(inst)},
        {"name": "PGPORT", "value": str(POSTGRES_PORT)},
        {"name": "PGUSER", "value": DATABASE_USER},
        {"name": "PGDATABASE", "value": DATABASE_NAME},
        secret_env("PGPASSWORD", credentials_secret_name(inst), KEY_POSTGRES_PASSWORD),
    ]
    if tag is not None:
        env.append({"name": "DUMP_TAG", "value": tag})
    container = {
        "name": "backup",
        "image": managed.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", backup_script(prefix, managed.backup.retain)],
        "env": env,
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": container_security_context(POSTGRES_UID),
        "volumeMounts": [{"name": BACKUP_VOLUME, "mountPath": BACKUP_DIR}, dict(TMP_MOUNT)],
    }
    volumes = [
        {"name": BACKUP_VOLUME, "persistentVolumeClaim": {"claimName": backup_pvc_name(inst)}},
        empty_dir("tmp"),
    ]
    spec = pod_spec(inst, [container], uid=POSTGRES_UID, volumes=volumes, grace_seconds=30)
    spec["restartPolicy"] = "Never"
    return {
        "backoffLimit": BACKUP_BACKOFF_LIMIT,
        "activeDeadlineSeconds": inst.spec.migrations.active_deadline_seconds,
        "template": {"metadata": {"labels": common_labels(inst, COMPONENT_BACKUP)}, "spec": spec},
    }


def build_backup_pvc(inst: Instance) -> Manifest:
    """Return the backup volume claim, kept on deletion exactly like the data volumes."""
    managed = _managed(inst)
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": managed.backup.storage}},
    }
    if managed.storage_class_name is not None:
        spec["storageClassName"] = managed.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(
            inst, backup_pvc_name(inst), COMPONENT_BACKUP, owned=not inst.spec.retain_data_on_delete
        ),
        "spec": spec,
    }


def build_backup_job(inst: Instance, revision: str) -> Manifest:
    """Return the Job dumping the database before the migration of ``revision``."""
    meta = metadata(inst, backup_job_name(inst, revision), COMPONENT_BACKUP)
    meta["labels"][REVISION_LABEL] = revision
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": _backup_job_spec(inst, PRE_MIGRATION_PREFIX, revision),
    }


def build_backup_cronjob(inst: Instance) -> Manifest | None:
    """Return the scheduled backup CronJob, or None when no schedule is set."""
    managed = _managed(inst)
    if managed.backup.schedule is None:
        return None
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(inst, backup_cronjob_name(inst), COMPONENT_BACKUP),
        "spec": {
            "schedule": managed.backup.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": _backup_job_spec(inst, SCHEDULED_PREFIX, None)},
        },
    }


def backup_wanted(inst: Instance) -> bool:
    """Return whether a migration must be preceded by a dump."""
    return inst.spec.database.managed is not None and inst.spec.migrations.backup_first
