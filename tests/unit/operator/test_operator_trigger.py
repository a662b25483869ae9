"""The owner trigger: child events coalesce into few passes, and unread changes run none."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import kopf
from kopf._core.engines.indexing import OperatorIndexers
from kopf._core.reactor.inventory import ResourceMemories
from kopf._core.reactor.processing import process_resource_event

from partyquiz_operator import handlers, k8s
from partyquiz_operator.metrics import OperatorMetrics
from partyquiz_operator.passes import InstanceKey, Outcome, Passes
from partyquiz_operator.settings import OperatorSettings
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
        self.echoes: set[str] = set()  # resourceVersions the operator wrote itself
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
        return body["metadata"].get("resourceVersion") in self.echoes


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


async def test_after_an_own_writes_echo_only_a_change_from_what_was_written_runs_a_pass() -> None:
    log = PassLog()
    trigger = OwnerTrigger(log)
    trigger.child_changed("Deployment", "ADDED", deployment(readyReplicas=1))
    await trigger.stop()
    written = deployment(readyReplicas=1)
    written["spec"]["replicas"] = 3
    written["metadata"]["resourceVersion"] = "7"
    log.echoes.add("7")
    trigger.child_changed("Deployment", "MODIFIED", written)
    rolling = copy.deepcopy(written)
    rolling["metadata"]["resourceVersion"] = "8"
    rolling["status"]["unavailableReplicas"] = 1
    trigger.child_changed("Deployment", "MODIFIED", rolling)
    await trigger.stop()
    assert log.handlers == ["child"]
    scaled = copy.deepcopy(rolling)
    scaled["spec"]["replicas"] = 5
    trigger.child_changed("Deployment", "MODIFIED", scaled)
    await trigger.stop()
    assert log.handlers == ["child", "child"]


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


class Watches:
    """The operator's kopf handlers fed watch events by kopf's own processing of an object.

    This is what kopf's watcher does with each event (indexes, causes, handlers, in kopf's
    order); kopf has no public way to feed one without an API server, so its reactor is called
    directly. Passes are recorded by ``PassLog`` instead of run.
    """

    def __init__(self) -> None:
        self.log = PassLog()
        self.registry = kopf.OperatorRegistry()
        self.settings = kopf.OperatorSettings()
        operator = OperatorSettings()
        handlers.configure(self.settings, operator)
        nowhere = k8s.Credentials("https://127.0.0.1:9", None, None, None, True, lambda: None)
        shell = handlers.register(self.registry, operator, OperatorMetrics(), nowhere)
        self.trigger = shell.trigger = OwnerTrigger(self.log)
        self.indexers = OperatorIndexers()
        self.indexers.ensure(self.registry._indexing.get_all_handlers())
        self.memories = ResourceMemories()
        self.version = 0

    async def event(self, type_: str | None, kind: str, body: dict[str, Any]) -> None:
        """Deliver one watch event of a child, as the watch would, and let its passes end."""
        group, version, plural = next(
            (g, v, p) for g, v, p, k, _ in handlers.WATCHED_CHILDREN if k == kind
        )
        self.version += 1
        meta = {**body["metadata"], "uid": f"uid-{body['metadata']['name']}"}
        meta["resourceVersion"] = str(self.version)
        api_version = f"{group}/{version}" if group else version
        await process_resource_event(
            lifecycle=kopf.lifecycles.all_at_once,
            indexers=self.indexers,
            registry=self.registry,
            settings=self.settings,
            memories=self.memories,
            memobase=kopf.Memo(),
            resource=kopf.Resource(group, version, plural, kind=kind, namespaced=True),
            raw_event={
                "type": type_,
                "object": {**body, "apiVersion": api_version, "kind": kind, "metadata": meta},
            },
            event_queue=asyncio.Queue(),
            no_throttling=True,
        )
        await self.trigger.stop()

    def indexed(self, plural: str) -> list[str]:
        """Return the names of the instance's children in one of kopf's indexes."""
        index = self.indexers.indices[f"children-{plural}"]
        return [body["metadata"]["name"] for body in index.get(KEY, [])]


async def test_through_kopf_a_status_change_no_pass_reads_runs_none_one_it_reads_runs_one() -> None:
    watches = Watches()
    await watches.event("ADDED", "Deployment", deployment(readyReplicas=1))
    assert watches.indexed("deployments") == ["quiz-web"]
    await watches.event("MODIFIED", "Deployment", deployment(readyReplicas=1, collisionCount=1))
    await watches.event("MODIFIED", "Pod", pod(phase="Running", podIP="10.0.0.7"))
    assert watches.log.handlers == ["child"]
    await watches.event("MODIFIED", "Deployment", deployment(readyReplicas=2))
    assert watches.log.handlers == ["child", "child"]


async def test_through_kopf_a_deleted_child_leaves_the_index_and_runs_a_pass() -> None:
    watches = Watches()
    await watches.event("ADDED", "Deployment", deployment(readyReplicas=1))
    await watches.event("DELETED", "Deployment", deployment(readyReplicas=1))
    assert watches.indexed("deployments") == []
    assert watches.log.handlers == ["child", "child"]


def test_kopf_keeps_no_diff_base_of_a_child_but_of_a_partyquiz() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure(settings, OperatorSettings())
    storage = settings.persistence.diffbase_storage
    child = kopf.Body({**deployment(), "apiVersion": "apps/v1", "kind": "Deployment"})
    assert storage.build(body=child) == {}
    quiz = kopf.Body({"kind": "PartyQuiz", "metadata": {"name": "quiz"}, "spec": {"x": 1}})
    assert storage.build(body=quiz) == {"spec": {"x": 1}}


async def test_child_events_before_the_first_pass_are_no_news_to_passes() -> None:
    nowhere = k8s.Credentials("https://127.0.0.1:9", None, None, None, True, lambda: None)
    metrics = OperatorMetrics()
    passes = Passes(
        k8s.Api(nowhere, metrics, timeout=1.0),
        metrics,
        instances=lambda namespace, name: None,
        children=lambda namespace, name: {},
        taken=lambda namespace: frozenset(),
    )
    body = deployment(readyReplicas=1)
    assert passes.watched(KEY, "Deployment", body, gone=False)
    await passes.run(("games", "other-quiz"), "changed")
    assert not passes.watched(KEY, "Deployment", body, gone=False)
