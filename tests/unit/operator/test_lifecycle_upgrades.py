"""Upgrades, pass by pass: backup, migration, rollout, failures that stop them, retry, revert."""

from __future__ import annotations

import pytest
from tests.unit.operator.world import World, installed, world

from partyquiz_operator import api
from partyquiz_operator.plan.lifecycle import Plan


def templates(w: World) -> tuple[str, str]:
    return w.template_revision("quiz-web"), w.template_revision("quiz-ws")


def reasons(plan: Plan) -> list[str]:
    return [event.reason for event in plan.events]


def test_a_version_bump_migrates_first_then_rolls_out_and_prunes_old_jobs() -> None:
    w, first = installed()
    w.edit(version="1.5.0")
    w.step()
    target = w.st.revisions.target
    assert target != first
    assert w.st.phase == "Migrating"
    assert templates(w) == (first, first), "the old pods keep serving while it migrates"
    w.settle("Job")
    w.step()
    assert templates(w) == (target, target)
    w.settle("Deployment")
    w.step()
    assert w.st.phase == "Ready"
    assert w.st.version == "1.5.0"
    assert w.names("Job") == {f"quiz-migrate-{first}", f"quiz-migrate-{target}"}
    w.edit(version="1.6.0")
    third = None
    for _ in range(4):
        w.step()
        w.settle()
        third = w.st.revisions.current
    assert third not in (first, target)
    assert w.names("Job") == {f"quiz-migrate-{target}", f"quiz-migrate-{third}"}


def test_an_upgrade_dumps_the_database_before_migrating_and_the_first_install_does_not() -> None:
    w, first = installed(migrations={"backupFirst": True})
    assert w.names("Job") == {f"quiz-migrate-{first}"}
    w.edit(version="1.5.0")
    w.step()
    target = w.st.revisions.target
    assert w.names("Job") == {f"quiz-migrate-{first}", f"quiz-backup-{target}"}
    assert "quiz-backups" in w.names("PersistentVolumeClaim")
    assert w.condition("MigrationComplete").reason == "BackingUp"
    w.finish_job(f"quiz-backup-{target}")
    w.step()
    assert f"quiz-migrate-{target}" in w.names("Job")


def test_a_failed_backup_stops_the_upgrade_before_the_migration() -> None:
    w, first = installed(migrations={"backupFirst": True})
    w.edit(version="1.5.0")
    w.step()
    target = w.st.revisions.target
    w.finish_job(f"quiz-backup-{target}", failed=True, reason="BackoffLimitExceeded")
    plan = w.step()
    assert w.st.phase == "Degraded"
    assert "the migration did not start" in w.condition("Degraded").message
    assert f"quiz-migrate-{target}" not in w.names("Job")
    assert templates(w) == (first, first)
    assert ("migrations", "failed") in plan.tallies


def test_a_failed_migration_leaves_the_workloads_and_is_not_retried() -> None:
    w, first = installed()
    w.edit(version="1.5.0")
    w.step()
    target = w.st.revisions.target
    w.finish_job(f"quiz-migrate-{target}", failed=True, reason="BackoffLimitExceeded")
    plan = w.step()
    assert w.st.phase == "Degraded"
    assert w.condition("Degraded").reason == "MigrationFailed"
    assert "BackoffLimitExceeded" in w.condition("Degraded").message
    assert w.st.revisions.failed == target
    assert w.st.revisions.current == first
    assert "RevisionFailed" in reasons(plan)
    assert ("migrations", "failed") in plan.tallies
    jobs = w.names("Job")
    for _ in range(3):
        assert not w.step().waves
    assert w.names("Job") == jobs
    assert templates(w) == (first, first)


def test_reverting_to_the_running_version_is_ready_at_once_without_a_migration() -> None:
    w, first = installed()
    w.edit(version="1.5.0")
    w.step()
    w.finish_job(f"quiz-migrate-{w.st.revisions.target}", failed=True)
    w.step()
    jobs = w.names("Job")
    w.edit(version="1.4.0")
    w.step()
    assert w.st.phase == "Ready"
    assert w.st.revisions.current == first
    assert w.names("Job") == jobs


def test_the_retry_annotation_runs_a_failed_migration_again_once() -> None:
    w, _ = installed()
    w.edit(version="1.5.0", migrations={"backupFirst": False, "podLabels": {"x": "fail"}})
    w.step()
    target = w.st.revisions.target
    w.finish_job(f"quiz-migrate-{target}", failed=True)
    w.step()
    w.edit(migrations={"backupFirst": False})  # the cause is fixed outside the revision
    w.step()
    assert w.st.phase == "Degraded", "a spec change that keeps the revision retries nothing"
    assert w.st.revisions.target == target
    w.annotations[api.RETRY_ANNOTATION] = "1"
    plan = w.step()
    assert plan.deletes == (("Job", f"quiz-migrate-{target}"),)
    assert w.st.retry == "1"
    assert w.st.revisions.failed is None
    w.step()
    assert f"quiz-migrate-{target}" in w.names("Job")
    w.settle()
    w.step()
    w.settle()
    w.step()
    assert w.st.phase == "Ready"
    assert w.st.revisions.current == target
    plan = w.step()
    assert not plan.deletes, "the same annotation value does not retry twice"


