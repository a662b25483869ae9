"""Operator restarts part-way through a pass: the next pass converges, nothing runs twice."""

from __future__ import annotations

import pytest
from tests.unit.operator.world import World, installed, world

from partyquiz_operator.plan.lifecycle import Plan


def templates(w: World) -> tuple[str, str]:
    return w.template_revision("quiz-web"), w.template_revision("quiz-ws")


def reasons(plan: Plan) -> list[str]:
    return [event.reason for event in plan.events]


@pytest.mark.parametrize("crash_after", ["record", "deletes", "applies"])
def test_a_restart_at_any_point_of_a_rollback_keeps_rolling_back(crash_after: str) -> None:
    w, first = installed(rollout={"progressDeadlineSeconds": 600, "bakeSeconds": 0})
    w.edit(version="1.5.0")
    w.step()
    w.settle("Job")
    w.step()
    target = w.st.revisions.target
    w.stuck_pod("web", "CrashLoopBackOff")
    w.step(crash_after=crash_after)
    assert w.st.revisions.failed == target
    w.step()  # the restarted operator's first pass
    assert templates(w) == (first, first)
    assert w.condition("Degraded").reason == "RolledBack"


@pytest.mark.parametrize("crash_after", ["applies", None])
def test_a_restart_during_an_upgrade_runs_its_migration_once(crash_after: str | None) -> None:
    w, _ = installed()
    w.edit(version="1.5.0")
    w.step(crash_after=crash_after)
    jobs = w.names("Job")
    for _ in range(3):
        w.step()
    assert w.names("Job") == jobs
    w.settle()
    w.run_until("Ready", settle=("Deployment",))


def test_a_restart_before_the_first_status_converges_to_one_migration() -> None:
    w = world()
    w.step(crash_after="applies")
    w.settle("StatefulSet")
    w.step(crash_after="applies")
    w.step()
    assert len(w.names("Job")) == 1
    w.settle()
    w.run_until("Ready", settle=("Deployment",))


# Back up, migrate, roll out, bake starts, bake goes on, Ready: the passes of an upgrade without
# a restart. A restart costs the pass it interrupted, so the walk takes one more.
UPGRADE_PASSES = 6


@pytest.mark.parametrize("crashed_pass", range(UPGRADE_PASSES))
def test_a_restart_at_any_step_of_an_upgrade_with_backup_and_bake_ends_where_one_without_does(
    crashed_pass: int,
) -> None:
    w, first = installed(
        migrations={"backupFirst": True}, rollout={"progressDeadlineSeconds": 60, "bakeSeconds": 30}
    )
    w.edit(version="1.5.0")
    for n in range(UPGRADE_PASSES + 1):
        w.step(crash_after="applies" if n == crashed_pass else None)
        w.settle()
        w.later(16)
    target = w.st.revisions.target
    assert w.st.phase == "Ready", w.status
    assert w.st.revisions.current == target
    assert w.st.revisions.failed is None
    assert w.st.known_good is not None
    assert w.st.known_good.version == "1.5.0"
    assert templates(w) == (target, target)
    assert w.names("Job") == {
        f"quiz-migrate-{first}",
        f"quiz-backup-{target}",
        f"quiz-migrate-{target}",
    }
    assert not [r for plan in w.plans for r in reasons(plan) if "Rolled" in r], "no rollback"
