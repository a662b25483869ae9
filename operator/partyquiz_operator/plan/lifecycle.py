"""The lifecycle of a PartyQuiz as data: every decision of a pass, as one pure function.

Owns provisioning, backup before migration, migration, rollout, bake, rollback, retry, suspend,
drift repair and pruning: ``decide(body, seen, now=..., new_token=...)`` turns the PartyQuiz
object and what the pass has seen of its children into a ``Plan`` (objects to apply, in waves,
to delete and to patch; the status, Events and tallies to record; how long to wait when nothing
the operator watches will end the wait), or into the ``Reads`` it still needs first. State
between passes lives in the status, never in memory. No I/O, no clock, no randomness of its
own; it must not import kopf or the Kubernetes client.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from partyquiz_operator import api, render
from partyquiz_operator.plan import drift, rollout, status
from partyquiz_operator.plan.status import Transition
from partyquiz_operator.render import jobs, monitoring, network, stores, workloads
from partyquiz_operator.render.common import (
    COMPONENT_BACKUP,
    COMPONENT_LABEL,
    COMPONENT_MIGRATION,
    COMPONENT_WEB,
    COMPONENT_WS,
    FIELD_MANAGER,
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    REVISION_LABEL,
    Instance,
    Manifest,
    postgres_name,
    redis_name,
    web_name,
    ws_name,
)

Key = tuple[str, str]  # (kind, name) in the instance's namespace
TokenFactory = Callable[[int], str]

# Kinds created only for some specs; an owned one the spec no longer asks for is deleted.
OPTIONAL_KINDS = frozenset({"Ingress", "HorizontalPodAutoscaler", "CronJob"})
# Kinds whose apply starts pods: a plan's waves up to its last one holding any are urgent.
POD_KINDS = frozenset({"StatefulSet", "Deployment", "Job"})
# The Degraded reasons of a failed rollout: rolled back, or left where it is.
ROLLOUT_FAILURE_REASONS = rollout.FAILURE_REASONS | {"RolledBack"}
# How long to wait before looking again when no watched object will say that a wait is over.
SECRET_RETRY_SECONDS = 15.0
CREDENTIALS_RETRY_SECONDS = 30.0
CONFLICT_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Seen:
    """What a pass has seen: the instance's labelled children from the watches, and reads.

    ``indexed`` holds the operator's objects labelled for this instance (owned by it or not);
    ``fetched`` the objects read by name (None: absent); ``served`` the monitoring kinds the
    API server serves, once asked.
    """

    indexed: Mapping[Key, Mapping[str, Any]] = field(default_factory=dict)
    fetched: Mapping[Key, Mapping[str, Any] | None] = field(default_factory=dict)
    served: frozenset[str] | None = None
    # Kinds whose every object is watched, and the names objects of them hold: a name of such
    # a kind that no object holds is known to be free without asking.
    watched: frozenset[str] = frozenset()
    taken: Container[Key] = frozenset()


@dataclass(frozen=True)
class Reads:
    """What ``decide`` needs before it can plan: objects by name, and the monitoring kinds."""

    names: frozenset[Key] = frozenset()
    discovery: bool = False


Tally = tuple[str, ...]  # ("migrations", result) or ("rollouts", component, result)


@dataclass(frozen=True)
class Plan:
    """What one pass does, in order: record first (a rollback), delete, patch, apply, report."""

    status: api.PartyQuizStatus
    previous: api.PartyQuizStatus
    waves: tuple[tuple[Manifest, ...], ...] = ()
    deletes: tuple[Key, ...] = ()
    patches: tuple[tuple[Key, Manifest], ...] = ()
    # Children of the waves created only where no object holds the name: when one does, the
    # pass stops after that wave, reads it, and decides again on what it found.
    creates: frozenset[Key] = frozenset()
    # Waves from this index on start no pod (Services, budgets, policies after the workloads):
    # they may wait until other passes' pod-starting waves are answered.
    later: int = 0
    events: tuple[Transition, ...] = ()
    tallies: tuple[Tally, ...] = ()
    record_first: bool = False  # write the status before anything else (a rollback decision)
    retry_after: float | None = None  # nothing watched ends this wait: look again then
    permanent: bool = False  # only a change of the spec (or the cluster) can help
    message: str = ""  # why it waits or cannot go on

    @property
    def status_changed(self) -> bool:
        """Return whether the status differs from the stored one."""
        return status.status_body(self.status) != status.status_body(self.previous)


def parse_time(value: str | None) -> datetime | None:
    """Return the RFC 3339 time of the status, or None."""
    if value is None:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def decode(secret: Mapping[str, Any] | None) -> dict[str, str]:
    """Return the decoded data of a Secret (empty when absent)."""
    return {
        key: base64.b64decode(value).decode(errors="replace")
        for key, value in ((secret or {}).get("data") or {}).items()
    }


def is_kept_for(live: Mapping[str, Any], inst: Instance) -> bool:
    """Return whether ``live`` is the instance's own but controlled by nothing: kept data.

    The credentials and the volumes outlive a PartyQuiz deleted with ``retainDataOnDelete``; a
    new PartyQuiz of the same name takes them over (anything else of that name stays foreign).
    """
    meta = live.get("metadata", {})
    labels = meta.get("labels") or {}
    controlled = any(ref.get("controller") for ref in meta.get("ownerReferences") or [])
    return (
        not controlled
        and labels.get(MANAGED_BY_LABEL) == FIELD_MANAGER
        and labels.get(INSTANCE_LABEL) == inst.name
    )


def job_state(
    live: Mapping[str, Any] | None, what: str = "migration Job"
) -> tuple[status.MigrationState, str]:
    """Read only the Job conditions Complete, Failed and FailureTarget."""
    if live is None:
        return "Running", f"{what} created"
    for cond in (live.get("status") or {}).get("conditions", []) or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "Complete", ""
        if cond.get("type") in ("Failed", "FailureTarget"):
            reason = cond.get("reason", "Failed")
            return "Failed", f"{what} failed ({reason}): {cond.get('message', '')}".strip()
    return "Running", ""


def after_apply(live: Mapping[str, Any] | None, desired: Manifest) -> dict[str, Any]:
    """Return the object as the API server will hold it right after ``desired`` is applied.

    Its spec is the desired one and its status the observed one; a changed spec bumps the
    generation, so controllers are seen not to have observed it yet.
    """
    have = (live or {}).get("metadata", {})
    generation = int(have.get("generation", 0))
    spec_changed = live is None or not drift.contains(live.get("spec"), desired.get("spec"))
    meta = {
        **have,
        **desired["metadata"],
        "annotations": {
            **have.get("annotations", {}),
            **desired["metadata"].get("annotations", {}),
        },
        "generation": generation + 1 if spec_changed else generation,
    }
    spec = {**((live or {}).get("spec") or {}), **(desired.get("spec") or {})}
    after = {**desired, "metadata": meta, "status": (live or {}).get("status") or {}}
    if "spec" in desired:
        after["spec"] = spec  # fields left to others (an autoscaler's replicas) stay
    return after


@dataclass
class _Pass:
    """The working state of one ``decide`` call: what it read, wants and decided so far."""

    inst: Instance
    seen: Seen
    previous: api.PartyQuizStatus
    new_token: TokenFactory
    missing: set[Key] = field(default_factory=set)
    discovery: bool = False
    waves: list[list[Manifest]] = field(default_factory=list)
    deletes: list[Key] = field(default_factory=list)
    patches: list[tuple[Key, Manifest]] = field(default_factory=list)
    creates: set[Key] = field(default_factory=set)
    tallies: list[Tally] = field(default_factory=list)
    lives: dict[Key, dict[str, Any] | None] = field(default_factory=dict)
    conflict: Key | None = None
    spec_key: str = ""  # the spec as canonical JSON (what rendering depends on)

    def lookup(self, kind: str, name: str) -> Mapping[str, Any] | None:
        """Return the object at a name: from the watches, or read by name (else ask for it)."""
        key = (kind, name)
        if key in self.seen.indexed:
            return self.seen.indexed[key]
        if key in self.seen.fetched:
            return self.seen.fetched[key]
        if kind in self.seen.watched and key not in self.seen.taken:
            return None  # no object holds the name
        self.missing.add(key)
        return None

    def indexed(self, kind: str, name: str) -> Mapping[str, Any] | None:
        """Return a watched child (None: there is none of ours)."""
        return self.seen.indexed.get((kind, name))

    def owned(self, kinds: Iterable[str]) -> list[Mapping[str, Any]]:
        """Return the watched children of ``kinds`` this instance controls."""
        wanted = set(kinds)
        return [
            body
            for (kind, _), body in sorted(self.seen.indexed.items())
            if kind in wanted and drift.is_owned_by(body, self.inst.uid)
        ]

    def ensure(
        self, desired: Manifest, wave: int, *, prehashed: bool = False
    ) -> dict[str, Any] | None:
        """Plan ``desired`` into ``wave`` unless it is up to date; return it as it will be.

        ``prehashed``: ``desired`` already carries its hash annotation (``drift.with_hash``).
        """
        kind, name = desired["kind"], desired["metadata"]["name"]
        live = self.lookup(kind, name)
        if (kind, name) in self.missing:
            return None
        if live is not None and not (
            drift.is_owned_by(live, self.inst.uid) or is_kept_for(live, self.inst)
        ):
            self.conflict = self.conflict or (kind, name)
            return dict(live)
        hashed = desired if prehashed else drift.with_hash(desired)
        if live is not None and drift.is_up_to_date(live, hashed):
            self.lives[(kind, name)] = dict(live)
            return dict(live)
        while len(self.waves) <= wave:
            self.waves.append([])
        self.waves[wave].append(hashed)
        after = after_apply(live, hashed)
        self.lives[(kind, name)] = after
        return after

    def delete(self, live: Mapping[str, Any]) -> None:
        """Plan the deletion of an owned child."""
        key = (str(live.get("kind", "")), str(live["metadata"]["name"]))
        if key not in self.deletes:
            self.deletes.append(key)


# What the services accept in the URLs an external store's Secret holds.
URL_SCHEMES = {
    "database": ("postgresql+asyncpg://",),
    "redis": ("redis://", "rediss://", "unix://"),
}
# The oldest major versions of the managed stores' images that PartyQuiz runs on.
OLDEST_MAJOR = {"PostgreSQL": 15, "Redis": 7}


def _major(image: str) -> int | None:
    """Return the major version an image's tag names (None: no version in the tag)."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    match = re.match(r"^v?([0-9]+)(\.|-|$)", tag)
    return int(match.group(1)) if match else None


