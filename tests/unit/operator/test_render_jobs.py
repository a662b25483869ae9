"""Backups: a volume, a pre-migration dump Job, a scheduled CronJob, retention in the script."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.unit.operator.operator_pss import restricted_violations

from partyquiz_operator import api, render
from partyquiz_operator.render import common, jobs, network, stores

MANAGED = {"version": "1.4.0", "database": {"managed": {}}, "redis": {"managed": {}}}
EXTERNAL_DB = {
    "version": "1.4.0",
    "database": {"external": {"secretRef": {"name": "db", "key": "url"}}},
    "redis": {"managed": {}},
}


def make(spec: dict[str, Any]) -> common.Instance:
    return common.Instance(
        name="quiz", namespace="games", uid="uid-1234", spec=api.parse_spec(spec), generation=3
    )


def backup_children(inst: common.Instance) -> list[dict[str, Any]]:
    """Return the backup children among what the spec renders (revision-independent)."""
    credentials = stores.build_credentials_secret(inst, {}, lambda n: "x" * n)
    waves = render.infrastructure(inst, credentials=credentials, claims={})
    return [
        c
        for c in waves[-1]
        if c["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"
        or c["metadata"]["name"].endswith("-postgres-backup")
    ]


def with_backup(**settings: Any) -> dict[str, Any]:
    return {**MANAGED, "database": {"managed": {"backup": settings}}}


def test_backups_are_on_by_default_for_a_managed_database() -> None:
    inst = make(MANAGED)
    assert jobs.backup_wanted(inst)
    kinds = [c["kind"] for c in backup_children(inst)]
    assert kinds == ["NetworkPolicy"]  # the volume comes with the first dump


def test_backup_first_can_be_turned_off() -> None:
    assert not jobs.backup_wanted(make({**MANAGED, "migrations": {"backupFirst": False}}))


def test_an_external_database_gets_no_backup_children() -> None:
    inst = make(EXTERNAL_DB)
    assert not jobs.backup_wanted(inst)
    assert backup_children(inst) == []


def test_backup_volume_uses_the_database_storage_class_and_its_own_size() -> None:
    spec = {
        **MANAGED,
        "database": {"managed": {"storageClassName": "fast", "backup": {"storage": "3Gi"}}},
    }
    pvc = jobs.build_backup_pvc(make(spec))
    assert pvc["metadata"]["name"] == "quiz-backups"
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "3Gi"
    assert "ownerReferences" not in pvc["metadata"], "kept on deletion, like the data"
    dropped = jobs.build_backup_pvc(make({**spec, "retainDataOnDelete": False}))
    assert dropped["metadata"]["ownerReferences"][0]["uid"] == "uid-1234"


def test_pre_migration_job_dumps_to_the_backup_volume_tagged_with_the_revision() -> None:
    job = jobs.build_backup_job(make(MANAGED), "abc123")
    assert job["metadata"]["name"] == "quiz-backup-abc123"
    assert job["metadata"]["labels"][common.REVISION_LABEL] == "abc123"
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["DUMP_TAG"]["value"] == "abc123"
    assert env["PGHOST"]["value"] == "quiz-postgres"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "quiz-credentials",
        "key": stores.KEY_POSTGRES_PASSWORD,
    }
    assert container["image"] == api.DEFAULT_POSTGRES_IMAGE
    assert "pg_dump --format=custom" in container["command"][2]
    assert "pre-migration-" in container["command"][2]
    assert {"name": "backups", "mountPath": "/backups"} in container["volumeMounts"]
    claim = next(v for v in pod["volumes"] if v["name"] == "backups")
    assert claim["persistentVolumeClaim"]["claimName"] == "quiz-backups"
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == jobs.BACKUP_BACKOFF_LIMIT
    assert job["spec"]["activeDeadlineSeconds"] == 600


def test_backup_pods_meet_pod_security_restricted() -> None:
    inst = make(with_backup(schedule="0 3 * * *"))
    job = jobs.build_backup_job(inst, "r1")
    cron = jobs.build_backup_cronjob(inst)
    assert cron is not None
    assert restricted_violations(job["spec"]["template"]["spec"]) == []
    assert restricted_violations(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]) == []


def test_backup_pods_are_admitted_to_postgres_by_their_own_policy() -> None:
    policy = network.build_backup_network_policy(make(MANAGED))
    assert policy["metadata"]["name"] == "quiz-postgres-backup"
    assert policy["spec"]["podSelector"]["matchLabels"] == common.selector_labels(
        make(MANAGED), common.COMPONENT_DATABASE
    )
    peer = policy["spec"]["ingress"][0]["from"][0]["podSelector"]
    assert peer["matchExpressions"][0]["values"] == ["backup"]
    job = jobs.build_backup_job(make(MANAGED), "r1")
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"


def test_no_schedule_means_no_cronjob() -> None:
    assert jobs.build_backup_cronjob(make(MANAGED)) is None


def test_schedule_makes_a_non_overlapping_utc_cronjob_with_the_retention() -> None:
    inst = make(with_backup(schedule="15 3 * * *", retain=4))
    cron = jobs.build_backup_cronjob(inst)
    assert cron is not None
    assert cron["metadata"]["name"] == "quiz-backup"
    assert cron["spec"]["schedule"] == "15 3 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    script = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "scheduled-" in script
    assert "tail -n +5" in script
    kinds = [c["kind"] for c in backup_children(inst)]
    assert kinds == ["NetworkPolicy", "PersistentVolumeClaim", "CronJob"]


@pytest.mark.parametrize("schedule", ["every day", "* * *", "@sometimes"])
def test_malformed_schedules_are_refused(schedule: str) -> None:
    with pytest.raises(ValueError, match="schedule"):
        api.parse_spec(with_backup(schedule=schedule))


def test_retention_must_keep_at_least_one_dump() -> None:
    with pytest.raises(ValueError, match="retain"):
        api.parse_spec(with_backup(retain=0))


def test_restore_command_replaces_objects_in_one_transaction() -> None:
    args = jobs.pg_restore_args("partyquiz")
    assert args[0] == "pg_restore"
    assert {"--clean", "--if-exists", "--single-transaction", "--exit-on-error"} <= set(args)
    assert args[-2:] == ["--dbname", "partyquiz"]


def _fake_pg_dump(bin_dir: Path, *, fail: bool) -> None:
    script = bin_dir / "pg_dump"
    body = (
        'echo "$@" >&2; exit 3'
        if fail
        else (
            'while [ "$#" -gt 0 ]; do if [ "$1" = --file ]; then shift; echo dump > "$1"; fi; '
            "shift; done"
        )
    )
    script.write_text(f'#!/bin/sh\necho pg_dump >> "{bin_dir / "calls"}"\n{body}\n')
    script.chmod(0o755)


def _fake_pg_isready(bin_dir: Path, refusals: int) -> None:
    """pg_isready that reports a refused connection ``refusals`` times, then a ready server."""
    script = bin_dir / "pg_isready"
    count = bin_dir / "pg_isready.calls"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(($(cat "{count}" 2>/dev/null || echo 0) + 1)); echo "$n" > "{count}"\n'
        f'echo "pg_isready $n" >> "{bin_dir / "calls"}"\n'
        f'[ "$n" -gt {refusals} ] || exit 2\n'
    )
    script.chmod(0o755)


def _run(
    tmp_path: Path,
    prefix: str,
    retain: int,
    *,
    fail: bool = False,
    refusals: int = 0,
    wait: int = 60,
) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    _fake_pg_dump(bin_dir, fail=fail)
    _fake_pg_isready(bin_dir, refusals)
    script = jobs.backup_script(prefix, retain, wait_seconds=wait)
    script = script.replace(jobs.BACKUP_DIR, str(tmp_path / "b"))
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "DUMP_TAG": "rev1", "PGHOST": "db"}
    sh = shutil.which("sh")
    assert sh is not None
    return subprocess.run([sh, "-c", script], env=env, capture_output=True, text=True, check=False)


def _run_script(tmp_path: Path, prefix: str, retain: int, *, fail: bool = False) -> int:
    return _run(tmp_path, prefix, retain, fail=fail).returncode


def test_script_keeps_only_the_newest_dumps_of_its_kind(tmp_path: Path) -> None:
    out = tmp_path / "b"
    out.mkdir()
    for stamp in ("20250101T000000Z", "20250102T000000Z", "20250103T000000Z"):
        (out / f"scheduled-{stamp}.dump").write_text("old")
    (out / "pre-migration-20240101T000000Z-rev0.dump").write_text("other kind")
    assert _run_script(tmp_path, "scheduled", 2) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names[0] == "pre-migration-20240101T000000Z-rev0.dump"
    scheduled = [n for n in names if n.startswith("scheduled-")]
    assert len(scheduled) == 2
    assert "scheduled-20250103T000000Z.dump" in scheduled
    fresh = next(n for n in scheduled if n != "scheduled-20250103T000000Z.dump")
    assert fresh.endswith("-rev1.dump")
    assert (out / fresh).read_text() == "dump\n"


def test_failed_dump_leaves_no_file_and_deletes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "b"
    out.mkdir()
    (out / "scheduled-20250101T000000Z.dump").write_text("old")
    assert _run_script(tmp_path, "scheduled", 1, fail=True) != 0
    assert [p.name for p in out.iterdir()] == ["scheduled-20250101T000000Z.dump"]


def test_script_waits_for_postgres_to_accept_connections_before_dumping(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    done = _run(tmp_path, "pre-migration", 3, refusals=1)
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "bin" / "calls").read_text().split("\n")
    assert calls[:3] == ["pg_isready 1", "pg_isready 2", "pg_dump"]
    assert len(list((tmp_path / "b").glob("pre-migration-*-rev1.dump"))) == 1


def test_script_gives_up_on_a_database_that_never_answers_and_writes_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "b").mkdir()
    done = _run(tmp_path, "pre-migration", 3, refusals=99, wait=1)
    assert done.returncode != 0
    assert "PostgreSQL at db:5432 did not accept connections within 1 s" in done.stderr
    assert "pg_dump" not in (tmp_path / "bin" / "calls").read_text()
    assert list((tmp_path / "b").iterdir()) == []


def test_the_runbook_restores_with_the_restore_script_line_for_line() -> None:
    runbook = (Path(__file__).resolve().parents[3] / "docs" / "operations.md").read_text()
    documented = {line.strip() for line in runbook.splitlines()}
    assert set(jobs.restore_script().splitlines()) <= documented


def test_restore_reads_the_whole_dump_before_it_changes_anything() -> None:
    lines = jobs.restore_script().splitlines()
    reading = next(i for i, line in enumerate(lines) if line.startswith("pg_restore"))
    loading = next(i for i, line in enumerate(lines) if line.startswith("psql"))
    assert reading < loading
    assert lines[0] == "set -eu"  # an unreadable dump stops the script before psql
    assert "--single-transaction" in lines[loading]
    assert "ON_ERROR_STOP=1" in lines[loading]
