"""A namespace as the planner sees it, for walking the lifecycle pass by pass without a cluster.

Owns the objects of one namespace (the PartyQuiz, its children, the user's Secrets, foreign
objects), ``step`` (one pass: answer the planner's reads from those objects, then carry the plan
out on them the way the API server would) and the hands of the controllers the tests play
(StatefulSets ready, Jobs complete or failed, Deployments rolled out, pods stuck).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from partyquiz_operator import api
from partyquiz_operator.handlers import EVERY_OBJECT_KINDS
from partyquiz_operator.plan import lifecycle
from partyquiz_operator.plan.lifecycle import Key, Plan, Reads, Seen
from partyquiz_operator.render.common import INSTANCE_LABEL, REVISION_ANNOTATION

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NAMESPACE = "games"
UID = "uid-quiz"
MINIMAL: dict[str, Any] = {
    "version": "1.4.0",
    "database": {"managed": {}},
    "redis": {"managed": {}},
}
EXTERNAL: dict[str, Any] = {
    "version": "1.4.0",
    "database": {"external": {"secretRef": {"name": "stores", "key": "db"}}},
    "redis": {"external": {"secretRef": {"name": "stores", "key": "redis"}}},
}
WATCHED = frozenset(
    {
        "ServiceAccount",
        "Service",
        "PersistentVolumeClaim",
        "Pod",
        "Deployment",
        "StatefulSet",
        "Job",
        "CronJob",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
        "HorizontalPodAutoscaler",
    }
)


def counter_tokens() -> Any:
    count = iter(range(1000))
    return lambda n: f"token{next(count)}-" + "x" * n


def secret(name: str, **data: str) -> dict[str, Any]:
    """Return a user Secret holding ``data``."""
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}


@dataclass
class World:
    """One PartyQuiz and everything in its namespace; the clock moves only when told."""

    spec: dict[str, Any]
    name: str = "quiz"
    now: datetime = T0
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    status: dict[str, Any] | None = None
    generation: int = 1
    annotations: dict[str, str] = field(default_factory=dict)
    served: frozenset[str] = frozenset()
    tokens: Any = field(default_factory=counter_tokens)
    plans: list[Plan] = field(default_factory=list)
    version: int = 100
    uid: str = UID

    # --- the PartyQuiz ----------------------------------------------------------------------

    @property
    def body(self) -> dict[str, Any]:
        meta = {
            "name": self.name,
            "namespace": NAMESPACE,
            "uid": self.uid,
            "generation": self.generation,
            "annotations": dict(self.annotations),
        }
        body: dict[str, Any] = {"metadata": meta, "spec": self.spec}
        if self.status is not None:
            body["status"] = self.status
        return body

    def edit(self, **changes: Any) -> None:
        """Change the spec the way ``kubectl patch --type=merge`` would (None removes)."""
        for key, value in changes.items():
            if value is None:
                self.spec.pop(key, None)
            else:
                self.spec[key] = value
        self.generation += 1

    @property
    def st(self) -> api.PartyQuizStatus:
        return api.parse_status(self.status)

    def condition(self, type_: str) -> api.Condition:
        return next(c for c in self.st.conditions if c.type == type_)

    # --- passes -----------------------------------------------------------------------------

    def seen(self) -> Seen:
        # The planner never changes what it is given: no copies needed.
        indexed = {
            key: obj
            for key, obj in self.objects.items()
            if key[0] in WATCHED
            and (obj["metadata"].get("labels") or {}).get(INSTANCE_LABEL) == self.name
            and (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by")
        }
        taken = {key for key in self.objects if key[0] in EVERY_OBJECT_KINDS}
        return Seen(indexed=indexed, watched=EVERY_OBJECT_KINDS, taken=taken)

    def decide(self) -> Plan:
        """Return the plan of one pass, its reads answered from the objects."""
        seen = self.seen()
        for _ in range(lifecycle_rounds()):
            decided = lifecycle.decide(self.body, seen, now=self.now, new_token=self.tokens)
            if isinstance(decided, Plan):
                return decided
            seen = self._read(decided, seen)
        raise AssertionError("the planner kept asking for reads")

    def _read(self, reads: Reads, seen: Seen) -> Seen:
        fetched = dict(seen.fetched)
        for key in reads.names:
            found = self.objects.get(key)
            fetched[key] = found
        served = self.served if reads.discovery else seen.served
        return dataclasses.replace(seen, fetched=fetched, served=served)

    def step(self, *, crash_after: str | None = None) -> Plan:
        """Run one pass and carry its plan out; ``crash_after`` stops it part-way.

        ``crash_after`` is "record" (a rollback's status written, nothing else), "deletes",
        "applies" (everything but the status) or None (the whole plan).
        """
        plan = self.decide()
        self.plans.append(plan)
        if plan.record_first:
            self._report(plan)
            if crash_after == "record":
                return plan
        for key in plan.deletes:
            self.objects.pop(key, None)
        if crash_after == "deletes":
            return plan
        for key, patch in plan.patches:
            merge(self.objects[key], patch)
        for wave in plan.waves:
            taken = plan.creates & self.objects.keys()
            held = [m for m in wave if self._key(m) in taken]
            for manifest in wave:
                if manifest not in held:
                    self._apply(manifest)
            if held:  # the API server refused the creates: the pass decides again on them
                return self.step(crash_after=crash_after)
        if crash_after == "applies":
            return plan
        if not plan.record_first:
            self._report(plan)
        return plan

    def _report(self, plan: Plan) -> None:
        if plan.status_changed:
            self.status = plan.status.model_dump(by_alias=True, mode="json")

    @staticmethod
    def _key(manifest: dict[str, Any]) -> Key:
        return (manifest["kind"], manifest["metadata"]["name"])

    def _apply(self, manifest: dict[str, Any]) -> None:
        key = self._key(manifest)
        live = self.objects.get(key)
        self.version += 1
        obj = lifecycle.after_apply(live, copy.deepcopy(manifest))
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.objects[key] = obj

    def settle(self, *kinds: str) -> None:
        """Play the controllers: every StatefulSet and Deployment rolled out, every Job done."""
        for (kind, name), obj in list(self.objects.items()):
            if kinds and kind not in kinds:
                continue
            if kind == "StatefulSet":
                self.ready_statefulset(name)
            elif kind == "Deployment":
                self.roll_out(name)
            elif kind == "Job" and not (obj.get("status") or {}).get("conditions"):
                self.finish_job(name)

    def ready_statefulset(self, name: str, ready: int = 1) -> None:
        """Report the StatefulSet's pod ready; its claim is made from the template first."""
        sts = self.objects[("StatefulSet", name)]
        template = sts["spec"]["volumeClaimTemplates"][0]
        claim = f"{template['metadata']['name']}-{name}-0"
        self.objects.setdefault(
            ("PersistentVolumeClaim", claim),
            {
                "kind": "PersistentVolumeClaim",
                "metadata": {**copy.deepcopy(template["metadata"]), "name": claim},
                "spec": copy.deepcopy(template["spec"]),
            },
        )
        sts["status"] = {
            "observedGeneration": sts["metadata"]["generation"],
            "replicas": 1,
            "readyReplicas": ready,
        }

    def finish_job(self, name: str, *, failed: bool = False, reason: str = "") -> None:
        job = self.objects[("Job", name)]
        kind = "Failed" if failed else "Complete"
        cond = {"type": kind, "status": "True", "reason": reason or kind, "message": ""}
        job["status"] = {"conditions": [cond]}

    def roll_out(self, name: str, *, available: int | None = None, deadline: bool = False) -> None:
        """Report a Deployment rolled out (``available`` pods of its template; all by default)."""
        dep = self.objects[("Deployment", name)]
        desired = int(dep["spec"].get("replicas", 1))
        ready = desired if available is None else available
        reason = "ProgressDeadlineExceeded" if deadline else "NewReplicaSetAvailable"
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": desired,
            "updatedReplicas": desired,
            "availableReplicas": ready,
            "readyReplicas": ready,
            "conditions": [{"type": "Progressing", "status": "True", "reason": reason}],
        }

    def start_rollout(self, name: str) -> None:
        """Report a Deployment whose new pods are created but not yet available."""
        dep = self.objects[("Deployment", name)]
        desired = int(dep["spec"].get("replicas", 1))
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": desired + 1,
            "updatedReplicas": 1,
            "availableReplicas": desired,
            "readyReplicas": desired,
            "conditions": [
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
            ],
        }

    def stuck_pod(self, component: str, reason: str) -> None:
        """Add a pod of the component's template revision whose container waits in ``reason``."""
        dep = self.objects[("Deployment", f"{self.name}-{component}")]
        revision = dep["spec"]["template"]["metadata"]["annotations"][REVISION_ANNOTATION]
        labels = dict(dep["spec"]["template"]["metadata"]["labels"])
        pod = {
            "kind": "Pod",
            "metadata": {
                "name": f"{self.name}-{component}-stuck",
                "labels": labels,
                "annotations": {REVISION_ANNOTATION: revision},
            },
            "status": {
                "containerStatuses": [
                    {"name": component, "state": {"waiting": {"reason": reason, "message": "x"}}}
                ]
            },
        }
        self.objects[("Pod", pod["metadata"]["name"])] = pod

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    # --- what the tests look at ---------------------------------------------------------------

    def names(self, kind: str) -> set[str]:
        return {name for k, name in self.objects if k == kind}

    def template_revision(self, name: str) -> str:
        dep = self.objects[("Deployment", name)]
        return str(dep["spec"]["template"]["metadata"]["annotations"][REVISION_ANNOTATION])

    def applied(self, plan: Plan | None = None) -> list[Key]:
        plan = plan or self.plans[-1]
        return [(m["kind"], m["metadata"]["name"]) for wave in plan.waves for m in wave]

    def install(self) -> str:
        """Walk a first install to Ready; return the revision running."""
        for _ in range(8):
            self.step()
            self.settle()
            if self.st.phase == "Ready":
                self.step()
                assert not self.plans[-1].waves, self.applied()
                return str(self.st.revisions.current)
        raise AssertionError(f"not Ready: {self.status}")

    def run_until(self, phase: str, passes: int = 8, *, settle: tuple[str, ...] = ()) -> None:
        for _ in range(passes):
            self.step()
            if self.st.phase == phase:
                return
            if settle:
                self.settle(*settle)
        raise AssertionError(f"never {phase}: {self.status}")


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Apply a JSON merge patch to ``target`` in place."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        elif value is None:
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(value)


def lifecycle_rounds() -> int:
    return 4


def world(**spec: Any) -> World:
    """Return a namespace with a PartyQuiz of the minimal spec plus ``spec`` (fast rollouts)."""
    merged = copy.deepcopy(MINIMAL)
    merged["rollout"] = {"progressDeadlineSeconds": 60, "bakeSeconds": 0}
    merged["migrations"] = {"backupFirst": False}
    merged.update(copy.deepcopy(spec))
    return World(merged)


_INSTALLED: dict[str, World] = {}


def installed(**spec: Any) -> tuple[World, str]:
    """Return ``world(**spec)`` walked to Ready (once per spec, copied) and its revision."""
    key = json.dumps(spec, sort_keys=True)
    if key not in _INSTALLED:
        ready = world(**spec)
        ready.install()
        ready.plans.clear()
        _INSTALLED[key] = ready
    w = copy.deepcopy(_INSTALLED[key])
    return w, str(w.st.revisions.current)