def _unsupported_image(inst: Instance) -> str | None:
    """Return why a managed store's image is too old to run, if it is."""
    for what, store, managed in (
        ("PostgreSQL", "database", inst.spec.database.managed),
        ("Redis", "redis", inst.spec.redis.managed),
    ):
        major = None if managed is None else _major(managed.image)
        if managed is not None and major is not None and major < OLDEST_MAJOR[what]:
            return (
                f"{store}.managed.image {managed.image} is {what} {major}; PartyQuiz needs "
                f"{what} {OLDEST_MAJOR[what]} or newer"
            )
    return None


def _url_problem(store: str, name: str, key: str, value: str) -> str | None:
    """Return why the URL an external store's Secret holds cannot work (never the URL itself)."""
    schemes = URL_SCHEMES[store]
    url = base64.b64decode(value).decode(errors="replace")
    if url.startswith(schemes):
        return None
    scheme = url.split("://", 1)[0] + "://" if "://" in url else "no scheme"
    return (
        f"Secret {name} key {key!r} holds a {store} URL with {scheme}; it must start with "
        + " or ".join(schemes)
    )


def _secret_digests(p: _Pass) -> tuple[dict[str, str], tuple[str, str] | None]:
    """Return digests of the referenced user Secrets, or (reason, message) when one is unusable.

    A missing Secret or key comes first, then a JWT secret too short, then a URL the services
    would refuse.
    """
    inst = p.inst
    digests: dict[str, str] = {}
    values: dict[tuple[str, str], str] = {}
    for name, key in stores.referenced_secrets(inst):
        secret = p.lookup("Secret", name)
        if ("Secret", name) in p.missing:
            continue
        if secret is None:
            message = f"Secret {name} (referenced by the spec) does not exist"
            return digests, ("SecretMissing", message)
        value = (secret.get("data") or {}).get(key)
        if value is None:
            return digests, ("SecretMissing", f"Secret {name} has no key {key!r}")
        values[(name, key)] = value
        digests[f"{name}/{key}"] = hashlib.sha256(value.encode()).hexdigest()[:16]
    ref = inst.spec.jwt_secret_ref
    if ref is not None and (ref.name, ref.key) in values:
        raw = base64.b64decode(values[(ref.name, ref.key)])
        if len(raw) < stores.MIN_JWT_SECRET_BYTES:
            return digests, (
                "InvalidSpec",
                f"Secret {ref.name} key {ref.key!r} holds {len(raw)} bytes; "
                f"the JWT secret needs at least {stores.MIN_JWT_SECRET_BYTES}",
            )
    for store, external, ref_of in (
        ("database", inst.spec.database.external, stores.database_ref),
        ("redis", inst.spec.redis.external, stores.redis_ref),
    ):
        if external is not None and ref_of(inst) in values:
            name, key = ref_of(inst)
            problem = _url_problem(store, name, key, values[(name, key)])
            if problem is not None:
                return digests, ("UnsupportedURL", problem)
    return digests, None


