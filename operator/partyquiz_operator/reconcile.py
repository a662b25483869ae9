"""One level-based reconcile pass of a PartyQuiz: read the cluster, decide, apply, report.

Owns the order of work (credentials, data stores, migration, workloads, status) and the
clean-up on deletion. Talks to the cluster only through ``k8s.Cluster`` and builds objects only
through ``builders``; it is blocking and runs in a worker thread. It must not import kopf.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from partyquiz_operator import api, backup, builders, drift, monitoring, rollout, status
from partyquiz_operator.errors import KubeApiError, SpecError, TransientError
from partyquiz_operator.k8s import Cluster
from partyquiz_operator.metrics import OperatorMetrics
from partyquiz_operator.recorder import EventRecorder
from partyquiz_operator.watchcache import WatchCache

logger = logging.getLogger(__name__)

T = TypeVar("T")

Clock = Callable[[], datetime]
TokenFactory = Callable[[int], str]

# Where a pass reads from (see ``Reconciler.reconcile_named``):
# - "api": everything from the API server (operator start-up, while the watch cache fills);
# - "resync": watched children and the PartyQuiz from the watch cache (relisted before each
#   resync round), every other child (the generated Secret, PVCs) from the API server;
# - "event": like "resync", but other children as this process last read or wrote them.
Reads = Literal["api", "resync", "event"]

_READS_STRENGTH: dict[Reads, int] = {"event": 0, "resync": 1, "api": 2}


def _stronger(a: Reads, b: Reads) -> Reads:
    """Return whichever of ``a`` and ``b`` reads more from the API server."""
    return a if _READS_STRENGTH[a] >= _READS_STRENGTH[b] else b


# Kinds created only for some specs; removed again when the spec stops asking for them.
_OPTIONAL_KINDS = ("Ingress", "HorizontalPodAutoscaler", "CronJob")


def _waves(children: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split ``build_infrastructure``'s children into groups applied one after another.

    Everything before the data stores' StatefulSets (ServiceAccount, credentials, the
    NetworkPolicies that must fence their pods from the start), then the StatefulSets, then the
    rest; the children of a group do not depend on each other.
    """
    stateful = [i for i, c in enumerate(children) if c["kind"] == "StatefulSet"]
    if not stateful:
        return [children] if children else []
    first, last = stateful[0], stateful[-1] + 1
    return [w for w in (children[:first], children[first:last], children[last:]) if w]


def utc_now() -> datetime:
    """Return the current UTC time (the production clock)."""
    return datetime.now(UTC)


def new_token(entropy_bytes: int) -> str:
    """Return a URL-safe random token (the production randomness)."""
    return secrets.token_urlsafe(entropy_bytes)


@dataclass(frozen=True)
class Outcome:
    """What a reconcile pass did."""

    phase: str
    writes: int
    dirty: bool = False  # a child changed during the pass: reconcile once more
    # The pass stopped once a new instance's data stores were started (``stores_first``): the
    # caller must have the instance reconciled once more, like ``dirty``.
    follow_up: bool = False


def instance_from_body(body: Mapping[str, Any]) -> builders.Instance:
    """Parse a PartyQuiz body; an unparseable spec is a ``SpecError``."""
    meta = body["metadata"]
    try:
        spec = api.parse_spec(body.get("spec") or {})
    except ValidationError as exc:
        raise SpecError(f"invalid spec: {exc}") from exc
    return builders.Instance(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        spec=spec,
        generation=int(meta.get("generation", 1)),
    )


def _decode(secret: Mapping[str, Any] | None) -> dict[str, str]:
    if secret is None:
        return {}
    return {
        key: base64.b64decode(value).decode(errors="replace")
        for key, value in (secret.get("data") or {}).items()
    }


def _claim_storage(live: Mapping[str, Any] | None) -> str | None:
    if live is None:
        return None
    for claim in live.get("spec", {}).get("volumeClaimTemplates", []):
        if claim.get("metadata", {}).get("name") == builders.DATA_VOLUME:
            value = claim.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
            return str(value) if value is not None else None
    return None


def _workload(live: Mapping[str, Any] | None, *, default_replicas: int = 1) -> status.WorkloadState:
    if live is None:
        return status.WorkloadState()
    spec = live.get("spec", {})
    st = live.get("status", {}) or {}
    meta = live.get("metadata", {})
    conditions = {c.get("type"): c for c in st.get("conditions", []) or []}
    progressing = conditions.get("Progressing", {})
    desired = int(spec.get("replicas", default_replicas))
    return status.WorkloadState(
        exists=True,
        desired=desired,
        ready=int(st.get("readyReplicas", 0) or 0),
        updated=int(st.get("updatedReplicas", 0) or 0),
        available=int(st.get("availableReplicas", 0) or 0),
        generation_observed=int(st.get("observedGeneration", 0) or 0)
        >= int(meta.get("generation", 0)),
        revision=(meta.get("annotations") or {}).get(builders.REVISION_ANNOTATION),
        deadline_exceeded=progressing.get("reason") == "ProgressDeadlineExceeded",
        rollout_finished_once=progressing.get("reason") == "NewReplicaSetAvailable",
    )


