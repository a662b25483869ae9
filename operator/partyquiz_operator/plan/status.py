"""Compute a PartyQuiz's status (phase, conditions, counts, revisions) from observed facts.

Owns the lifecycle vocabulary: which phase an observation means, which condition says what,
and which transitions deserve an Event. Pure: observations and ``now`` come in as arguments;
it must not read the cluster or the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from partyquiz_operator import api
from partyquiz_operator.render.common import REVISION_ANNOTATION

MigrationState = Literal["Waiting", "BackingUp", "Running", "Complete", "Failed"]
# Reasons of a False condition that only say a step is under way (a Normal Event).
WAITING_REASONS = frozenset({"Starting", "Running", "BackingUp", "WaitingForDatabase"})
RolloutPhase = Literal["Progressing", "Baking"]


@dataclass(frozen=True)
class WorkloadState:
    """What a Deployment or StatefulSet reports about its pods."""

    exists: bool = False
    desired: int = 0
    ready: int = 0
    updated: int = 0
    available: int = 0
    generation_observed: bool = False
    revision: str | None = None
    deadline_exceeded: bool = False
    rollout_finished_once: bool = False

    @property
    def complete(self) -> bool:
        """Return whether the workload runs its current template with every pod available."""
        return (
            self.exists
            and self.generation_observed
            and self.updated >= self.desired
            and self.available >= self.desired
            and self.ready >= self.desired
        )


def workload_state(live: Mapping[str, Any] | None) -> WorkloadState:
    """Return what a Deployment or StatefulSet (None: absent) says about its pods."""
    if live is None:
        return WorkloadState()
    spec, meta = live.get("spec", {}), live.get("metadata", {})
    st = live.get("status", {}) or {}
    conditions = {c.get("type"): c for c in st.get("conditions", []) or []}
    progressing = conditions.get("Progressing", {})
    return WorkloadState(
        exists=True,
        desired=int(spec.get("replicas", 1)),
        ready=int(st.get("readyReplicas", 0) or 0),
        updated=int(st.get("updatedReplicas", 0) or 0),
        available=int(st.get("availableReplicas", 0) or 0),
        generation_observed=int(st.get("observedGeneration", 0) or 0)
        >= int(meta.get("generation", 0)),
        revision=(meta.get("annotations") or {}).get(REVISION_ANNOTATION),
        deadline_exceeded=progressing.get("reason") == "ProgressDeadlineExceeded",
        rollout_finished_once=progressing.get("reason") == "NewReplicaSetAvailable",
    )


@dataclass(frozen=True)
class Observation:
    """Everything one reconcile pass learned about an instance."""

    generation: int
    target_revision: str
    version: str
    database: WorkloadState | None
    redis: WorkloadState | None
    migration: MigrationState
    migration_message: str = ""
    # (reason, message) of what keeps a data store's pod from becoming ready, when known.
    database_stall: tuple[str, str] | None = None
    redis_stall: tuple[str, str] | None = None
    web: WorkloadState = field(default_factory=WorkloadState)
    ws: WorkloadState = field(default_factory=WorkloadState)
    endpoints: api.Endpoints = field(default_factory=api.Endpoints)
    # A new revision rolling out and not yet judged (None: steady state or judged).
    rollout: RolloutPhase | None = None
    rollout_message: str = ""
    rollout_progress: api.RolloutProgress | None = None
    # (reason, message) when the target revision's rollout failed; the pods serve known-good.
    failure: tuple[str, str] | None = None
    rolling_back: bool = False
    # What becomes the known-good record once the target is Ready.
    known_good: api.KnownGood | None = None
    retrying: bool = False
    retry: str | None = None


@dataclass(frozen=True)
class Transition:
    """A change worth a Kubernetes Event."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def format_time(now: datetime) -> str:
    """Return ``now`` in the RFC 3339 form Kubernetes uses (seconds, UTC, Z)."""
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


# A condition to set: its type, status, reason and message.
Said = tuple[api.ConditionType, Literal["True", "False", "Unknown"], str, str]


def set_conditions(
    conditions: list[api.Condition], *said: Said, now: datetime, generation: int | None
) -> list[api.Condition]:
    """Return ``conditions`` with each of ``said`` set; a transition time moves only on change."""
    kept = {c.type: c for c in reversed(conditions)}
    for type_, status, reason, message in said:
        previous = kept.get(type_)
        since = (
            previous.last_transition_time
            if previous is not None and previous.status == status
            else format_time(now)
        )
        kept[type_] = api.Condition(
            type=type_,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=since,
            observed_generation=generation,
        )
    return sorted(kept.values(), key=lambda c: api.CONDITION_TYPES.index(c.type))


def _true(value: bool) -> Literal["True", "False"]:
    return "True" if value else "False"


