"""Micro-benchmark of kopf's processing of one watch event with the operator's handlers.

Feeds watch events to kopf's own per-object processing (indexes, diff base, causes, handlers,
as kopf's watcher does for each event) with the operator's registry and settings, without an
API server, and prints the CPU time per event of a Deployment and a pod status change (from the
planner's first install of examples/minimal.yaml's spec) and of a PartyQuiz status echo. The
shell is not started, so no pass runs: this is kopf's part of an event and the index functions.
CPU time of this process, so a busy machine distorts it less than wall time.
Run: ``uv run --frozen --all-extras python -m bench.operator_events [--events N]``; against
another checkout's operator, put its ``operator/`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import sys
import time
from typing import Any

import kopf
from kopf._core.engines.indexing import OperatorIndexers
from kopf._core.reactor.inventory import ResourceMemories
from kopf._core.reactor.processing import process_resource_event

from bench.targets import REPO_ROOT
from partyquiz_operator import handlers, k8s
from partyquiz_operator.metrics import OperatorMetrics
from partyquiz_operator.settings import OperatorSettings

PLURALS = {"Deployment": ("apps", "deployments"), "Pod": ("", "pods")}


def _bodies() -> dict[str, dict[str, Any]]:
    """Return a Deployment, a pod and the PartyQuiz of a first install, as a watch sends them."""
    sys.path.insert(0, str(REPO_ROOT / "tests" / "unit" / "operator"))
    from world import installed  # the planner's table-test namespace

    world, _ = installed()
    found: dict[str, dict[str, Any]] = {}
    for (kind, _name), live in world.objects.items():
        if kind == "Deployment" and kind not in found:
            found[kind] = {**copy.deepcopy(live), "kind": kind, "apiVersion": "apps/v1"}
    template = found["Deployment"]["spec"]["template"]
    found["Pod"] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**copy.deepcopy(template["metadata"]), "name": "quiz-web-0"},
        "spec": copy.deepcopy(template["spec"]),
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "web", "ready": True, "state": {"running": {}}}],
        },
    }
    quiz = copy.deepcopy(world.body)
    quiz.update(apiVersion="partyquiz.dev/v1alpha1", kind="PartyQuiz")
    handled = json.dumps({"spec": quiz["spec"]})
    quiz["metadata"].setdefault("annotations", {})[
        f"{handlers.KOPF_PREFIX}/last-handled-configuration"
    ] = handled
    found["PartyQuiz"] = quiz
    for body in found.values():
        meta = body["metadata"]
        meta.setdefault("namespace", "games")
        meta["uid"] = f"uid-{body['kind']}-{meta['name']}"
    return found


async def _per_event(events: int) -> dict[str, float]:
    registry = kopf.OperatorRegistry()
    settings = kopf.OperatorSettings()
    operator = OperatorSettings()
    handlers.configure(settings, operator)
    nowhere = k8s.Credentials("https://127.0.0.1:9", None, None, None, True, lambda: None)
    handlers.register(registry, operator, OperatorMetrics(), nowhere)
    indexers = OperatorIndexers()
    indexers.ensure(registry._indexing.get_all_handlers())
    memories = ResourceMemories()
    results: dict[str, float] = {}
    for kind, body in _bodies().items():
        group, plural = PLURALS.get(kind, ("partyquiz.dev", "partyquizzes"))
        version = "v1alpha1" if kind == "PartyQuiz" else "v1"
        resource = kopf.Resource(group, version, plural, kind=kind, namespaced=True)

        async def one(version: int, body: dict[str, Any] = body, resource: Any = resource) -> None:
            event = {**body, "metadata": {**body["metadata"], "resourceVersion": str(version)}}
            await process_resource_event(
                lifecycle=kopf.lifecycles.all_at_once,
                indexers=indexers,
                registry=registry,
                settings=settings,
                memories=memories,
                memobase=kopf.Memo(),
                resource=resource,
                raw_event={"type": "MODIFIED", "object": event},
                event_queue=asyncio.Queue(),
                no_throttling=True,
            )

        for version in range(100):  # warm-up: the object's memory and first indexing
            await one(version)
        started = time.process_time()
        for version in range(100, 100 + events):
            await one(version)
        results[kind] = (time.process_time() - started) / events
    return results


def main() -> None:
    """Print the CPU time per event of each kind."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    events = parser.parse_args().events
    logging.basicConfig(level=logging.WARNING)
    for kind, seconds in asyncio.run(_per_event(events)).items():
        print(f"{kind:11} {seconds * 1e6:6.0f} us CPU per event ({handlers.__file__})")


if __name__ == "__main__":
    main()