@pytest.mark.parametrize("reason", ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"])
def test_pods_that_cannot_start_are_rolled_back_at_once_without_a_migration(reason: str) -> None:
    w, first = installed(rollout={"progressDeadlineSeconds": 600, "bakeSeconds": 0})
    w.edit(version="1.5.0")
    w.step()
    target = w.st.revisions.target
    w.settle("Job")
    w.step()
    assert templates(w) == (target, target)
    jobs = w.names("Job")
    w.start_rollout("quiz-web")
    w.stuck_pod("web", reason)
    plan = w.step()
    assert plan.record_first, "the failure is written before the Deployments change"
    assert w.st.phase == "RollingBack"
    assert templates(w) == (first, first)
    degraded = w.condition("Degraded")
    assert degraded.reason == "RolledBack"
    assert reason in degraded.message
    assert target in degraded.message
    assert first in degraded.message
    assert w.st.revisions.failed == target
    assert ("rollouts", "web", "rolled_back") in plan.tallies
    assert w.names("Job") == jobs, "a rollback runs no migration"
    w.settle("Deployment")
    w.step()
    assert w.st.phase == "Degraded"
    for _ in range(3):
        w.step()
    assert templates(w) == (first, first), "a failed revision is not retried by itself"


def test_a_rollout_that_never_becomes_ready_fails_at_its_progress_deadline() -> None:
    w, first = installed()
    w.edit(version="1.5.0")
    w.step()
    w.settle("Job")
    w.step()
    w.roll_out("quiz-web", available=1, deadline=True)
    w.step()
    assert w.condition("Degraded").reason == "RolledBack"
    assert "ProgressDeadlineExceeded" in w.condition("Degraded").message
    assert templates(w) == (first, first)


def test_a_rollout_still_incomplete_after_its_timeout_fails() -> None:
    w, first = installed(
        rollout={"progressDeadlineSeconds": 600, "bakeSeconds": 0, "timeoutSeconds": 60}
    )
    w.edit(version="1.5.0")
    w.step()
    w.settle("Job")
    w.step()
    w.start_rollout("quiz-web")
    w.later(61)
    w.step()
    assert "RolloutTimeout" in w.condition("Degraded").message
    assert templates(w) == (first, first)


def test_a_first_install_that_never_becomes_ready_is_degraded_with_nothing_to_roll_back_to() -> (
    None
):
    w = world()
    for _ in range(3):
        w.step()
        w.settle("StatefulSet", "Job")
    w.roll_out("quiz-web", available=0, deadline=True)
    w.step()
    assert w.st.phase == "Degraded"
    assert "no known-good revision yet" in w.condition("Degraded").message
    assert w.st.revisions.current is None


def test_a_first_install_whose_pods_crashed_while_starting_is_ready_once_they_run() -> None:
    w = world()
    for _ in range(3):
        w.step()
        w.settle("StatefulSet", "Job")
    w.stuck_pod("ws", "CrashLoopBackOff")
    w.step()
    target = w.st.revisions.target
    assert w.st.phase == "Degraded"
    assert w.st.revisions.failed == target
    # The kubelet restarted the container and it runs now.
    del w.objects[("Pod", "quiz-ws-stuck")]
    w.settle("Deployment")
    w.step()
    assert w.st.phase == "Ready"
    assert w.st.revisions.current == target
    assert w.st.revisions.failed is None
    assert w.condition("Degraded").status == "False"


def test_a_first_install_still_crashing_stays_failed() -> None:
    w = world()
    for _ in range(3):
        w.step()
        w.settle("StatefulSet", "Job")
    w.stuck_pod("ws", "CrashLoopBackOff")
    w.step()
    w.settle("Deployment")
    w.step()
    assert w.st.phase == "Degraded"
    assert w.st.revisions.failed == w.st.revisions.target
    assert w.st.revisions.current is None


def test_an_upgrade_bakes_before_it_is_known_good_and_a_crash_during_the_bake_rolls_back() -> None:
    w, first = installed(rollout={"progressDeadlineSeconds": 60, "bakeSeconds": 30})
    w.edit(version="1.5.0")
    w.step()
    w.settle("Job")
    w.step()
    target = w.st.revisions.target
    w.settle("Deployment")
    w.step()
    assert w.st.phase == "RollingOut"
    assert w.condition("Ready").reason == "Baking"
    assert w.st.known_good is not None
    assert w.st.known_good.revision == first
    w.later(10)
    w.stuck_pod("ws", "CrashLoopBackOff")
    w.step()
    assert w.condition("Degraded").reason == "RolledBack"
    assert w.st.revisions.failed == target
    assert templates(w) == (first, first)


def test_a_bake_that_holds_makes_the_revision_known_good() -> None:
    w, _ = installed(rollout={"progressDeadlineSeconds": 60, "bakeSeconds": 30})
    w.edit(version="1.5.0")
    for _ in range(3):
        w.step()
        w.settle()
    assert w.st.phase == "RollingOut"
    w.later(31)
    w.step()
    assert w.st.phase == "Ready"
    assert w.st.known_good is not None
    assert w.st.known_good.version == "1.5.0"


def test_without_auto_rollback_a_failed_rollout_stays_where_it_is() -> None:
    w, _ = installed(
        rollout={"progressDeadlineSeconds": 600, "bakeSeconds": 0, "autoRollback": False}
    )
    w.edit(version="1.5.0")
    w.step()
    w.settle("Job")
    w.step()
    target = w.st.revisions.target
    w.stuck_pod("web", "CrashLoopBackOff")
    w.step()
    assert w.st.phase == "Degraded"
    assert "autoRollback is off" in w.condition("Degraded").message
    assert templates(w) == (target, target)


# --- scaling while a newer revision waits or failed ---------------------------------------------


def test_scaling_works_while_an_upgrade_that_failed_to_migrate_waits() -> None:
    w, first = installed()
    w.edit(version="1.5.0")
    w.step()
    w.finish_job(f"quiz-migrate-{w.st.revisions.target}", failed=True)
    w.step()
    w.edit(web={"replicas": 3}, ws={"replicas": 4})
    w.step()
    assert w.objects[("Deployment", "quiz-web")]["spec"]["replicas"] == 3
    assert w.objects[("Deployment", "quiz-ws")]["spec"]["replicas"] == 4
    assert templates(w) == (first, first), "the pods stay on the revision that runs"
    assert w.st.observed_generation == w.generation
    assert w.st.phase == "Degraded"


def test_scaling_works_after_a_rollback_and_keeps_the_known_good_pods() -> None:
    w, first = installed(rollout={"progressDeadlineSeconds": 600, "bakeSeconds": 0})
    w.edit(version="1.5.0")
    w.step()
    w.settle("Job")
    w.step()
    w.stuck_pod("web", "CrashLoopBackOff")
    w.step()
    assert templates(w) == (first, first)
    w.edit(web={"replicas": 5})
    w.step()
    assert w.objects[("Deployment", "quiz-web")]["spec"]["replicas"] == 5
    assert templates(w) == (first, first)
    assert w.condition("Degraded").reason == "RolledBack"


def test_scaling_during_a_migration_reaches_the_pods_that_serve_meanwhile() -> None:
    w, first = installed()
    w.edit(version="1.5.0", ws={"replicas": 3})
    w.step()
    assert w.st.phase == "Migrating"
    assert w.objects[("Deployment", "quiz-ws")]["spec"]["replicas"] == 3
    assert templates(w) == (first, first)


def rolled_back() -> tuple[World, str, str]:
    """An instance whose upgrade crash-looped and was rolled back, settled on the old pods."""
    w, first = installed(rollout={"progressDeadlineSeconds": 600, "bakeSeconds": 0})
    w.edit(version="1.5.0")
    w.step()
    target = str(w.st.revisions.target)
    w.settle("Job")
    w.step()
    w.start_rollout("quiz-web")
    w.stuck_pod("web", "CrashLoopBackOff")
    w.step()
    w.settle("Deployment")
    w.step()
    assert w.condition("Degraded").reason == "RolledBack"
    return w, first, target


def test_a_rollback_stays_reported_as_written_whatever_its_message_says() -> None:
    w, first, _ = rolled_back()
    degraded = next(c for c in w.status["conditions"] if c["type"] == "Degraded")
    degraded["message"] = "rolled back after the new pods crashed"  # worded by another release
    w.step()
    assert w.condition("Degraded").reason == "RolledBack"
    assert w.condition("Degraded").message == "rolled back after the new pods crashed"
    assert templates(w) == (first, first)


def test_a_failed_revision_is_named_anew_after_another_degradation_that_mentions_it() -> None:
    w, first, target = rolled_back()
    degraded = next(c for c in w.status["conditions"] if c["type"] == "Degraded")
    degraded["reason"] = "DependencyUnavailable"
    degraded["message"] = f"PostgreSQL is not ready (pods of {target} wait for it)"
    w.step()
    assert w.condition("Degraded").reason == "RolledBack"
    assert w.condition("Degraded").message == f"revision {target} failed before; not retried"
    assert templates(w) == (first, first)
