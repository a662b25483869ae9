"""Rollout verdicts: kubectl-rollout-status checks, fail-fast pod states, timeout and bake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from partyquiz_operator.plan import rollout
from partyquiz_operator.render.common import REVISION_ANNOTATION

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
REV = "abc123"


def deployment(
    *,
    revision: str = REV,
    generation: int = 3,
    observed: int = 3,
    replicas: int = 2,
    updated: int = 2,
    total: int = 2,
    available: int = 2,
    progressing_reason: str | None = "NewReplicaSetAvailable",
) -> dict[str, Any]:
    conditions = []
    if progressing_reason is not None:
        conditions.append({"type": "Progressing", "status": "True", "reason": progressing_reason})
    return {
        "metadata": {"name": "quiz-web", "generation": generation},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"annotations": {REVISION_ANNOTATION: revision}}},
        },
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": conditions,
        },
    }


def pod(
    waiting: str | None = None, *, revision: str = REV, init: bool = False, deleting: bool = False
) -> dict[str, Any]:
    state: dict[str, Any] = (
        {"waiting": {"reason": waiting, "message": "details"}} if waiting else {"running": {}}
    )
    key = "initContainerStatuses" if init else "containerStatuses"
    meta: dict[str, Any] = {
        "name": "quiz-web-x",
        "annotations": {REVISION_ANNOTATION: revision},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    return {"metadata": meta, "status": {key: [{"name": "web", "state": state}]}}


def assess(
    dep: dict[str, Any] | None, pods: list[dict[str, Any]] | None = None, **kw: Any
) -> rollout.RolloutVerdict:
    values: dict[str, Any] = {
        "revision": REV,
        "now": T0 + timedelta(seconds=30),
        "started_at": T0,
        "timeout_seconds": 900,
        "bake_seconds": 0,
    }
    values.update(kw)
    return rollout.assess_rollout(dep, pods or [], **values)


def test_complete_deployment_without_bake_is_complete() -> None:
    verdict = assess(deployment(), [pod()])
    assert verdict.done
    assert verdict.reason == "NewReplicaSetAvailable"
    assert verdict.completed_at == T0 + timedelta(seconds=30)


def test_missing_deployment_is_still_progressing() -> None:
    verdict = assess(None)
    assert verdict.state == "Progressing"
    assert not verdict.failed


def test_deployment_on_another_revision_is_not_yet_rolled_out() -> None:
    verdict = assess(deployment(revision="old"))
    assert verdict.state == "Progressing"
    assert "does not run revision" in verdict.message


def test_unobserved_generation_waits_for_the_controller() -> None:
    verdict = assess(deployment(generation=4, observed=3))
    assert verdict.state == "Progressing"
    assert verdict.reason == "WaitingForController"


def test_progress_deadline_exceeded_fails_with_the_deployment_reason() -> None:
    verdict = assess(
        deployment(updated=1, available=1, progressing_reason="ProgressDeadlineExceeded")
    )
    assert verdict.failed
    assert verdict.reason == "ProgressDeadlineExceeded"


@pytest.mark.parametrize(
    ("counts", "fragment"),
    [
        ({"updated": 1, "total": 3, "available": 2}, "1/2 replicas updated"),
        ({"updated": 2, "total": 3, "available": 2}, "old replicas terminating"),
        ({"updated": 2, "total": 2, "available": 1}, "1/2 updated replicas available"),
    ],
)
def test_incomplete_counts_keep_the_rollout_progressing(
    counts: dict[str, Any], fragment: str
) -> None:
    verdict = assess(deployment(**counts, progressing_reason="ReplicaSetUpdated"))
    assert verdict.state == "Progressing"
    assert fragment in verdict.message


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"])
def test_image_pull_failure_of_a_new_pod_fails_fast(reason: str) -> None:
    dep = deployment(updated=1, available=0, progressing_reason="ReplicaSetUpdated")
    verdict = assess(dep, [pod(), pod(reason)])
    assert verdict.failed
    assert verdict.reason == reason
    assert "quiz-web-x" in verdict.message


def test_crash_looping_new_pod_fails_fast() -> None:
    dep = deployment(updated=1, available=0, progressing_reason="ReplicaSetUpdated")
    verdict = assess(dep, [pod("CrashLoopBackOff")])
    assert verdict.failed
    assert verdict.reason == "CrashLoopBackOff"


def test_crash_looping_init_container_fails_fast() -> None:
    verdict = assess(deployment(updated=1, available=0), [pod("CrashLoopBackOff", init=True)])
    assert verdict.reason == "CrashLoopBackOff"


def test_old_revision_pods_in_trouble_do_not_fail_the_new_rollout() -> None:
    dep = deployment(updated=1, total=2, available=1, progressing_reason="ReplicaSetUpdated")
    verdict = assess(dep, [pod("CrashLoopBackOff", revision="old")])
    assert verdict.state == "Progressing"


def test_terminating_pods_do_not_fail_the_rollout() -> None:
    verdict = assess(deployment(), [pod("CrashLoopBackOff", deleting=True)])
    assert verdict.done


def test_starting_container_is_not_a_failure() -> None:
    dep = deployment(updated=1, available=0, progressing_reason="ReplicaSetUpdated")
    verdict = assess(dep, [pod("ContainerCreating")])
    assert verdict.state == "Progressing"


def test_wall_clock_timeout_fails_an_incomplete_rollout() -> None:
    dep = deployment(updated=1, available=0, progressing_reason="ReplicaSetUpdated")
    verdict = assess(dep, now=T0 + timedelta(seconds=61), timeout_seconds=60)
    assert verdict.failed
    assert verdict.reason == "RolloutTimeout"


def test_timeout_is_not_reached_one_second_early() -> None:
    dep = deployment(updated=1, available=0, progressing_reason="ReplicaSetUpdated")
    verdict = assess(dep, now=T0 + timedelta(seconds=60), timeout_seconds=60)
    assert verdict.state == "Progressing"


def test_complete_rollout_is_not_failed_by_the_timeout() -> None:
    verdict = assess(deployment(), now=T0 + timedelta(hours=2), timeout_seconds=60)
    assert verdict.done


def test_first_completion_starts_the_bake() -> None:
    now = T0 + timedelta(seconds=30)
    verdict = assess(deployment(), now=now, bake_seconds=120)
    assert verdict.state == "Baking"
    assert verdict.completed_at == now
    assert "120s" in verdict.message


def test_bake_completes_after_bake_seconds_from_first_completion() -> None:
    done_at = T0 + timedelta(seconds=30)
    during = assess(
        deployment(), now=done_at + timedelta(seconds=119), bake_seconds=120, completed_at=done_at
    )
    after = assess(
        deployment(), now=done_at + timedelta(seconds=120), bake_seconds=120, completed_at=done_at
    )
    assert during.state == "Baking"
    assert after.done
    assert after.completed_at == done_at


def test_crash_loop_during_the_bake_fails_the_rollout() -> None:
    done_at = T0 + timedelta(seconds=30)
    verdict = assess(
        deployment(),
        [pod("CrashLoopBackOff")],
        now=done_at + timedelta(seconds=10),
        bake_seconds=120,
        completed_at=done_at,
    )
    assert verdict.failed
    assert verdict.reason == "CrashLoopBackOff"


def test_availability_dip_during_the_bake_pauses_it_without_timing_out() -> None:
    done_at = T0 + timedelta(seconds=30)
    dep = deployment(available=1, progressing_reason="NewReplicaSetAvailable")
    verdict = assess(
        dep, now=T0 + timedelta(hours=1), timeout_seconds=60, bake_seconds=120, completed_at=done_at
    )
    assert verdict.state == "Progressing"
    assert verdict.completed_at == done_at


def test_deployment_without_replicas_defaults_to_one() -> None:
    dep = deployment(updated=1, total=1, available=1)
    del dep["spec"]["replicas"]
    assert assess(dep).done


def test_scaled_to_zero_deployment_is_complete() -> None:
    assert assess(deployment(replicas=0, updated=0, total=0, available=0)).done