def _credentials_problem(p: _Pass, data: Mapping[str, str]) -> tuple[str, str] | None:
    """Return why the PostgreSQL volume cannot be opened with the credentials (None: it can).

    PostgreSQL reads its password only when it initialises an empty volume, so the volume is
    marked with a digest of the password it got; a volume without the Secret that opens it, or
    with another one, is reported instead of reaching Ready with logins that all fail.
    """
    inst = p.inst
    if inst.spec.database.managed is None:
        return None
    volume = stores.data_pvc_name(postgres_name(inst))
    pvc = p.indexed("PersistentVolumeClaim", volume)
    if pvc is None:
        return None
    secret = stores.credentials_secret_name(inst)
    fix = f"restore Secret {secret} kept with the volume, or delete the volume to start empty"
    password = data.get(stores.KEY_POSTGRES_PASSWORD)
    if password is None:
        gone = f"{volume} holds a database, but Secret {secret} with its password is gone"
        return "CredentialsMissing", f"{gone}: {fix}"
    digest = stores.credentials_digest(password)
    marked = (pvc["metadata"].get("annotations") or {}).get(stores.CREDENTIALS_ANNOTATION)
    if marked is None:
        mark = {"metadata": {"annotations": {stores.CREDENTIALS_ANNOTATION: digest}}}
        p.patches.append((("PersistentVolumeClaim", volume), mark))
    elif marked != digest:
        other = f"{volume} was initialised with another password than Secret {secret} holds"
        return "CredentialsMismatch", f"{other}: {fix}"
    return None