def _job_state(
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


@dataclass
class _Plan:
    """What the workload step of a pass decided, for the status."""

    phase: status.RolloutPhase | None = None
    message: str = ""
    progress: api.RolloutProgress | None = None
    failure: tuple[str, str] | None = None
    rolling_back: bool = False
    known_good: api.KnownGood | None = None


def _endpoints(inst: builders.Instance) -> api.Endpoints:
    return api.Endpoints(
        web=builders.web_internal_url(inst),
        ws=builders.ws_internal_url(inst),
        public=builders.public_url(inst),
        public_ws=builders.public_ws_url(inst),
    )


def _good_revision(previous: api.PartyQuizStatus) -> str | None:
    return previous.known_good.revision if previous.known_good is not None else None


def _known_good(inst: builders.Instance, revision: str) -> api.KnownGood:
    """Return the record a rollback needs to re-render ``revision``: its whole spec."""
    spec = inst.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return api.KnownGood(
        revision=revision,
        version=inst.spec.version,
        spec=json.dumps(spec, sort_keys=True, separators=(",", ":")),
    )


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _rolled_out(*lives: Mapping[str, Any] | None) -> bool:
    return all(_workload(live).complete for live in lives)


class Reconciler:
    """Reconciles PartyQuiz instances; one pass at a time per instance."""

    def __init__(
        self,
        cluster: Cluster,
        metrics: OperatorMetrics,
        *,
        clock: Clock = utc_now,
        token_factory: TokenFactory = new_token,
        cache: WatchCache | None = None,
        events: EventRecorder | None = None,
        request_threads: int = 8,
    ) -> None:
        self._cluster = cluster
        self._metrics = metrics
        self._clock = clock
        self._new_token = token_factory
        self._cache = cache
        self._events = events
        # .mode: where this thread's pass reads from (``Reads``); .instance: its (ns, name).
        self._reads = threading.local()
        # Children the watches do not cover, as this process last read or wrote them (None:
        # absent), by instance; event-triggered passes read them here (see ``Reads``).
        self._seen: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any] | None]] = {}
        # Requests of one pass that do not depend on each other (``_together``).
        self._requests = concurrent.futures.ThreadPoolExecutor(
            max_workers=request_threads, thread_name_prefix="partyquiz-request"
        )
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        # Instances asked for another pass while one ran, with the reads that pass must do.
        self._pending: dict[tuple[str, str], Reads] = {}
        self._guard = threading.Lock()

    # --- serialisation -------------------------------------------------------------------

    @contextmanager
    def _exclusive(self, key: tuple[str, str]) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def reconcile_named(self, namespace: str, name: str, *, reads: Reads = "api") -> Outcome | None:
        """Reconcile the instance by name (after a child changed); coalesces bursts of calls.

        When a pass for the instance is already running, the call only marks it dirty and the
        running pass goes once more, so a storm of child events costs at most two passes.
        ``reads`` says where the pass reads from (see ``Reads``); with a watch cache, "event"
        and "resync" take the PartyQuiz itself from the cache too.
        """
        key = (namespace, name)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
            if lock.locked():
                # The pass goes again reading at least as much as any call asked for, so a
                # resync folded into an event-triggered pass still re-reads what it must.
                self._pending[key] = _stronger(self._pending.get(key, "event"), reads)
                return None
        outcome = None
        while True:
            with lock:
                with self._guard:
                    self._pending.pop(key, None)
                body = self._instance(namespace, name, reads)
                if body is None or body["metadata"].get("deletionTimestamp"):
                    return outcome
                outcome = self._reconcile_reading(body, reads=reads)
            with self._guard:
                asked = self._pending.get(key)
                if asked is None:
                    return outcome
                reads = asked

    def list_instances(self, namespaces: list[str]) -> list[tuple[str, str, str]]:
        """Return (namespace, name, resourceVersion) of every live PartyQuiz (all if empty).

        The list also refreshes the PartyQuiz objects in the watch cache (a newer version
        there is kept; one the API server no longer holds is dropped).
        """
        bodies: list[dict[str, Any]] = []
        targets: list[str | None] = list(namespaces) or [None]
        for namespace in targets:
            items, version = self._cluster.list_versioned(api.KIND, namespace, "", any_version=True)
            bodies += items
            if self._cache is not None:
                covered = None if namespace is None else [namespace]
                self._cache.relisted(api.KIND, covered, items, version)
        return [
            (b["metadata"]["namespace"], b["metadata"]["name"], b["metadata"]["resourceVersion"])
            for b in bodies
            if not b["metadata"].get("deletionTimestamp")
        ]

    def relist_children(self, namespaces: list[str], kinds: list[str]) -> list[Mapping[str, Any]]:
        """LIST the operator's children of ``kinds`` into the watch cache; return what changed.

        What changed (see ``WatchCache.relisted``): bodies the cache did not hold in that
        version, and kept bodies the API server no longer holds (a deletion a watch missed);
        their owners need a pass. ``namespaces`` empty means the whole cluster.
        """
        if self._cache is None:
            return []
        selector = f"app.kubernetes.io/managed-by={builders.FIELD_MANAGER}"
        dropped: list[Mapping[str, Any]] = []
        for kind in kinds:
            targets: list[str | None] = list(namespaces) or [None]
            for namespace in targets:
                # From the API server's watch cache: a list older than a kept body leaves
                # that body alone (see ``WatchCache.relisted``).
                items, version = self._cluster.list_versioned(
                    kind, namespace, selector, any_version=True
                )
                covered = None if namespace is None else [namespace]
                dropped += self._cache.relisted(kind, covered, items, version)
        return dropped

    def seed_children(self, namespaces: list[str], kinds: list[str]) -> None:
        """LIST every object of ``kinds``: the operator's into the cache, the others' names."""
        if self._cache is None:
            return
        for kind in kinds:
            ours: list[dict[str, Any]] = []
            others: list[dict[str, Any]] = []
            targets: list[str | None] = list(namespaces) or [None]
            for namespace in targets:
                items, _ = self._cluster.list_versioned(kind, namespace, "", any_version=True)
                for item in items:
                    (ours if builders.is_managed(item) else others).append(item)
            self._cache.seeded(kind, ours, others)

    def reconcile(
        self, body: Mapping[str, Any], *, from_cache: bool = True, stores_first: bool = False
    ) -> Outcome:
        """Run one full pass for ``body`` (a PartyQuiz as kopf delivers it).

        ``from_cache``: read as an event-triggered pass does ("event", see ``Reads``); off
        when the watch cache may still be filling (operator start-up).

        ``stores_first``: for an instance that has no status yet, stop the pass as soon as its
        managed data stores' StatefulSets are applied and return ``Outcome.follow_up``. Their
        pods are the slowest step on the way to Ready; when many instances are created at once,
        each one's stores then start after a short pass instead of after the whole first pass
        of every instance ahead of it on the handler threads. The rest follows in the next pass.

        A ``reconcile_named`` call that arrived during the pass (a child changed) only marked
        the instance dirty; ``Outcome.dirty`` says so, and the caller must have the instance
        reconciled once more (through ``reconcile_named``) rather than leave it to the resync.
        """
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._exclusive(key):
            with self._guard:
                self._pending.pop(key, None)
            reads: Reads = "event" if from_cache else "api"
            fresh = self._instance(meta["namespace"], meta["name"], reads)
            if fresh is not None and self._cache is not None:
                self._cache.put(api.KIND, fresh)
            if fresh is None or fresh["metadata"].get("deletionTimestamp"):
                return Outcome(phase="Deleted", writes=0)
            outcome = self._reconcile_reading(fresh, reads=reads, stores_first=stores_first)
        with self._guard:
            return dataclasses.replace(outcome, dirty=key in self._pending)

    # --- reads ---------------------------------------------------------------------------

    def close(self) -> None:
        """Post the Events still queued and stop their thread."""
        self._requests.shutdown(wait=False, cancel_futures=True)
        if self._events is not None:
            self._events.close()

    def forget_instance(self, namespace: str, name: str) -> None:
        """Drop what this process remembers of a deleted instance's children."""
        with self._guard:
            self._seen.pop((namespace, name), None)

    def _instance(self, namespace: str, name: str, reads: Reads) -> Mapping[str, Any] | None:
        """Return the PartyQuiz: from the watch cache unless ``reads`` is "api" or it is unseen."""
        if reads != "api" and self._cache is not None:
            body = self._cache.get(api.KIND, namespace, name)
            if body is not None:
                return body
        return self._cluster.get(api.KIND, namespace, name)

    def _reconcile_reading(
        self, body: Mapping[str, Any], *, reads: Reads, stores_first: bool = False
    ) -> Outcome:
        meta = body["metadata"]
        self._reads.mode = reads if self._cache is not None else "api"
        self._reads.instance = (meta["namespace"], meta["name"])
        try:
            return self._reconcile_locked(body, stores_first=stores_first)
        finally:
            self._reads.mode = "api"
            self._reads.instance = None

    def _mode(self) -> Reads:
        mode: Reads = getattr(self._reads, "mode", "api")
        return mode

    def _remembered(self) -> dict[tuple[str, str], dict[str, Any] | None] | None:
        """Return this pass's instance's remembered unwatched children (None: no pass)."""
        instance = getattr(self._reads, "instance", None)
        if instance is None:
            return None
        with self._guard:
            return self._seen.setdefault(instance, {})

    def _remember(self, kind: str, name: str, body: dict[str, Any] | None) -> None:
        seen = self._remembered()
        if seen is not None:
            seen[(kind, name)] = body

    def _get(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        unseen_is_absent: bool = False,
        only_ours: bool = False,
    ) -> dict[str, Any] | None:
        """Read a child as the pass's ``Reads`` say.

        A child the cache has not seen is read from the API server (it may be a foreign object
        with the same name, or one whose event is still on its way), unless the cache knows
        the name is free or ``unseen_is_absent`` says an unseen object may be taken as absent
        for this read. ``only_ours``: an unwatched child that only the operator creates or
        deletes, so a resync pass may take it as remembered too.
        """
        known, body = self._known(
            kind, namespace, name, unseen_is_absent=unseen_is_absent, only_ours=only_ours
        )
        if known:
            return body
        live = self._cluster.get(kind, namespace, name)
        if self._cache is None or kind not in self._cache.kinds:
            self._remember(kind, name, live)
        return live

    def _known(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        unseen_is_absent: bool = False,
        only_ours: bool = False,
    ) -> tuple[bool, dict[str, Any] | None]:
        """Return (True, the child) when ``_get`` can answer without the API server."""
        cache, mode = self._cache, self._mode()
        if cache is not None and kind in cache.kinds:
            if mode != "api":
                body = cache.get(kind, namespace, name)
                if body is not None:
                    return True, dict(body)
                if unseen_is_absent or cache.known_absent(kind, namespace, name):
                    return True, None
            return False, None
        seen = self._remembered()
        trusted = mode == "event" or (mode == "resync" and only_ours)
        if trusted and seen is not None and (kind, name) in seen:
            return True, seen[(kind, name)]
        return False, None

    def _apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply; the returned object is the newest version, so cache it."""
        live = self._cluster.apply(manifest)
        if self._cache is not None and manifest["kind"] in self._cache.kinds:
            self._cache.put(manifest["kind"], live)
        else:
            self._remember(manifest["kind"], manifest["metadata"]["name"], live)
        return live

    def _delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete a child; the cache and the remembered children drop it at once."""
        deleted = self._cluster.delete(kind, namespace, name)
        if self._cache is not None and kind in self._cache.kinds:
            self._cache.forget(kind, namespace, name)
        else:
            self._remember(kind, name, None)
        return deleted

    # --- the pass ------------------------------------------------------------------------

    def _reconcile_locked(self, body: Mapping[str, Any], *, stores_first: bool = False) -> Outcome:
        writes_before = self._metrics.write_count()
        meta = body["metadata"]
        self._metrics.record_generation_seen(
            meta["namespace"], meta["name"], int(meta.get("generation", 1))
        )
        previous = api.parse_status(body.get("status"))
        try:
            inst = instance_from_body(body)
        except SpecError as exc:
            self._report(body, previous, self._blocked(body, previous, "InvalidSpec", str(exc)))
            raise
        now = self._clock()
        if inst.spec.suspend:
            new = status.suspended_status(previous, now=now, generation=inst.generation)
            self._report(body, previous, new)
            return Outcome(phase=new.phase, writes=int(self._metrics.write_count() - writes_before))
        stop_after_stores = stores_first and previous.observed_generation is None
        try:
            converged = self._converge(
                inst, previous, now, meta.get("annotations") or {}, stop_after_stores
            )
        except SpecError as exc:
            self._report(body, previous, self._blocked(body, previous, "InvalidSpec", str(exc)))
            raise
        except TransientError as exc:
            if isinstance(exc, KubeApiError) and "being terminated" in str(exc):
                # The namespace is going away with everything in it; nothing to repair.
                raise TransientError(
                    f"namespace {inst.namespace} is being deleted", delay=30
                ) from exc
            if isinstance(exc, KubeApiError) and exc.is_permanent:
                blocked = self._blocked(body, previous, "ApplyRejected", str(exc))
                self._report(body, previous, blocked)
                raise SpecError(str(exc)) from exc
            reason = getattr(exc, "reason", None) or "Waiting"
            if not isinstance(exc, KubeApiError):
                self._report(body, previous, self._blocked(body, previous, reason, str(exc)))
            raise
        writes = int(self._metrics.write_count() - writes_before)
        if converged is None:  # stopped after starting the data stores; nothing to report yet
            return Outcome(phase=previous.phase, writes=writes, follow_up=True)
        self._report(body, previous, converged)
        return Outcome(phase=converged.phase, writes=writes)

    def _blocked(
        self, body: Mapping[str, Any], previous: api.PartyQuizStatus, reason: str, message: str
    ) -> api.PartyQuizStatus:
        generation = int(body["metadata"].get("generation", 1))
        return status.blocked_status(
            previous, now=self._clock(), generation=generation, reason=reason, message=message
        )

    def _ensure(
        self,
        inst: builders.Instance,
        desired: Mapping[str, Any],
        read: Mapping[tuple[str, str], dict[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """Apply ``desired`` unless the live object already matches; return the live object.

        ``read`` holds objects this pass already read, by (kind, name), so they are not read
        twice.
        """
        meta = desired["metadata"]
        key = (desired["kind"], meta["name"])
        if read is not None and key in read:
            live = read[key]
        else:
            live = self._get(desired["kind"], meta["namespace"], meta["name"])
        if live is not None and not drift.is_owned_by(live, inst.uid):
            raise _NotOwnedError(desired["kind"], meta["name"])
        hashed = drift.with_hash(desired)
        if live is not None and drift.is_up_to_date(live, hashed):
            return live
        logger.info("applying %s %s/%s", desired["kind"], meta["namespace"], meta["name"])
        return self._apply(hashed)

    def _get_all(
        self, namespace: str, keys: Sequence[tuple[str, str]]
    ) -> list[dict[str, Any] | None]:
        """``_get`` each (kind, name) of ``keys``, those that need the API server at the same
        time; return them in order."""
        found = [self._known(kind, namespace, name) for kind, name in keys]
        missing = [i for i, (known, _) in enumerate(found) if not known]
        fetched = self._together(
            [functools.partial(self._get, keys[i][0], namespace, keys[i][1]) for i in missing]
        )
        bodies = [body for _, body in found]
        for i, body in zip(missing, fetched, strict=True):
            bodies[i] = body
        return bodies

    def _together(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Run ``calls`` (requests of this pass) at the same time; return results in order.

        Each waits for the API server, so the pass takes one round trip instead of one per
        call. The first failure is raised once every call has ended.
        """
        if len(calls) < 2:
            return [call() for call in calls]
        mode, instance = self._mode(), getattr(self._reads, "instance", None)

        def run(call: Callable[[], T]) -> T:
            # The request threads read the way this pass does.
            self._reads.mode, self._reads.instance = mode, instance
            try:
                return call()
            finally:
                self._reads.mode, self._reads.instance = "api", None

        futures = [self._requests.submit(run, call) for call in calls]
        concurrent.futures.wait(futures)
        return [f.result() for f in futures]

    def _ensure_all(
        self,
        inst: builders.Instance,
        desired: Sequence[Mapping[str, Any]],
        read: Mapping[tuple[str, str], dict[str, Any] | None] | None = None,
    ) -> list[dict[str, Any]]:
        """``_ensure`` each of ``desired`` (children that do not depend on each other), those
        that need the API server at the same time; return the live objects in order."""
        lives = [self._up_to_date(inst, d, read) for d in desired]
        missing = [i for i, live in enumerate(lives) if live is None]
        done = self._together(
            [functools.partial(self._ensure, inst, desired[i], read) for i in missing]
        )
        for i, live in zip(missing, done, strict=True):
            lives[i] = live
        return [live for live in lives if live is not None]

    def _up_to_date(
        self,
        inst: builders.Instance,
        desired: Mapping[str, Any],
        read: Mapping[tuple[str, str], dict[str, Any] | None] | None,
    ) -> dict[str, Any] | None:
        """Return the live object when, without the API server, it is known to be ours and
        to match ``desired``; None when ``_ensure`` must look further."""
        meta = desired["metadata"]
        key = (desired["kind"], meta["name"])
        if read is not None and key in read:
            live = read[key]
        else:
            known, live = self._known(desired["kind"], meta["namespace"], meta["name"])
            if not known:
                return None
        if live is None or not drift.is_owned_by(live, inst.uid):
            return None
        return live if drift.is_up_to_date(live, drift.with_hash(desired)) else None

    def _secret_digests(self, inst: builders.Instance) -> dict[str, str]:
        digests: dict[str, str] = {}
        for name, key in builders.referenced_secrets(inst):
            secret = self._cluster.get("Secret", inst.namespace, name)
            if secret is None:
                raise _MissingSecretError(f"Secret {name} (referenced by the spec) does not exist")
            value = (secret.get("data") or {}).get(key)
            if value is None:
                raise _MissingSecretError(f"Secret {name} has no key {key!r}")
            digests[f"{name}/{key}"] = hashlib.sha256(value.encode()).hexdigest()[:16]
        if inst.spec.jwt_secret_ref is not None:
            ref = inst.spec.jwt_secret_ref
            raw = base64.b64decode(
                (self._cluster.get("Secret", inst.namespace, ref.name) or {})["data"][ref.key]
            )
            if len(raw) < builders.MIN_JWT_SECRET_BYTES:
                raise SpecError(
                    f"Secret {ref.name} key {ref.key!r} holds {len(raw)} bytes; "
                    f"the JWT secret needs at least {builders.MIN_JWT_SECRET_BYTES}"
                )
        return digests

    def _grow_volume(
        self, statefulset: str, inst: builders.Instance, wanted: str, claim: str
    ) -> None:
        """Grow the data PVC in place when the spec asks for more than it has.

        ``claim`` is the StatefulSet's claim template size. The PVC was made from it (or
        bigger; a recreated one is made from it again) and only ever grows, so a pass that
        wants no more than the template cannot need a patch and does not read the PVC.
        """
        want_q, claim_q = drift.parse_quantity(wanted), drift.parse_quantity(claim)
        if want_q is not None and claim_q is not None and want_q <= claim_q:
            return
        pvc_name = builders.data_pvc_name(statefulset)
        pvc = self._cluster.get("PersistentVolumeClaim", inst.namespace, pvc_name)
        if pvc is None:
            return
        have = pvc.get("spec", {}).get("resources", {}).get("requests", {}).get("storage", "0")
        want_q, have_q = drift.parse_quantity(wanted), drift.parse_quantity(str(have))
        if want_q is not None and have_q is not None and want_q > have_q:
            self._cluster.merge_patch(
                "PersistentVolumeClaim",
                inst.namespace,
                pvc_name,
                {"spec": {"resources": {"requests": {"storage": wanted}}}},
            )

    def _converge(
        self,
        inst: builders.Instance,
        previous: api.PartyQuizStatus,
        now: datetime,
        annotations: Mapping[str, str],
        stop_after_stores: bool = False,
    ) -> api.PartyQuizStatus | None:
        """Bring every child to the spec; return the new status (None: stopped after the data
        stores' StatefulSets, see ``reconcile(stores_first=...)``)."""
        spec = inst.spec
        digests = self._secret_digests(inst)
        secret_name = builders.credentials_secret_name(inst)
        account_name = builders.service_account_name(inst)
        # Read at once: one round trip when both come from the API server (start-up).
        secret, account = self._get_all(
            inst.namespace, [("Secret", secret_name), ("ServiceAccount", account_name)]
        )
        credentials = builders.build_credentials_secret(inst, _decode(secret), self._new_token)
        read: dict[tuple[str, str], dict[str, Any] | None] = {
            ("Secret", secret_name): secret,
            ("ServiceAccount", account_name): account,
        }

        pg_claim = redis_claim = None
        if spec.database.managed is not None:
            name = builders.postgres_name(inst)
            live = read[("StatefulSet", name)] = self._get("StatefulSet", inst.namespace, name)
            pg_claim = _claim_storage(live)
            if pg_claim is not None:
                self._grow_volume(name, inst, spec.database.managed.storage, pg_claim)
        if spec.redis.managed is not None:
            name = builders.redis_name(inst)
            live = read[("StatefulSet", name)] = self._get("StatefulSet", inst.namespace, name)
            redis_claim = _claim_storage(live)
            if redis_claim is not None:
                self._grow_volume(name, inst, spec.redis.managed.storage, redis_claim)

        applied: dict[tuple[str, str], dict[str, Any]] = {}
        children = builders.build_infrastructure(
            inst,
            credentials=credentials,
            postgres_claim_storage=pg_claim,
            redis_claim_storage=redis_claim,
        )
        for wave in _waves(children):
            for child, live in zip(wave, self._ensure_all(inst, wave, read), strict=True):
                applied[(child["kind"], child["metadata"]["name"])] = live
            if stop_after_stores and wave[0]["kind"] == "StatefulSet":
                return None
        for child in backup.build_backup_children(inst):
            applied[(child["kind"], child["metadata"]["name"])] = self._ensure(inst, child)
        self._remove_unwanted(inst, applied)

        database = (
            _workload(applied[("StatefulSet", builders.postgres_name(inst))])
            if spec.database.managed is not None
            else None
        )
        redis = (
            _workload(applied[("StatefulSet", builders.redis_name(inst))])
            if spec.redis.managed is not None
            else None
        )

        revision = builders.compute_revision(inst, digests)
        retry = annotations.get(api.RETRY_ANNOTATION)
        retrying = (
            retry is not None and retry != previous.retry and previous.revisions.failed == revision
        )
        if retrying:
            logger.info("%s/%s: retrying revision %s", inst.namespace, inst.name, revision)
            self._forget_failed_jobs(inst, revision)
            revisions = previous.revisions.model_copy(update={"failed": None})
            previous = previous.model_copy(update={"revisions": revisions})
        prune: list[tuple[str, set[str | None]]] = []
        if revision in {previous.revisions.current, _good_revision(previous)} - {None}:
            # It ran here before: its migration is done, and an older release must never be
            # asked to migrate a schema a newer one already moved on.
            migration: status.MigrationState = "Complete"
            migration_message = ""
        else:
            migration, migration_message = self._migrate(inst, previous, revision, database)
            if migration == "Complete" and previous.revisions.migrated != revision:
                # The Job just completed. Old Jobs go once the workloads are applied: the
                # Deployments do not wait for the clean-up.
                keep = {revision, previous.revisions.current, _good_revision(previous)}
                prune = [
                    (builders.COMPONENT_MIGRATION, keep),
                    (builders.COMPONENT_BACKUP, {revision}),
                ]

        plan = _Plan()
        if migration != "Complete":
            # Only observed for the status here (``_ensure`` checks ownership before a write),
            # so one the cache has not seen is taken as absent.
            web_live = self._get(
                "Deployment", inst.namespace, builders.web_name(inst), unseen_is_absent=True
            )
            ws_live = self._get(
                "Deployment", inst.namespace, builders.ws_name(inst), unseen_is_absent=True
            )
        elif revision == previous.revisions.current:
            web_live, ws_live = self._ensure_all(
                inst,
                [
                    builders.build_web_deployment(inst, revision),
                    builders.build_ws_deployment(inst, revision),
                ],
            )
            plan.known_good = _known_good(inst, revision)
        elif previous.revisions.failed == revision:
            web_live, ws_live = self._stay_rolled_back(inst, previous, revision, plan)
        else:
            web_live, ws_live = self._roll_out(inst, previous, revision, now, plan)

        for component, keep in prune:
            self._prune_jobs(inst, component, keep)

        observation = status.Observation(
            generation=inst.generation,
            target_revision=revision,
            version=spec.version,
            database=database,
            redis=redis,
            migration=migration,
            migration_message=migration_message,
            web=_workload(web_live),
            ws=_workload(ws_live),
            endpoints=_endpoints(inst),
            rollout=plan.phase,
            rollout_message=plan.message,
            rollout_progress=plan.progress,
            failure=plan.failure,
            rolling_back=plan.rolling_back,
            known_good=plan.known_good,
            retrying=retrying,
            retry=retry,
        )
        computed = status.compute_status(
            observation,
            previous,
            now=now,
            database_name=builders.postgres_name(inst),
            redis_name=builders.redis_name(inst),
        )
        return self._monitor(inst, previous, computed, now)

    def _monitor(
        self,
        inst: builders.Instance,
        previous: api.PartyQuizStatus,
        computed: api.PartyQuizStatus,
        now: datetime,
    ) -> api.PartyQuizStatus:
        """Apply the monitoring objects the spec asks for; report them as MonitoringReady.

        Missing Prometheus Operator CRDs only set the condition: the installation goes on.
        """
        wanted = monitoring.build_monitoring_objects(inst)
        had = any(c.type == "MonitoringReady" for c in previous.conditions)
        if not wanted and not had:
            return computed
        served = self._cluster.served_kinds(monitoring.MONITORING_API_VERSION)
        wanted_kinds = {m["kind"] for m in wanted}
        for kind in (set(monitoring.MONITORING_KINDS) & served) - wanted_kinds:
            live = self._get(kind, inst.namespace, inst.name)
            if live is not None and drift.is_owned_by(live, inst.uid):
                self._delete(kind, inst.namespace, inst.name)
        if not wanted:
            kept = [c for c in computed.conditions if c.type != "MonitoringReady"]
            return computed.model_copy(update={"conditions": kept})
        for manifest in wanted:
            if manifest["kind"] in served:
                self._ensure(inst, manifest)
        state, reason, message = monitoring.monitoring_condition(wanted_kinds, served)
        conditions = status.set_condition(
            list(computed.conditions),
            "MonitoringReady",
            state,
            reason,
            message,
            now=now,
            generation=inst.generation,
        )
        return computed.model_copy(update={"conditions": conditions})

    def _migrate(
        self,
        inst: builders.Instance,
        previous: api.PartyQuizStatus,
        revision: str,
        database: status.WorkloadState | None,
    ) -> tuple[status.MigrationState, str]:
        """Run (or observe) the migration Job of ``revision``; never re-run a failed one."""
        if previous.revisions.migrated == revision:
            return "Complete", ""
        job_name = builders.migration_job_name(inst, revision)
        live = self._get("Job", inst.namespace, job_name)
        if live is not None and live["metadata"].get("deletionTimestamp"):
            return "Running", "waiting for the previous migration Job to be deleted (retry)"
        if live is None:
            if previous.revisions.failed == revision:
                return "Failed", f"revision {revision} failed before; change the spec to retry"
            if database is not None and database.ready < 1:
                return "Waiting", ""
            if backup.backup_wanted(inst) and previous.revisions.current is not None:
                backed_up, backup_message = self._back_up(inst, revision)
                if backed_up == "Failed" and previous.revisions.failed != revision:
                    self._metrics.migrations_total.labels("failed").inc()
                if backed_up != "Complete":
                    return backed_up, backup_message
            job = builders.build_migration_job(inst, revision)
            live = self._apply(drift.with_hash(job))
        state, message = _job_state(live)
        if state == "Complete":
            self._metrics.migrations_total.labels("succeeded").inc()
        elif state == "Failed" and previous.revisions.failed != revision:
            self._metrics.migrations_total.labels("failed").inc()
        return state, message

    def _back_up(self, inst: builders.Instance, revision: str) -> tuple[status.MigrationState, str]:
        """Run (or observe) the dump Job that must succeed before ``revision`` migrates."""
        name = backup.backup_job_name(inst, revision)
        live = self._get("Job", inst.namespace, name)
        if live is not None and live["metadata"].get("deletionTimestamp"):
            return "BackingUp", "waiting for the previous backup Job to be deleted (retry)"
        if live is None:
            self._ensure(inst, backup.build_backup_pvc(inst))
            live = self._apply(drift.with_hash(backup.build_backup_job(inst, revision)))
        state, message = _job_state(live, "backup Job")
        if state == "Running":
            return "BackingUp", ""
        if state == "Failed":
            return "Failed", f"{message}; the migration did not start"
        return state, message

    def _forget_failed_jobs(self, inst: builders.Instance, revision: str) -> None:
        """Delete the failed migration and backup Jobs of ``revision`` so a retry makes anew."""
        for name in (
            builders.migration_job_name(inst, revision),
            backup.backup_job_name(inst, revision),
        ):
            live = self._get("Job", inst.namespace, name)
            owned = live is not None and drift.is_owned_by(live, inst.uid)
            if owned and _job_state(live)[0] == "Failed":
                self._delete("Job", inst.namespace, name)

    # --- rollout and rollback ----------------------------------------------------------------

    def _pods(self, inst: builders.Instance, component: str) -> list[dict[str, Any]]:
        selector = ",".join(
            f"{k}={v}" for k, v in builders.selector_labels(inst, component).items()
        )
        # A pod state a moment old is fine: its next change triggers another pass.
        return self._cluster.list_labelled("Pod", inst.namespace, selector, any_version=True)

    def _roll_out(
        self,
        inst: builders.Instance,
        previous: api.PartyQuizStatus,
        revision: str,
        now: datetime,
        plan: _Plan,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Apply ``revision`` to web and ws and judge the rollout; roll back when it failed."""
        settings = inst.spec.rollout
        ongoing = (
            previous.rollout if previous.rollout and previous.rollout.revision == revision else None
        )
        started = _parse_time(ongoing.started_at) if ongoing else None
        completed = _parse_time(ongoing.completed_at) if ongoing else None
        started = started or now
        web_live, ws_live = self._ensure_all(
            inst,
            [
                builders.build_web_deployment(inst, revision),
                builders.build_ws_deployment(inst, revision),
            ],
        )
        verdicts = {
            component: rollout.assess_rollout(
                live,
                self._pods(inst, component) if rollout.pods_matter(live) else [],
                revision=revision,
                now=now,
                started_at=started,
                timeout_seconds=settings.timeout_seconds,
                # A first install has nothing to roll back to: it is Ready once rolled out.
                bake_seconds=settings.bake_seconds if previous.known_good else 0,
                completed_at=completed,
            )
            for component, live in (
                (builders.COMPONENT_WEB, web_live),
                (builders.COMPONENT_WS, ws_live),
            )
        }
        failed = {c: v for c, v in verdicts.items() if v.failed}
        if failed:
            return self._fail_rollout(inst, previous, revision, failed, plan, web_live, ws_live)
        if all(v.done for v in verdicts.values()):
            plan.known_good = _known_good(inst, revision)
            return web_live, ws_live
        done_at = [v.completed_at for v in verdicts.values()]
        both_done = None if None in done_at else max(t for t in done_at if t is not None)
        plan.phase = "Baking" if both_done is not None else "Progressing"
        plan.message = "; ".join(v.message for v in verdicts.values() if not v.done)
        plan.progress = api.RolloutProgress(
            revision=revision,
            started_at=status.format_time(started),
            completed_at=None if both_done is None else status.format_time(both_done),
        )
        return web_live, ws_live

    def _fail_rollout(
        self,
        inst: builders.Instance,
        previous: api.PartyQuizStatus,
        revision: str,
        failed: Mapping[str, rollout.RolloutVerdict],
        plan: _Plan,
        web_live: dict[str, Any],
        ws_live: dict[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        first = next(iter(failed.values()))
        detail = "; ".join(v.message for v in failed.values())
        for component in failed:
            self._metrics.rollouts_total.labels(component, "failed").inc()
        good = previous.known_good
        logger.warning("%s/%s: revision %s failed: %s", inst.namespace, inst.name, revision, detail)
        if not inst.spec.rollout.auto_rollback or good is None or good.revision == revision:
            why = "autoRollback is off" if good is not None else "no known-good revision yet"
            plan.failure = (first.reason, f"revision {revision} failed ({detail}); {why}")
            return web_live, ws_live
        plan.failure = (
            "RolledBack",
            f"revision {revision} failed ({first.reason}: {detail}); rolled back to revision "
            f"{good.revision} (version {good.version}); change the spec or set the "
            f"{api.RETRY_ANNOTATION} annotation to try again",
        )
        # Record the failure before touching the Deployments: an operator restarted mid-rollback
        # then keeps rolling back instead of rolling the failed revision out again.
        revisions = previous.revisions.model_copy(update={"failed": revision, "target": revision})
        patched = self._cluster.patch_status(
            inst.namespace,
            inst.name,
            {"revisions": revisions.model_dump(by_alias=True, mode="json"), "rollout": None},
        )
        if patched is not None and self._cache is not None:
            self._cache.put(api.KIND, patched)
        lives = self._roll_back(inst, good)
        for component in ("web", "ws"):
            self._metrics.rollouts_total.labels(component, "rolled_back").inc()
        plan.rolling_back = not _rolled_out(*lives)
        return lives

    def _stay_rolled_back(
        self,
        inst: builders.Instance,
        previous: api.PartyQuizStatus,
        revision: str,
        plan: _Plan,
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Keep a failed revision off the pods until the spec changes or a retry is asked."""
        degraded = next((c for c in previous.conditions if c.type == "Degraded"), None)
        if degraded is not None and degraded.status == "True" and revision in degraded.message:
            plan.failure = (degraded.reason, degraded.message)
        else:
            plan.failure = ("RolledBack", f"revision {revision} failed before; not retried")
        good = previous.known_good
        if inst.spec.rollout.auto_rollback and good is not None and good.revision != revision:
            lives = self._roll_back(inst, good)
            plan.rolling_back = not _rolled_out(*lives)
            return lives
        web = self._get("Deployment", inst.namespace, builders.web_name(inst))
        ws = self._get("Deployment", inst.namespace, builders.ws_name(inst))
        return web, ws

    def _roll_back(
        self, inst: builders.Instance, good: api.KnownGood
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Render web and ws from the known-good spec; never migrates."""
        spec = api.parse_spec(json.loads(good.spec))
        good_inst = dataclasses.replace(inst, spec=spec)
        web = self._ensure(inst, builders.build_web_deployment(good_inst, good.revision))
        ws = self._ensure(inst, builders.build_ws_deployment(good_inst, good.revision))
        return web, ws

    def _prune_jobs(self, inst: builders.Instance, component: str, keep: set[str | None]) -> None:
        """Delete finished Jobs of ``component`` whose revision is not in ``keep``."""
        selector = f"app.kubernetes.io/instance={inst.name},app.kubernetes.io/component={component}"
        # A Job missed by a list a moment old is pruned by a later pass.
        jobs = self._cluster.list_labelled("Job", inst.namespace, selector, any_version=True)
        for job in jobs:
            labels = job["metadata"].get("labels", {})
            if labels.get(builders.REVISION_LABEL) in keep:
                continue
            if drift.is_owned_by(job, inst.uid):
                self._delete("Job", inst.namespace, job["metadata"]["name"])

    def _remove_unwanted(
        self, inst: builders.Instance, applied: Mapping[tuple[str, str], Any]
    ) -> None:
        wanted = {key for key in applied if key[0] in _OPTIONAL_KINDS}
        candidates = {("Ingress", inst.name), ("HorizontalPodAutoscaler", builders.web_name(inst))}
        pvc = backup.backup_pvc_name(inst)
        if self._get("PersistentVolumeClaim", inst.namespace, pvc, only_ours=True):
            # Backups were set up once (the volume is kept): a schedule may have been dropped.
            candidates.add(("CronJob", backup.backup_cronjob_name(inst)))
        for kind, name in candidates - wanted:
            live = self._get(kind, inst.namespace, name, unseen_is_absent=True)
            if live is not None and drift.is_owned_by(live, inst.uid):
                self._delete(kind, inst.namespace, name)

    # --- reporting -----------------------------------------------------------------------

    def _report(
        self,
        body: Mapping[str, Any],
        previous: api.PartyQuizStatus,
        new: api.PartyQuizStatus,
    ) -> None:
        meta = body["metadata"]
        self._metrics.record_instance(
            meta["namespace"], meta["name"], new.phase, new.observed_generation
        )
        if status.status_body(new) == status.status_body(previous):
            return
        patch = new.model_dump(by_alias=True, mode="json")
        patched = self._cluster.patch_status(meta["namespace"], meta["name"], patch)
        if patched is not None and self._cache is not None:
            # The newest version: the next pass reads its status from the cache.
            self._cache.put(api.KIND, patched)
        now = self._clock()
        for event in status.transitions(previous, new):
            if self._events is not None:
                self._events.record(
                    body, type_=event.type, reason=event.reason, message=event.message, now=now
                )
                continue
            try:
                self._cluster.create_event(
                    body, type_=event.type, reason=event.reason, message=event.message, now=now
                )
            except KubeApiError as exc:
                # Events are best effort: the status already says what happened.
                logger.warning("cannot record event %s: %s", event.reason, exc)
        rolled = new.revisions.current
        if rolled is not None and rolled != previous.revisions.current:
            for component in ("web", "ws"):
                self._metrics.rollouts_total.labels(component, "succeeded").inc()
        degraded = next((c for c in new.conditions if c.type == "Degraded"), None)
        was = next((c for c in previous.conditions if c.type == "Degraded"), None)
        if (
            degraded is not None
            and degraded.status == "True"
            and "progress deadline" in degraded.message
            and (was is None or was.status != "True")
        ):
            for component in ("web", "ws"):
                if f"{component} rollout exceeded" in degraded.message:
                    self._metrics.rollouts_total.labels(component, "failed").inc()

    # --- deletion ------------------------------------------------------------------------

    def clean_up(self, body: Mapping[str, Any]) -> list[str]:
        """Remove workloads and, unless data is retained, the data PVCs; return what went."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        retain = bool((body.get("spec") or {}).get("retainDataOnDelete", True))
        removed: list[str] = []
        selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/managed-by=" + (
            builders.FIELD_MANAGER
        )
        for kind in ("Deployment", "Job", "StatefulSet"):
            for live in self._cluster.list_labelled(kind, namespace, selector):
                if drift.is_owned_by(live, meta["uid"]) and self._cluster.delete(
                    kind, namespace, live["metadata"]["name"]
                ):
                    removed.append(f"{kind}/{live['metadata']['name']}")
        if not retain:
            for live in self._cluster.list_labelled("PersistentVolumeClaim", namespace, selector):
                pvc = live["metadata"]["name"]
                if self._cluster.delete("PersistentVolumeClaim", namespace, pvc):
                    removed.append(f"PersistentVolumeClaim/{pvc}")
        self._metrics.forget_instance(namespace, name)
        return removed


class _MissingSecretError(TransientError):
    reason = "SecretMissing"

    def __init__(self, message: str) -> None:
        super().__init__(message, delay=15.0)


class _NotOwnedError(TransientError):
    reason = "NameConflict"

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            f"{kind} {name} already exists and is not owned by this PartyQuiz; rename or delete it",
            delay=60.0,
        )
