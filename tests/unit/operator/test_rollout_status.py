"""Upgrade states in the status: rolling out, baking, rolled back, retried, known-good recorded."""

from __future__ import annotations

from datetime import UTC, datetime

from partyquiz_operator import api
from partyquiz_operator.plan import status

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
READY = status.WorkloadState(
    exists=True, desired=2, ready=2, updated=2, available=2, generation_observed=True
)
STARTING = status.WorkloadState(
    exists=True, desired=2, ready=0, updated=1, available=0, generation_observed=True
)
STORE = status.WorkloadState(exists=True, desired=1, ready=1, updated=1, available=1)
GOOD = api.KnownGood(revision="rev1", version="1.4.0", spec='{"version":"1.4.0"}')
CANDIDATE = api.KnownGood(revision="rev2", version="1.5.0", spec='{"version":"1.5.0"}')
RUNNING_REV1 = api.PartyQuizStatus(
    phase="Ready",
    version="1.4.0",
    revisions=api.Revisions(current="rev1", target="rev1", migrated="rev1"),
    known_good=GOOD,
)


def compute(
    previous: api.PartyQuizStatus = RUNNING_REV1, **overrides: object
) -> api.PartyQuizStatus:
    values: dict[str, object] = {
        "generation": 5,
        "target_revision": "rev2",
        "version": "1.5.0",
        "database": STORE,
        "redis": STORE,
        "migration": "Complete",
        "web": READY,
        "ws": READY,
        "known_good": CANDIDATE,
    }
    values.update(overrides)
    obs = status.Observation(**values)  # type: ignore[arg-type]
    return status.compute_status(obs, previous, now=T0, database_name="q-pg", redis_name="q-r")


def cond(st: api.PartyQuizStatus, type_: str) -> api.Condition:
    return next(c for c in st.conditions if c.type == type_)


def test_baking_rollout_is_not_ready_and_keeps_the_old_revision_current() -> None:
    progress = api.RolloutProgress(revision="rev2", started_at="2026-01-01T11:59:00Z")
    st = compute(rollout="Baking", rollout_message="baking 20s more", rollout_progress=progress)
    assert st.phase == "RollingOut"
    assert cond(st, "Progressing").reason == "Baking"
    assert cond(st, "Ready").status == "False"
    assert st.revisions.current == "rev1"
    assert st.rollout == progress
    assert st.known_good == GOOD


def test_completed_rollout_becomes_ready_and_the_new_known_good() -> None:
    st = compute()
    assert st.phase == "Ready"
    assert st.revisions.current == "rev2"
    assert st.known_good == CANDIDATE
    assert st.rollout is None


def test_rollback_in_progress_is_rolling_back_and_degraded() -> None:
    st = compute(failure=("RolledBack", "revision rev2 failed"), rolling_back=True, web=STARTING)
    assert st.phase == "RollingBack"
    assert cond(st, "Degraded").status == "True"
    assert cond(st, "Degraded").reason == "RolledBack"
    assert cond(st, "Progressing").status == "True"
    assert st.revisions.failed == "rev2"
    assert st.revisions.current == "rev1"
    assert st.version == "1.4.0"


def test_finished_rollback_is_degraded_with_the_known_good_kept() -> None:
    st = compute(failure=("RolledBack", "revision rev2 failed; rolled back to rev1"))
    assert st.phase == "Degraded"
    assert cond(st, "Ready").status == "False"
    assert "rev1" in cond(st, "Degraded").message
    assert st.known_good == GOOD


def test_failure_records_a_revision_failed_event() -> None:
    st = compute(failure=("ProgressDeadlineExceeded", "quiz-web: rollout exceeded"))
    events = status.transitions(RUNNING_REV1, st)
    failed = [e for e in events if e.reason == "RevisionFailed"]
    assert len(failed) == 1
    assert failed[0].type == "Warning"
    assert "rev2" in failed[0].message
    assert "ProgressDeadlineExceeded" in failed[0].message


def test_same_failure_again_records_no_new_event() -> None:
    st = compute(failure=("RolledBack", "revision rev2 failed"))
    again = compute(st, failure=("RolledBack", "revision rev2 failed"))
    assert [e for e in status.transitions(st, again) if e.reason == "RevisionFailed"] == []


def test_retry_clears_the_failed_revision_and_remembers_the_token() -> None:
    failed = compute(failure=("RolledBack", "revision rev2 failed"))
    st = compute(failed, migration="Running", retrying=True, retry="7")
    assert st.revisions.failed is None
    assert st.retry == "7"
    assert st.phase == "Migrating"


def test_retry_token_is_kept_when_the_annotation_is_gone() -> None:
    st = compute(RUNNING_REV1.model_copy(update={"retry": "3"}))
    assert st.retry == "3"


def test_backing_up_is_migrating_with_its_own_reason() -> None:
    st = compute(migration="BackingUp")
    assert st.phase == "Migrating"
    assert cond(st, "MigrationComplete").reason == "BackingUp"


def test_failed_migration_keeps_the_known_good_and_current() -> None:
    st = compute(migration="Failed", migration_message="backup Job failed (BackoffLimitExceeded)")
    assert st.phase == "Degraded"
    assert cond(st, "Degraded").reason == "MigrationFailed"
    assert st.revisions.current == "rev1"
    assert st.known_good == GOOD


def test_new_status_fields_round_trip_through_the_api_model() -> None:
    st = compute(failure=("RolledBack", "x"), retry="1")
    body = status.status_body(st)
    assert body["knownGood"] == {
        "revision": "rev1",
        "version": "1.4.0",
        "spec": '{"version":"1.4.0"}',
    }
    assert api.parse_status(body) == st