def _infrastructure(p: _Pass) -> tuple[status.WorkloadState | None, status.WorkloadState | None]:
    """Plan every child that does not depend on the revision; return the data stores' states."""
    inst = p.inst
    existing = p.lookup("Secret", stores.credentials_secret_name(inst))
    credentials = stores.build_credentials_secret(inst, decode(existing), p.new_token)
    claims: dict[str, str | None] = {}
    managed_stores = (
        (inst.spec.database.managed, postgres_name(inst)),
        (inst.spec.redis.managed, redis_name(inst)),
    )
    for managed, name in managed_stores:
        claims[name] = claim = stores.claim_storage(p.lookup("StatefulSet", name))
        if managed is not None and claim is not None:
            _grow_volume(p, name, managed.storage, claim)
    waves = _rendered_infrastructure(p, credentials, claims)
    for wave, children in enumerate(waves):
        for child in children:
            p.ensure(child, wave, prehashed=True)
    wanted = {(c["kind"], c["metadata"]["name"]) for c in waves[-1]}
    for live in p.owned(OPTIONAL_KINDS):
        if (live.get("kind"), live["metadata"]["name"]) not in wanted:
            p.delete(live)
    states = [
        status.workload_state(p.lives.get(("StatefulSet", name))) if managed is not None else None
        for managed, name in managed_stores
    ]
    return states[0], states[1]


# Each instance's rendered and hashed infrastructure with everything it was rendered from.
# Passes of an instance whose spec, credentials and claims did not change (nearly all of them:
# a child's status moved) would otherwise render and hash the same fifteen manifests again each
# time. A memo of a pure function: the same inputs give the same manifests, so decisions do not
# depend on it. It keeps only the newest rendering of an instance, and at most RENDERED_KEPT
# instances (the oldest go first); nothing mutates a manifest.
_RENDERED: dict[tuple[str, str, str], tuple[tuple[str, ...], list[list[Manifest]]]] = {}
RENDERED_KEPT = 4096


def _rendered_infrastructure(
    p: _Pass, credentials: Manifest, claims: Mapping[str, str | None]
) -> list[list[Manifest]]:
    """Return ``render.infrastructure`` of the pass's instance, each manifest with its hash."""
    inst = p.inst
    ident = (inst.namespace, inst.name, inst.uid)
    inputs = (
        str(inst.generation),
        p.spec_key,
        json.dumps(credentials, sort_keys=True),
        json.dumps(sorted(claims.items())),
    )
    kept = _RENDERED.get(ident)
    if kept is not None and kept[0] == inputs:
        return kept[1]
    waves = render.infrastructure(inst, credentials=credentials, claims=claims)
    hashed = [[drift.with_hash(child) for child in wave] for wave in waves]
    _RENDERED.pop(ident, None)
    _RENDERED[ident] = (inputs, hashed)
    while len(_RENDERED) > RENDERED_KEPT:
        del _RENDERED[next(iter(_RENDERED))]
    return hashed


def _grow_volume(p: _Pass, statefulset: str, wanted: str, claim: str) -> None:
    """Grow the data PVC in place when the spec asks for more than its claim template has."""
    want_q, claim_q = drift.parse_quantity(wanted), drift.parse_quantity(claim)
    if want_q is not None and claim_q is not None and want_q <= claim_q:
        return
    name = stores.data_pvc_name(statefulset)
    pvc = p.indexed("PersistentVolumeClaim", name)
    if pvc is None:
        return
    have = pvc.get("spec", {}).get("resources", {}).get("requests", {}).get("storage", "0")
    have_q = drift.parse_quantity(str(have))
    if want_q is not None and have_q is not None and want_q > have_q:
        patch = {"spec": {"resources": {"requests": {"storage": wanted}}}}
        p.patches.append((("PersistentVolumeClaim", name), patch))


def _stall(p: _Pass, statefulset: str) -> tuple[str, str] | None:
    """Return (reason, message) of what keeps a data store's pod from becoming ready, if seen."""
    claim = stores.data_pvc_name(statefulset)
    pvc = p.indexed("PersistentVolumeClaim", claim)
    if pvc is not None and (pvc.get("status") or {}).get("phase") == "Pending":
        storage_class = (pvc.get("spec") or {}).get("storageClassName")
        where = (
            f"StorageClass {storage_class}"
            if storage_class
            else "no StorageClass set and no default StorageClass in the cluster"
        )
        return "ClaimPending", (
            f"volume claim {claim} is Pending, no volume is bound to it ({where}); "
            f"kubectl describe pvc {claim} says why"
        )
    pod_name = f"{statefulset}-0"
    pod = p.indexed("Pod", pod_name)
    if pod is None:
        return None
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            why = cond.get("message") or cond.get("reason") or "no reason given"
            return "Unschedulable", f"pod {pod_name} cannot be scheduled: {why}"
    return rollout.waiting_problem(pod, lambda reason: reason not in rollout.STARTING_REASONS)


def _store_conditions(
    p: _Pass,
) -> tuple[tuple[bool, str, str], tuple[bool, str, str]]:
    """Return the DatabaseReady and CacheReady conditions as the watched children say."""
    inst = p.inst
    found = []
    for what, managed, name in (
        ("PostgreSQL", inst.spec.database.managed, postgres_name(inst)),
        ("Redis", inst.spec.redis.managed, redis_name(inst)),
    ):
        live = p.lives.get(("StatefulSet", name)) or p.indexed("StatefulSet", name)
        state = None if managed is None else status.workload_state(live)
        stall = None if managed is None else _stall(p, name)
        found.append(status.store_condition(state, what, name, stall))
    return found[0], found[1]


def _known_good(inst: Instance, revision: str) -> api.KnownGood:
    """Return the record a rollback needs to re-render ``revision``: its whole spec."""
    spec = inst.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return api.KnownGood(
        revision=revision,
        version=inst.spec.version,
        spec=json.dumps(spec, sort_keys=True, separators=(",", ":")),
    )