def _component(state: WorkloadState) -> api.ComponentStatus:
    return api.ComponentStatus(
        desired=state.desired,
        ready=state.ready,
        updated=state.updated,
        summary=f"{state.ready}/{state.desired}",
    )


def store_condition(
    state: WorkloadState | None, what: str, name: str, stall: tuple[str, str] | None = None
) -> tuple[bool, str, str]:
    """Return (ready, reason, message) of a data store: what a stalled one waits for."""
    if state is None:
        return True, "External", f"using the external {what}"
    if state.ready >= 1 and state.exists:
        return True, "Ready", f"{what} pod {name}-0 is ready"
    if stall is not None:
        return False, stall[0], f"{what} is not ready: {stall[1]}"
    return False, "Starting", f"waiting for {what} pod {name}-0 to become ready"


def _stores(stores: tuple[tuple[bool, str, str], tuple[bool, str, str]]) -> tuple[Said, Said]:
    """Return the DatabaseReady and CacheReady conditions of the data stores' states."""
    (db_ok, db_reason, db_message), (cache_ok, cache_reason, cache_message) = stores
    return (
        ("DatabaseReady", _true(db_ok), db_reason, db_message),
        ("CacheReady", _true(cache_ok), cache_reason, cache_message),
    )


def _workload_problem(label: str, state: WorkloadState) -> tuple[bool, str] | None:
    """Return (is_failure, message) when a Deployment is not fully rolled out."""
    if state.complete:
        return None
    if state.deadline_exceeded:
        return True, f"{label} rollout exceeded its progress deadline"
    if state.rollout_finished_once and state.generation_observed and state.updated >= state.desired:
        return True, f"{label} has {state.available}/{state.desired} pods available"
    return False, f"{label}: {state.updated}/{state.desired} updated, {state.ready} ready"


def compute_status(
    obs: Observation,
    previous: api.PartyQuizStatus,
    *,
    now: datetime,
    database_name: str,
    redis_name: str,
) -> api.PartyQuizStatus:
    """Return the status an observation means, keeping transition times that did not change."""
    gen = obs.generation
    conditions = list(previous.conditions)
    revisions = previous.revisions

    db_ok, _, db_message = database = store_condition(
        obs.database, "PostgreSQL", database_name, obs.database_stall
    )
    cache_ok, _, cache_message = cache = store_condition(
        obs.redis, "Redis", redis_name, obs.redis_stall
    )

    target = obs.target_revision
    migrated = revisions.migrated
    failed = None if obs.retrying else revisions.failed
    mig: tuple[Literal["True", "False", "Unknown"], str, str]
    if obs.migration == "Complete":
        migrated = target
        mig = ("True", "Migrated", f"revision {target} migrated")
    elif obs.migration == "Failed":
        failed = target
        mig = ("False", "MigrationFailed", obs.migration_message or f"revision {target} failed")
    elif obs.migration == "Running":
        mig = ("False", "Running", f"migrating the database to revision {target}")
    elif obs.migration == "BackingUp":
        mig = ("False", "BackingUp", f"backing up the database before migrating to {target}")
    else:
        mig = ("False", "WaitingForDatabase", "the migration starts once PostgreSQL is ready")

    problems = [
        p
        for p in (_workload_problem("web", obs.web), _workload_problem("ws", obs.ws))
        if p is not None
    ]
    current = revisions.current
    version = previous.version
    phase: api.Phase
    if obs.migration == "Failed":
        phase, reason, message = "Degraded", "MigrationFailed", mig[2]
    elif not (db_ok and cache_ok):
        phase = "Provisioning" if current is None else "Degraded"
        reason = "DependenciesStarting" if current is None else "DependencyUnavailable"
        message = db_message if not db_ok else cache_message
    elif obs.migration != "Complete":
        phase, reason, message = "Migrating", "Migrating", mig[2]
    elif obs.failure is not None:
        failed = target
        phase = "RollingBack" if obs.rolling_back else "Degraded"
        reason, message = obs.failure
    elif obs.rollout is not None:
        phase, reason = "RollingOut", "RollingOut" if obs.rollout == "Progressing" else "Baking"
        message = obs.rollout_message
    elif any(failure for failure, _ in problems):
        phase, reason = "Degraded", "WorkloadUnavailable"
        message = "; ".join(text for failure, text in problems if failure)
    elif problems:
        phase, reason = "RollingOut", "RollingOut"
        message = "; ".join(text for _, text in problems)
    else:
        phase, reason, message = "Ready", "AllComponentsReady", f"version {obs.version} is ready"
        current = target
        version = obs.version
        idle = [label for label, state in (("web", obs.web), ("ws", obs.ws)) if state.desired == 0]
        if idle:
            # Rolled out, but nothing serves players: not Ready.
            phase, reason = "Degraded", "ScaledToZero"
            message = f"{' and '.join(idle)} run 0 replicas: nothing serves players"

    progressing = phase in ("Provisioning", "Migrating", "RollingOut", "RollingBack")
    degraded = phase in ("Degraded", "RollingBack")
    ready = phase == "Ready"
    calm = ("Idle", "no change in progress") if ready else (reason, message)
    conditions = set_conditions(
        conditions,
        *_stores((database, cache)),
        ("MigrationComplete", *mig),
        ("Ready", _true(ready), reason, message),
        ("Progressing", "True", reason, message)
        if progressing
        else ("Progressing", "False", *calm),
        ("Degraded", "True", reason, message)
        if degraded
        else ("Degraded", "False", "AsExpected", ""),
        now=now,
        generation=gen,
    )

    return api.PartyQuizStatus(
        observed_generation=gen,
        phase=phase,
        version=version,
        conditions=conditions,
        components=api.Components(
            web=_component(obs.web),
            ws=_component(obs.ws),
            database=None if obs.database is None else _component(obs.database),
            redis=None if obs.redis is None else _component(obs.redis),
        ),
        endpoints=obs.endpoints,
        revisions=api.Revisions(current=current, target=target, migrated=migrated, failed=failed),
        rollout=obs.rollout_progress,
        known_good=obs.known_good if phase == "Ready" and obs.known_good else previous.known_good,
        retry=obs.retry if obs.retry is not None else previous.retry,
    )


