"""The owner trigger: child events coalesce into few passes, and unread changes run none."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from partyquiz_operator.passes import InstanceKey, Outcome
from partyquiz_operator.trigger import OwnerTrigger

KEY = ("games", "quiz")
LABELS = {
    "app.kubernetes.io/managed-by": "partyquiz-operator",
    "app.kubernetes.io/instance": "quiz",
}


class PassLog:
    """Runs no pass but records each one; a pass ends only when the test lets it."""

    def __init__(self) -> None:
        self.handlers: list[str] = []
        self.running = asyncio.Event()
        self.let_end = asyncio.Event()
        self.let_end.set()

    @asynccontextmanager
    async def exclusive(self, key: InstanceKey) -> AsyncIterator[None]:
        yield

    async def run_held(self, key: InstanceKey, handler: str) -> Outcome:
        self.handlers.append(handler)
        self.running.set()
        await self.let_end.wait()
        return Outcome("Ready")

    def watched(self, key: InstanceKey, kind: str, body: Mapping[str, Any], *, gone: bool) -> bool:
        return False


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "quiz-web", "namespace": "games", "labels": LABELS, "generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "replicas": 2, **status},
    }


def pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "quiz-web-1", "namespace": "games", "labels": LABELS},
        "spec": {"containers": [{"name": "web"}]},
        "status": {"phase": "Pending", **status},
    }


async def passes_after(*events: tuple[str, dict[str, Any]]) -> list[str]:
    """Feed a first event, let its pass end, then the rest; return the passes that ran."""
    log = PassLog()
    trigger = OwnerTrigger(log)
    first, *rest = events
    trigger.child_changed(first[0], "ADDED", first[1])
    await trigger.stop()
    for kind, body in rest:
        trigger.child_changed(kind, "MODIFIED", body)
        await trigger.stop()
    return log.handlers


async def test_events_during_a_pass_run_exactly_one_more_pass() -> None:
    log = PassLog()
    log.let_end.clear()
    trigger = OwnerTrigger(log)
    trigger.child_changed("Deployment", "ADDED", deployment(readyReplicas=0))
    await log.running.wait()
    for ready in (1, 2):
        trigger.child_changed("Deployment", "MODIFIED", deployment(readyReplicas=ready))
    trigger.child_changed("Pod", "MODIFIED", pod(phase="Running"))
    trigger.poke(KEY, "resync")
    log.let_end.set()
    await trigger.stop()
    assert log.handlers == ["child", "child"]


async def test_a_workload_status_change_no_pass_reads_runs_no_pass() -> None:
    before = deployment(readyReplicas=1)
    after = copy.deepcopy(before)
    after["metadata"]["resourceVersion"] = "42"
    after["status"]["collisionCount"] = 1
    after["status"]["unavailableReplicas"] = 1
    assert await passes_after(("Deployment", before), ("Deployment", after)) == ["child"]


async def test_a_workload_status_change_a_pass_reads_runs_a_pass() -> None:
    before = deployment(readyReplicas=1, availableReplicas=1)
    after = deployment(readyReplicas=2, availableReplicas=2)
    progressing = deployment(
        readyReplicas=2,
        availableReplicas=2,
        conditions=[{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}],
    )
    assert await passes_after(
        ("Deployment", before), ("Deployment", after), ("Deployment", progressing)
    ) == ["child", "child", "child"]


async def test_a_job_condition_runs_a_pass_and_its_pod_tallies_do_not() -> None:
    job = {
        "metadata": {"name": "quiz-migrate-r1", "namespace": "games", "labels": LABELS},
        "spec": {"backoffLimit": 2},
        "status": {"active": 1},
    }
    ready = copy.deepcopy(job)
    ready["status"]["ready"] = 1
    done = copy.deepcopy(ready)
    done["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    assert await passes_after(("Job", job), ("Job", ready), ("Job", done)) == ["child", "child"]


async def test_a_pod_starting_as_it_should_runs_no_pass_and_a_crash_loop_runs_one() -> None:
    creating = pod(
        containerStatuses=[{"name": "web", "state": {"waiting": {"reason": "ContainerCreating"}}}]
    )
    scheduled = copy.deepcopy(creating)
    scheduled["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    started = pod(
        phase="Running",
        podIP="10.0.0.7",
        containerStatuses=[{"name": "web", "state": {"running": {}}}],
    )
    crashing = pod(
        phase="Running",
        podIP="10.0.0.7",
        containerStatuses=[{"name": "web", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
    )
    quiet = (("Pod", creating), ("Pod", scheduled), ("Pod", started))
    assert await passes_after(("Deployment", deployment()), *quiet) == ["child"]
    assert await passes_after(("Deployment", deployment()), *quiet, ("Pod", crashing)) == [
        "child",
        "child",
    ]


async def test_a_pod_that_cannot_be_scheduled_runs_a_pass_and_so_does_its_scheduling() -> None:
    waiting = pod(
        conditions=[
            {"type": "PodScheduled", "status": "False", "message": "0/1 nodes are available"}
        ]
    )
    scheduled = pod(conditions=[{"type": "PodScheduled", "status": "True"}])
    assert await passes_after(("Pod", waiting), ("Pod", scheduled)) == ["child", "child"]