def _failed_jobs(p: _Pass, revision: str) -> list[Mapping[str, Any]]:
    """Return the owned, failed migration and backup Jobs of ``revision`` (a retry deletes them)."""
    names = (jobs.migration_job_name(p.inst, revision), jobs.backup_job_name(p.inst, revision))
    found = [p.indexed("Job", name) for name in names]
    return [
        job
        for job in found
        if job is not None and drift.is_owned_by(job, p.inst.uid) and job_state(job)[0] == "Failed"
    ]


def _migrate(
    p: _Pass, revision: str, database: status.WorkloadState | None, retried: bool
) -> tuple[status.MigrationState, str]:
    """Run (or observe) the migration Job of ``revision``, after its backup; never re-run one."""
    inst, previous = p.inst, p.previous
    if previous.revisions.migrated == revision:
        return "Complete", ""
    if retried:
        return "Running", "waiting for the previous migration Job to be deleted (retry)"
    job = p.indexed("Job", jobs.migration_job_name(inst, revision))
    if job is not None and job["metadata"].get("deletionTimestamp"):
        return "Running", "waiting for the previous migration Job to be deleted (retry)"
    if job is None:
        if previous.revisions.failed == revision:
            return "Failed", f"revision {revision} failed before; change the spec to retry"
        if database is not None and database.ready < 1:
            return "Waiting", ""
        if jobs.backup_wanted(inst) and previous.revisions.current is not None:
            backed_up, message = _back_up(p, revision)
            if backed_up == "Failed" and previous.revisions.failed != revision:
                p.tallies.append(("migrations", "failed"))
            if backed_up != "Complete":
                return backed_up, message
        job = p.ensure(jobs.build_migration_job(inst, revision), 2)
        if job is None:
            return "Running", ""
        return "Running", "migration Job created"
    state, message = job_state(job)
    if state == "Complete":
        p.tallies.append(("migrations", "succeeded"))
    elif state == "Failed" and previous.revisions.failed != revision:
        p.tallies.append(("migrations", "failed"))
    return state, message


def _back_up(p: _Pass, revision: str) -> tuple[status.MigrationState, str]:
    """Run (or observe) the dump Job that must succeed before ``revision`` migrates."""
    live = p.indexed("Job", jobs.backup_job_name(p.inst, revision))
    if live is not None and live["metadata"].get("deletionTimestamp"):
        return "BackingUp", "waiting for the previous backup Job to be deleted (retry)"
    if live is None:
        p.ensure(jobs.build_backup_pvc(p.inst), 2)
        p.ensure(jobs.build_backup_job(p.inst, revision), 3)
        return "BackingUp", ""
    state, message = job_state(live, "backup Job")
    if state == "Running":
        return "BackingUp", ""
    if state == "Failed":
        return "Failed", f"{message}; the migration did not start"
    return state, message


@dataclass
class _Workloads:
    """What the workload step decided, for the status."""

    web: dict[str, Any] | None = None
    ws: dict[str, Any] | None = None
    phase: status.RolloutPhase | None = None
    message: str = ""
    progress: api.RolloutProgress | None = None
    failure: tuple[str, str] | None = None
    rolling_back: bool = False
    known_good: api.KnownGood | None = None
    record_first: bool = False


def _deployments(p: _Pass, inst: Instance, revision: str) -> tuple[dict[str, Any], dict[str, Any]]:
    web = p.ensure(workloads.build_web_deployment(inst, revision), 2)
    ws = p.ensure(workloads.build_ws_deployment(inst, revision), 2)
    return web or {}, ws or {}


def _rolled_out(*lives: Mapping[str, Any] | None) -> bool:
    return all(status.workload_state(live).complete for live in lives)