def suspended_status(
    previous: api.PartyQuizStatus, *, now: datetime, generation: int
) -> api.PartyQuizStatus:
    """Return the status of a suspended instance: counts kept, nothing progressing."""
    message = "spec.suspend is true: the operator changes nothing until it is unset"
    conditions = set_conditions(
        list(previous.conditions),
        ("Progressing", "False", "Suspended", message),
        ("Ready", "False", "Suspended", message),
        now=now,
        generation=generation,
    )
    return previous.model_copy(
        update={"observed_generation": generation, "phase": "Suspended", "conditions": conditions}
    )


def blocked_status(
    previous: api.PartyQuizStatus,
    *,
    now: datetime,
    generation: int,
    reason: str,
    message: str,
    stores: tuple[tuple[bool, str, str], tuple[bool, str, str]] | None = None,
) -> api.PartyQuizStatus:
    """Return the status of an instance that cannot go on until the user (or time) acts.

    It is Degraded, so its Events are Warnings; only a referenced Secret not created yet before
    anything ran is Pending (the instance waits for it). ``stores`` are the data stores'
    conditions as observed, so they do not freeze while the instance is blocked.
    """
    waiting = reason == "SecretMissing" and previous.revisions.current is None
    phase: api.Phase = "Pending" if waiting else "Degraded"
    conditions = set_conditions(
        list(previous.conditions),
        ("Ready", "False", reason, message),
        ("Progressing", "False", reason, message),
        ("Degraded", "True", reason, message),
        *(_stores(stores) if stores is not None else ()),
        now=now,
        generation=generation,
    )
    return previous.model_copy(
        update={"observed_generation": generation, "phase": phase, "conditions": conditions}
    )


def transitions(before: api.PartyQuizStatus, after: api.PartyQuizStatus) -> list[Transition]:
    """Return the Events a status change deserves: phase changes and condition flips."""
    events: list[Transition] = []
    old, new = {c.type: c for c in before.conditions}, {c.type: c for c in after.conditions}
    ready, degraded = new.get("Ready"), new.get("Degraded")
    if before.phase != after.phase:
        warning = after.phase in ("Degraded", "RollingBack")
        detail = f": {ready.message}" if ready is not None and ready.message else ""
        events.append(
            Transition(
                "Warning" if warning else "Normal",
                f"Phase{after.phase}",
                f"phase {before.phase} -> {after.phase}{detail}",
            )
        )
    if after.revisions.failed is not None and after.revisions.failed != before.revisions.failed:
        events.append(
            Transition(
                "Warning",
                "RevisionFailed",
                f"revision {after.revisions.failed} failed"
                + (f": {degraded.reason}: {degraded.message}" if degraded else ""),
            )
        )
    was = old.get("Degraded")
    if (
        before.phase == after.phase
        and degraded is not None
        and degraded.status == "True"
        and was is not None
        and was.status == "True"
        and was.reason != degraded.reason
    ):
        events.append(Transition("Warning", degraded.reason, degraded.message))
    for cond in after.conditions:
        prior = old.get(cond.type)
        if cond.type in ("Ready", "Progressing", "Degraded"):
            continue
        if prior is None or prior.status != cond.status or prior.reason != cond.reason:
            failing = cond.status == "False" and cond.reason not in WAITING_REASONS
            events.append(
                Transition(
                    "Warning" if failing else "Normal",
                    f"{cond.type}{cond.status}",
                    cond.message or cond.reason,
                )
            )
    return events


def status_body(status: api.PartyQuizStatus) -> dict[str, object]:
    """Return the status as the JSON the API server stores (camelCase, no nulls)."""
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")
