"""Backups of the managed PostgreSQL: the volume, the pre-migration dump Job, the CronJob.

Owns the dump and restore command lines (shared with the restore procedure in
docs/operations.md and its integration test) and the shell script a backup pod runs: dump to a
partial file, rename it into place, then enforce retention. Pure builders like ``builders``;
it must not talk to the cluster.
"""

from __future__ import annotations

import shlex
from typing import Any

from partyquiz_operator import builders
from partyquiz_operator.builders import Instance, Manifest

COMPONENT_BACKUP = builders.COMPONENT_BACKUP
BACKUP_DIR = "/backups"
BACKUP_VOLUME = "backups"
PRE_MIGRATION_PREFIX = "pre-migration"
SCHEDULED_PREFIX = "scheduled"
DUMP_SUFFIX = ".dump"
# A dump is a read-only transaction; give it the migration's deadline, never unbounded.
BACKUP_BACKOFF_LIMIT = 1


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


def backup_script(
    prefix: str, retain: int, wait_seconds: int = builders.MIGRATION_WAIT_SECONDS
) -> str:
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


def _settings(inst: Instance) -> Any:
    managed = inst.spec.database.managed
    if managed is None:
        raise ValueError("backups exist only for a managed database")
    return managed


def _backup_pod_spec(inst: Instance, prefix: str, tag: str | None) -> dict[str, Any]:
    managed = _settings(inst)
    env: list[dict[str, Any]] = [
        {"name": "PGHOST", "value": builders.postgres_name(inst)},
        {"name": "PGPORT", "value": str(builders.POSTGRES_PORT)},
        {"name": "PGUSER", "value": builders.DATABASE_USER},
        {"name": "PGDATABASE", "value": builders.DATABASE_NAME},
        {
            "name": "PGPASSWORD",
            "valueFrom": {
                "secretKeyRef": {
                    "name": builders.credentials_secret_name(inst),
                    "key": builders.KEY_POSTGRES_PASSWORD,
                }
            },
        },
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
        "securityContext": builders.container_security_context(builders.POSTGRES_UID),
        "volumeMounts": [
            {"name": BACKUP_VOLUME, "mountPath": BACKUP_DIR},
            dict(builders.TMP_MOUNT),
        ],
    }
    return {
        "serviceAccountName": builders.service_account_name(inst),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "securityContext": builders.pod_security_context(builders.POSTGRES_UID),
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": [
            {"name": BACKUP_VOLUME, "persistentVolumeClaim": {"claimName": backup_pvc_name(inst)}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }


def _job_spec(inst: Instance, prefix: str, tag: str | None) -> dict[str, Any]:
    labels = builders.common_labels(inst, COMPONENT_BACKUP)
    return {
        "backoffLimit": BACKUP_BACKOFF_LIMIT,
        "activeDeadlineSeconds": inst.spec.migrations.active_deadline_seconds,
        "template": {
            "metadata": {"labels": labels},
            "spec": _backup_pod_spec(inst, prefix, tag),
        },
    }


def build_backup_pvc(inst: Instance) -> Manifest:
    """Return the backup volume claim (kept on deletion like the data volumes)."""
    managed = _settings(inst)
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": managed.backup.storage}},
    }
    if managed.storage_class_name is not None:
        spec["storageClassName"] = managed.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": builders.labelled_metadata(inst, backup_pvc_name(inst), COMPONENT_BACKUP),
        "spec": spec,
    }


def build_backup_job(inst: Instance, revision: str) -> Manifest:
    """Return the Job dumping the database before the migration of ``revision``."""
    metadata = builders.labelled_metadata(inst, backup_job_name(inst, revision), COMPONENT_BACKUP)
    metadata["labels"][builders.REVISION_LABEL] = revision
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": _job_spec(inst, PRE_MIGRATION_PREFIX, revision),
    }


def build_backup_cronjob(inst: Instance) -> Manifest | None:
    """Return the scheduled backup CronJob, or None when no schedule is set."""
    managed = _settings(inst)
    if managed.backup.schedule is None:
        return None
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": builders.labelled_metadata(inst, backup_cronjob_name(inst), COMPONENT_BACKUP),
        "spec": {
            "schedule": managed.backup.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": _job_spec(inst, SCHEDULED_PREFIX, None)},
        },
    }


def backup_network_policy_name(inst: Instance) -> str:
    """Return the name of the NetworkPolicy letting backup pods reach PostgreSQL."""
    return f"{builders.postgres_name(inst)}-backup"


def build_backup_network_policy(inst: Instance) -> Manifest:
    """Return the NetworkPolicy admitting backup pods to PostgreSQL (policies add up)."""
    return builders.network_policy(
        inst,
        backup_network_policy_name(inst),
        builders.COMPONENT_DATABASE,
        [COMPONENT_BACKUP],
        builders.POSTGRES_PORT,
    )


def build_backup_children(inst: Instance) -> list[Manifest]:
    """Return the revision-independent backup children the spec asks for, in apply order.

    The volume is made here only for scheduled backups; a pre-migration dump makes it when it
    first needs it (``build_backup_job_children``), so an install without backups has none.
    """
    if inst.spec.database.managed is None:
        return []
    children = [build_backup_network_policy(inst)]
    cronjob = build_backup_cronjob(inst)
    if cronjob is not None:
        children += [build_backup_pvc(inst), cronjob]
    return children


def backup_wanted(inst: Instance) -> bool:
    """Return whether a migration must be preceded by a dump."""
    return inst.spec.database.managed is not None and inst.spec.migrations.backup_first