def _pods(p: _Pass, component: str) -> list[Mapping[str, Any]]:
    return [
        body
        for (kind, _), body in sorted(p.seen.indexed.items())
        if kind == "Pod"
        and (body["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == component
    ]


def _as_known_good(inst: Instance, good: api.KnownGood) -> Instance:
    """Return the instance as its known-good revision renders, scaled as the spec asks now.

    The pods are the known-good revision's; how many there are (replicas, autoscaling) and the
    rollout's deadline follow the current spec, so scaling works while a newer revision waits
    or failed.
    """
    known = api.parse_spec(json.loads(good.spec))
    now = inst.spec
    web = known.web.model_copy(
        update={"replicas": now.web.replicas, "autoscaling": now.web.autoscaling}
    )
    ws = known.ws.model_copy(update={"replicas": now.ws.replicas})
    scaled = known.model_copy(update={"web": web, "ws": ws, "rollout": now.rollout})
    return replace(inst, spec=scaled)


def _roll_back(p: _Pass, good: api.KnownGood, w: _Workloads) -> None:
    """Render web and ws from the known-good spec; never migrates."""
    w.web, w.ws = _deployments(p, _as_known_good(p.inst, good), good.revision)
    w.rolling_back = not _rolled_out(w.web, w.ws)


def _hold(p: _Pass) -> _Workloads:
    """Keep what runs while the target revision cannot roll out yet (or failed to migrate)."""
    good = p.previous.known_good
    if good is None:  # nothing ran yet
        return _observed(p, _Workloads())
    w = _Workloads()
    w.web, w.ws = _deployments(p, _as_known_good(p.inst, good), good.revision)
    return w


def _roll_out(p: _Pass, revision: str, now: datetime) -> _Workloads:
    """Apply ``revision`` to web and ws and judge the rollout; roll back when it failed."""
    inst, previous, w = p.inst, p.previous, _Workloads()
    settings = inst.spec.rollout
    ongoing = (
        previous.rollout if previous.rollout and previous.rollout.revision == revision else None
    )
    started = (parse_time(ongoing.started_at) if ongoing else None) or now
    completed = parse_time(ongoing.completed_at) if ongoing else None
    observed = {
        COMPONENT_WEB: p.indexed("Deployment", web_name(inst)),
        COMPONENT_WS: p.indexed("Deployment", ws_name(inst)),
    }
    # Judged on what the pods of the revision show before anything new is applied.
    verdicts = {
        component: rollout.assess_rollout(
            dict(live) if live is not None else None,
            _pods(p, component),
            revision=revision,
            now=now,
            started_at=started,
            timeout_seconds=settings.timeout_seconds,
            # A first install has nothing to roll back to: it is Ready once rolled out.
            bake_seconds=settings.bake_seconds if previous.known_good else 0,
            completed_at=completed,
        )
        for component, live in observed.items()
    }
    failed = {c: v for c, v in verdicts.items() if v.failed}
    if failed:
        return _fail_rollout(p, revision, failed, w)
    w.web, w.ws = _deployments(p, inst, revision)
    if all(v.done for v in verdicts.values()):
        w.known_good = _known_good(inst, revision)
        return w
    done_at = [v.completed_at for v in verdicts.values()]
    both_done = None if None in done_at else max(t for t in done_at if t is not None)
    w.phase = "Baking" if both_done is not None else "Progressing"
    w.message = "; ".join(v.message for v in verdicts.values() if not v.done)
    w.progress = api.RolloutProgress(
        revision=revision,
        started_at=status.format_time(started),
        completed_at=None if both_done is None else status.format_time(both_done),
    )
    return w


def _fail_rollout(
    p: _Pass, revision: str, failed: Mapping[str, rollout.RolloutVerdict], w: _Workloads
) -> _Workloads:
    first = next(iter(failed.values()))
    detail = "; ".join(v.message for v in failed.values())
    p.tallies += [("rollouts", component, "failed") for component in failed]
    good = p.previous.known_good
    if not p.inst.spec.rollout.auto_rollback or good is None or good.revision == revision:
        why = "autoRollback is off" if good is not None else "no known-good revision yet"
        w.failure = (first.reason, f"revision {revision} failed ({detail}); {why}")
        return _observed(p, w)
    w.failure = (
        "RolledBack",
        f"revision {revision} failed ({first.reason}: {detail}); rolled back to revision "
        f"{good.revision} (version {good.version}); change the spec or set the "
        f"{api.RETRY_ANNOTATION} annotation to try again",
    )
    # The failure is recorded before the Deployments change: an operator restarted
    # mid-rollback then keeps rolling back instead of rolling the failed revision out again.
    w.record_first = True
    p.tallies += [("rollouts", component, "rolled_back") for component in ("web", "ws")]
    _roll_back(p, good, w)
    return w


def _observed(p: _Pass, w: _Workloads) -> _Workloads:
    """Return ``w`` with web and ws as they run (nothing applied to them)."""
    web, ws = p.indexed("Deployment", web_name(p.inst)), p.indexed("Deployment", ws_name(p.inst))
    w.web, w.ws = (None if live is None else dict(live) for live in (web, ws))
    return w


def _came_right(p: _Pass, revision: str) -> bool:
    """Whether a first install that failed to roll out now runs as it should by itself.

    With nothing to roll back to, its pods stay and the kubelet keeps restarting them; a
    container that crashed while starting (a store not answering yet) may then run. Once both
    Deployments run ``revision`` with every pod available and none stuck, the failure is over.
    A failed migration never comes right by itself.
    """
    previous = p.previous
    if previous.known_good is not None or previous.revisions.migrated != revision:
        return False
    for component, name in ((COMPONENT_WEB, web_name(p.inst)), (COMPONENT_WS, ws_name(p.inst))):
        state = status.workload_state(p.indexed("Deployment", name))
        if state.revision != revision or not state.complete:
            return False
        if rollout.stuck_pod(_pods(p, component), revision) is not None:
            return False
    return True


def _stay_rolled_back(p: _Pass, revision: str) -> _Workloads:
    """Keep a failed revision off the pods until the spec changes or a retry is asked.

    The failure stays reported as it was when the Degraded condition still tells it (its reason
    is a rollback's or a failed rollout's: ``revisions.failed`` names this revision, and that
    condition was written with it); after anything else (a store that was down) it is named anew.
    """
    w, previous = _Workloads(), p.previous
    degraded = next((c for c in previous.conditions if c.type == "Degraded"), None)
    told = ROLLOUT_FAILURE_REASONS
    if degraded is not None and degraded.status == "True" and degraded.reason in told:
        w.failure = (degraded.reason, degraded.message)
    else:
        w.failure = ("RolledBack", f"revision {revision} failed before; not retried")
    good = previous.known_good
    if p.inst.spec.rollout.auto_rollback and good is not None and good.revision != revision:
        _roll_back(p, good, w)
        return w
    return _observed(p, w)


def _prune(p: _Pass, keep: set[str | None], revision: str) -> None:
    """Delete owned Jobs of revisions no longer needed: migrations not in ``keep``, old dumps."""
    for job in p.owned(["Job"]):
        labels = job["metadata"].get("labels") or {}
        component, job_revision = labels.get(COMPONENT_LABEL), labels.get(REVISION_LABEL)
        old_migration = component == COMPONENT_MIGRATION and job_revision not in keep
        old_dump = component == COMPONENT_BACKUP and job_revision not in (None, revision)
        if old_migration or old_dump:
            p.delete(job)


def _monitoring(p: _Pass, computed: api.PartyQuizStatus, now: datetime) -> api.PartyQuizStatus:
    """Plan the monitoring objects the spec asks for; report them as MonitoringReady.

    Missing Prometheus Operator CRDs only set the condition: the installation goes on.
    """
    inst = p.inst
    wanted = monitoring.build_monitoring_objects(inst)
    had = any(c.type == "MonitoringReady" for c in p.previous.conditions)
    if not wanted and not had:
        return computed
    served = p.seen.served
    if served is None:
        p.discovery = True
        return computed
    wanted_kinds = {m["kind"] for m in wanted}
    for kind in (set(monitoring.MONITORING_KINDS) & served) - wanted_kinds:
        live = p.lookup(kind, inst.name)
        if live is not None and drift.is_owned_by(live, inst.uid):
            p.deletes.append((kind, inst.name))
    kept = [c for c in computed.conditions if c.type != "MonitoringReady"]
    if not wanted:
        return computed.model_copy(update={"conditions": kept})
    for manifest in wanted:
        if manifest["kind"] in served:
            p.ensure(manifest, 2)
    state, reason, message = monitoring.monitoring_condition(wanted_kinds, set(served))
    conditions = status.set_conditions(
        list(computed.conditions),
        ("MonitoringReady", state, reason, message),
        now=now,
        generation=inst.generation,
    )
    return computed.model_copy(update={"conditions": conditions})


def _tally_deadlines(p: _Pass, obs: status.Observation, new: api.PartyQuizStatus) -> None:
    """Count a rollout as failed when a finished Deployment later exceeds its deadline."""
    degraded = next((c for c in new.conditions if c.type == "Degraded"), None)
    was = next((c for c in p.previous.conditions if c.type == "Degraded"), None)
    if degraded is None or degraded.reason != "WorkloadUnavailable" or degraded.status != "True":
        return
    if was is not None and was.status == "True":
        return
    for component, state in ((COMPONENT_WEB, obs.web), (COMPONENT_WS, obs.ws)):
        if state.deadline_exceeded:
            p.tallies.append(("rollouts", component, "failed"))


def _finish(
    p: _Pass, new: api.PartyQuizStatus, *, now: datetime, record_first: bool
) -> Plan | Reads:
    """Return the plan (or the reads still missing, or the name conflict that blocks it)."""
    if p.missing or p.discovery:
        return Reads(names=frozenset(p.missing), discovery=p.discovery)
    if p.conflict is not None:
        kind, name = p.conflict
        message = (
            f"{kind} {name} already exists and is not owned by this PartyQuiz; rename or delete it"
        )
        return blocked(
            p.previous,
            p.inst.generation,
            "NameConflict",
            message,
            now=now,
            retry_after=CONFLICT_RETRY_SECONDS,
            stores=_store_conditions(p),
        )
    if new.revisions.current is not None and new.revisions.current != p.previous.revisions.current:
        p.tallies += [("rollouts", component, "succeeded") for component in ("web", "ws")]
    waves = tuple(tuple(wave) for wave in p.waves if wave)
    starting = [i for i, wave in enumerate(waves) if any(m["kind"] in POD_KINDS for m in wave)]
    return Plan(
        status=new,
        previous=p.previous,
        waves=waves,
        later=starting[-1] + 1 if starting else 0,
        deletes=tuple(p.deletes),
        patches=tuple(p.patches),
        creates=frozenset(p.creates),
        events=tuple(status.transitions(p.previous, new)),
        tallies=tuple(p.tallies),
        record_first=record_first,
    )


def blocked(
    previous: api.PartyQuizStatus,
    generation: int,
    reason: str,
    message: str,
    *,
    now: datetime,
    retry_after: float | None = None,
    stores: tuple[tuple[bool, str, str], tuple[bool, str, str]] | None = None,
) -> Plan:
    """Return the plan of an instance that cannot go on until something changes: report only."""
    new = status.blocked_status(
        previous, now=now, generation=generation, reason=reason, message=message, stores=stores
    )
    return Plan(
        status=new,
        previous=previous,
        events=tuple(status.transitions(previous, new)),
        retry_after=retry_after,
        permanent=retry_after is None,
        message=message,
    )


def decide(
    body: Mapping[str, Any], seen: Seen, *, now: datetime, new_token: TokenFactory
) -> Plan | Reads:
    """Return what one pass over the PartyQuiz ``body`` does, or what it must read first."""
    meta = body["metadata"]
    previous = api.parse_status(body.get("status"))
    generation = int(meta.get("generation", 1))
    try:
        spec = api.parse_spec(body.get("spec") or {})
    except ValidationError as exc:
        return blocked(previous, generation, "InvalidSpec", f"invalid spec: {exc}", now=now)
    inst = Instance(meta["name"], meta["namespace"], meta["uid"], spec, generation)
    if spec.suspend:
        new = status.suspended_status(previous, now=now, generation=generation)
        return Plan(status=new, previous=previous, events=tuple(status.transitions(previous, new)))
    p = _Pass(
        inst, seen, previous, new_token, spec_key=json.dumps(body.get("spec"), sort_keys=True)
    )
    digests, unusable = _secret_digests(p)
    credentials = ("Secret", stores.credentials_secret_name(inst))
    p.lookup(*credentials)
    if p.missing == {credentials} and not seen.indexed:
        # Nothing of the instance exists yet (no kept volumes either): its credentials are
        # created, not read first, which saves the first pass a round trip; a Secret that
        # holds the name already is read then and decided on as it would have been here.
        p.missing.clear()
        p.seen = replace(seen, fetched={**seen.fetched, credentials: None})
        p.creates.add(credentials)
    if p.missing:
        # The Secrets decide everything else; ask for them together with the children the
        # spec names that the watches do not hold, so a new instance needs one round trip.
        _infrastructure(p)
        return Reads(names=frozenset(p.missing))
    observed = _store_conditions(p)
    if unusable is not None:
        reason, message = unusable
        retry = None if reason == "InvalidSpec" else SECRET_RETRY_SECONDS
        return blocked(
            previous, generation, reason, message, now=now, retry_after=retry, stores=observed
        )
    too_old = _unsupported_image(inst)
    if too_old is not None:
        return blocked(previous, generation, "UnsupportedImage", too_old, now=now, stores=observed)
    existing = p.lookup("Secret", stores.credentials_secret_name(inst))
    problem = _credentials_problem(p, decode(existing))
    if problem is not None:
        retry = CREDENTIALS_RETRY_SECONDS
        return blocked(previous, generation, *problem, now=now, retry_after=retry, stores=observed)
    database, redis = _infrastructure(p)

    revision = workloads.compute_revision(inst, digests)
    retry = (meta.get("annotations") or {}).get(api.RETRY_ANNOTATION)
    retrying = (
        retry is not None and retry != previous.retry and previous.revisions.failed == revision
    )
    retried = False
    came_right = not retrying and previous.revisions.failed == revision and _came_right(p, revision)
    if retrying:
        for job in _failed_jobs(p, revision):
            p.delete(job)
            retried = True
    if came_right or retrying:
        p.previous = previous = previous.model_copy(
            update={"revisions": previous.revisions.model_copy(update={"failed": None})}
        )
    good = previous.known_good.revision if previous.known_good is not None else None
    if revision in {previous.revisions.current, good} - {None}:
        # It ran here before: its migration is done, and an older release must never be
        # asked to migrate a schema a newer one already moved on.
        migration: status.MigrationState = "Complete"
        migration_message = ""
    else:
        migration, migration_message = _migrate(p, revision, database, retried)
        if migration == "Complete" and previous.revisions.migrated != revision:
            _prune(p, {revision, previous.revisions.current, good}, revision)

    if migration != "Complete":
        w = _hold(p)
    elif revision == previous.revisions.current:
        w = _Workloads(known_good=_known_good(inst, revision))
        w.web, w.ws = _deployments(p, inst, revision)
    elif previous.revisions.failed == revision:
        w = _stay_rolled_back(p, revision)
    else:
        w = _roll_out(p, revision, now)

    observation = status.Observation(
        generation=generation,
        target_revision=revision,
        version=spec.version,
        database=database,
        redis=redis,
        migration=migration,
        migration_message=migration_message,
        database_stall=None if database is None else _stall(p, postgres_name(inst)),
        redis_stall=None if redis is None else _stall(p, redis_name(inst)),
        web=status.workload_state(w.web),
        ws=status.workload_state(w.ws),
        endpoints=network.endpoints(inst),
        rollout=w.phase,
        rollout_message=w.message,
        rollout_progress=w.progress,
        failure=w.failure,
        rolling_back=w.rolling_back,
        known_good=w.known_good,
        retrying=retrying or came_right,
        retry=retry,
    )
    computed = status.compute_status(
        observation,
        previous,
        now=now,
        database_name=postgres_name(inst),
        redis_name=redis_name(inst),
    )
    _tally_deadlines(p, observation, computed)
    return _finish(p, _monitoring(p, computed, now), now=now, record_first=w.record_first)


def clean_up(body: Mapping[str, Any], indexed: Mapping[Key, Mapping[str, Any]]) -> list[Key]:
    """Return what deleting the PartyQuiz removes: workloads, and data unless it is retained."""
    meta = body["metadata"]
    retain = bool((body.get("spec") or {}).get("retainDataOnDelete", True))
    workloads_ = [
        key
        for key, child in sorted(indexed.items())
        if key[0] in ("Deployment", "Job", "StatefulSet") and drift.is_owned_by(child, meta["uid"])
    ]
    data = [key for key in sorted(indexed) if key[0] == "PersistentVolumeClaim"]
    return workloads_ + ([] if retain else data)
