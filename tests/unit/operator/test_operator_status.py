"""Status: observations map to phases and conditions; transition times move only on change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from partyquiz_operator import api
from partyquiz_operator.plan import status

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
READY = status.WorkloadState(
    exists=True, desired=2, ready=2, updated=2, available=2, generation_observed=True
)
STORE_READY = status.WorkloadState(exists=True, desired=1, ready=1, updated=1, available=1)


def observe(**overrides: object) -> status.Observation:
    values: dict[str, object] = {
        "generation": 4,
        "target_revision": "rev2",
        "version": "1.4.0",
        "database": STORE_READY,
        "redis": STORE_READY,
        "migration": "Complete",
        "web": READY,
        "ws": READY,
    }
    values.update(overrides)
    return status.Observation(**values)  # type: ignore[arg-type]


def compute(
    obs: status.Observation, previous: api.PartyQuizStatus | None = None, now: datetime = T0
) -> api.PartyQuizStatus:
    return status.compute_status(
        obs,
        previous or api.PartyQuizStatus(),
        now=now,
        database_name="q-postgres",
        redis_name="q-redis",
    )


def condition(st: api.PartyQuizStatus, type_: str) -> api.Condition:
    return next(c for c in st.conditions if c.type == type_)


def test_everything_ready_is_ready_and_records_the_current_revision() -> None:
    st = compute(observe())
    assert st.phase == "Ready"
    assert condition(st, "Ready").status == "True"
    assert condition(st, "Degraded").status == "False"
    assert st.revisions.current == st.revisions.target == st.revisions.migrated == "rev2"
    assert st.version == "1.4.0"
    assert st.components.web.summary == "2/2"
    assert st.observed_generation == 4
    # MonitoringReady is added by the reconciler, and only when spec.monitoring asks for it.
    assert [c.type for c in st.conditions] == [
        t for t in api.CONDITION_TYPES if t != "MonitoringReady"
    ]


def test_a_store_that_is_not_ready_yet_means_provisioning() -> None:
    st = compute(
        observe(database=status.WorkloadState(exists=True, desired=1), migration="Waiting")
    )
    assert st.phase == "Provisioning"
    assert condition(st, "DatabaseReady").status == "False"
    assert condition(st, "Progressing").status == "True"


def test_external_stores_are_reported_ready() -> None:
    st = compute(observe(database=None, redis=None))
    assert condition(st, "DatabaseReady").reason == "External"
    assert st.components.database is None


def test_running_migration_means_migrating() -> None:
    st = compute(observe(migration="Running"))
    assert st.phase == "Migrating"
    assert condition(st, "MigrationComplete").status == "False"


def test_failed_migration_is_degraded_and_records_the_failed_revision() -> None:
    st = compute(observe(migration="Failed", migration_message="BackoffLimitExceeded"))
    assert st.phase == "Degraded"
    assert st.revisions.failed == "rev2"
    assert condition(st, "Degraded").message == "BackoffLimitExceeded"


def test_pods_still_coming_up_mean_rolling_out() -> None:
    rolling = status.WorkloadState(
        exists=True, desired=2, ready=1, updated=2, available=1, generation_observed=True
    )
    assert compute(observe(web=rolling)).phase == "RollingOut"


def test_a_deadline_exceeded_or_lost_pods_after_rollout_is_degraded() -> None:
    stuck = status.WorkloadState(
        exists=True, desired=2, updated=1, generation_observed=True, deadline_exceeded=True
    )
    assert compute(observe(ws=stuck)).phase == "Degraded"
    lost = status.WorkloadState(
        exists=True,
        desired=2,
        ready=1,
        updated=2,
        available=1,
        generation_observed=True,
        rollout_finished_once=True,
    )
    assert compute(observe(web=lost)).phase == "Degraded"


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = compute(observe())
    later = compute(observe(), first, now=T0 + timedelta(minutes=5))
    assert (
        condition(later, "Ready").last_transition_time
        == condition(first, "Ready").last_transition_time
    )
    assert status.status_body(later) == status.status_body(first)
    broken = compute(observe(migration="Failed"), later, now=T0 + timedelta(minutes=9))
    assert condition(broken, "Ready").last_transition_time == "2026-01-01T12:09:00Z"


def test_phase_changes_produce_events() -> None:
    first = compute(observe(migration="Running"))
    ready = compute(observe(), first)
    events = status.transitions(first, ready)
    assert any(e.reason == "PhaseReady" and e.type == "Normal" for e in events)
    assert any(e.reason == "MigrationCompleteTrue" for e in events)
    assert status.transitions(ready, ready) == []
    failed = compute(observe(migration="Failed"), ready)
    assert any(
        e.type == "Warning" and e.reason == "PhaseDegraded"
        for e in status.transitions(ready, failed)
    )


def test_suspend_says_so_in_a_condition() -> None:
    st = status.suspended_status(compute(observe()), now=T0, generation=5)
    assert st.phase == "Suspended"
    assert condition(st, "Progressing").reason == "Suspended"
    assert st.observed_generation == 5
