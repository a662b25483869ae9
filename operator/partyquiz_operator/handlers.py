"""kopf handlers: thin adapters from kopf's causes to ``reconcile.Reconciler`` calls.

Owns the registration (on a registry passed in, so tests get a fresh one), the kopf settings,
and the one place where operator errors become ``kopf.PermanentError`` / ``kopf.TemporaryError``.
The PartyQuiz handlers are sync functions, so kopf runs the blocking reconcile in its thread
pool and the event loop never blocks; child events only queue their owner on a ``WorkQueue``
whose own threads reconcile it, so they never wait for (or hold) kopf's pool. The rest of a new
instance's first pass and the resync go on lower lanes of the same queue, behind every pass a
child's change asked for. No decisions are made here.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import kopf

from partyquiz_operator import api, builders, liveness, reaping
from partyquiz_operator.errors import SpecError, TransientError
from partyquiz_operator.metrics import OperatorMetrics
from partyquiz_operator.reconcile import Reconciler
from partyquiz_operator.settings import OperatorSettings
from partyquiz_operator.watchcache import WatchCache, only_status_changed
from partyquiz_operator.workqueue import WorkQueue

logger = logging.getLogger(__name__)

FINALIZER = reaping.FINALIZER
ANNOTATION_PREFIX = "partyquiz.dev"

# Children whose changes (including deletion) trigger an immediate reconcile of their owner,
# as (group, version, plural, kind); their latest versions are kept in the ``WatchCache``.
# Secrets are repaired by the periodic resync instead: watching Secrets would mean reading
# every Secret in the watched namespaces.
WATCHED_CHILDREN: tuple[tuple[str, str, str, str], ...] = (
    ("", "v1", "serviceaccounts", "ServiceAccount"),
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
    ("batch", "v1", "jobs", "Job"),
    ("", "v1", "services", "Service"),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    ("networking.k8s.io", "v1", "ingresses", "Ingress"),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
)


# A busy instance (one that never idles for ``resync_seconds``) still gets a resync pass, which
# reads the children the watches do not cover, at least every this many ``resync_seconds``.
RESYNC_AT_LEAST_EVERY = 3

# The watched children's kinds, which the resync relists into the watch cache.
CACHED_KINDS = [kind for *_, kind in WATCHED_CHILDREN]


# Kinds whose status a pass reads. A change to only the status of any other watched child (a
# PodDisruptionBudget's counts change with every pod) cannot change what a pass decides, so it
# triggers no pass.
STATUS_READ_KINDS = frozenset({"Deployment", "StatefulSet", "Job"})

# Kinds whose every field outside spec, labels, annotations and owners is status (a
# ServiceAccount is not: its fields sit at the top level, so every change of one counts).
_SPEC_KINDS = frozenset(
    {"Service", "PodDisruptionBudget", "NetworkPolicy", "Ingress", "HorizontalPodAutoscaler"}
)


def new_watch_cache() -> WatchCache:
    """Return an empty cache of the kinds in ``WATCHED_CHILDREN`` and of PartyQuiz objects."""
    return WatchCache(frozenset({api.KIND, *(kind for *_, kind in WATCHED_CHILDREN)}))


# The pass queue's lanes, in priority order: a child changed (or a pass must go again); the
# rest of a new instance's first pass; the resync.
CHILD_LANE, FIRST_PASS_LANE, RESYNC_LANE = 0, 1, 2


def lane_threads(worker_threads: int) -> tuple[int | None, int, int]:
    """Return how many queue threads each lane may use at once: all, a half, a quarter."""
    return (None, max(1, worker_threads // 2), max(1, worker_threads // 4))


T = TypeVar("T")


def _same_version(kept: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    version = kept.get("metadata", {}).get("resourceVersion")
    return version is not None and version == body.get("metadata", {}).get("resourceVersion")


class _QuietWatchHandlers(logging.Filter):
    """Drop kopf's "Handler ... succeeded." line for the bookkeeping event handlers.

    They run for every watch event of every object of the watched kinds (hundreds a second on a
    busy cluster); their failures are still logged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        message = record.getMessage()
        bookkeeping = message.startswith(("Handler 'child-", "Handler 'instance-event'"))
        return not (bookkeeping and message.endswith(" succeeded."))


def configure(settings: kopf.OperatorSettings, operator: OperatorSettings) -> None:
    """Apply the operator's choices to kopf's settings (and to kopf's object log)."""
    objects_log = logging.getLogger("kopf.objects")
    if not any(isinstance(f, _QuietWatchHandlers) for f in objects_log.filters):
        objects_log.addFilter(_QuietWatchHandlers())
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Our own Events report transitions; kopf's per-handler Events would be a write per pass.
    settings.posting.enabled = False
    settings.watching.server_timeout = operator.watch_server_timeout_seconds
    settings.watching.client_timeout = operator.watch_client_timeout_seconds
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = operator.request_timeout_seconds * 2
    settings.execution.max_workers = operator.worker_threads
    # Resource discovery by watching CRDs needs cluster-wide rights the chart does not grant.
    settings.scanning.disabled = True


def owner_of(body: Mapping[str, Any]) -> str | None:
    """Return the name of the PartyQuiz that controls ``body``, if any."""
    for ref in body.get("metadata", {}).get("ownerReferences", []) or []:
        if ref.get("kind") == api.KIND and ref.get("apiVersion", "").startswith(api.GROUP + "/"):
            return str(ref.get("name"))
    return None


def register(
    registry: kopf.OperatorRegistry,
    reconciler: Reconciler,
    metrics: OperatorMetrics,
    operator: OperatorSettings,
    cache: WatchCache | None = None,
) -> None:
    """Register every handler of the operator on ``registry``.

    ``cache`` is the one the reconciler reads; child events keep it current.
    """
    pq = (api.GROUP, api.VERSION, api.PLURAL)

    alive = liveness.Liveness(
        resync_seconds=operator.resync_seconds,
        watch_stall_seconds=operator.watch_stall_seconds,
        now=time.monotonic(),
    )

    def run(handler: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            result = call()
        except SpecError as exc:
            metrics.reconcile_total.labels(handler, "permanent_error").inc()
            raise kopf.PermanentError(str(exc)) from exc
        except TransientError as exc:
            metrics.reconcile_total.labels(handler, "temporary_error").inc()
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
        finally:
            metrics.reconcile_duration.labels(handler).observe(time.perf_counter() - started)
        metrics.reconcile_total.labels(handler, "ok").inc()
        return result

    # When each instance's last pass, and its last resync pass, ended (monotonic): the resync
    # queues instances that had no pass for ``resync_seconds`` or no resync pass for
    # ``RESYNC_AT_LEAST_EVERY`` of them.
    last_pass: dict[tuple[str, str], float] = {}
    last_resync: dict[tuple[str, str], float] = {}
    last_pass_guard = threading.Lock()

    def passed(key: tuple[str, str], *, resync: bool = False) -> None:
        with last_pass_guard:
            last_pass[key] = now = time.monotonic()
            if resync:
                last_resync[key] = now

    def due(key: tuple[str, str], now: float) -> bool:
        idle = now - last_pass.get(key, -math.inf)
        unchecked = now - last_resync.get(key, -math.inf)
        return (
            idle >= operator.resync_seconds
            or unchecked >= operator.resync_seconds * RESYNC_AT_LEAST_EVERY
        )

    def reconcile_owner(key: tuple[str, str], lane: int) -> None:
        namespace, owner = key
        resync = lane == RESYNC_LANE
        handler = {CHILD_LANE: "child", FIRST_PASS_LANE: "first-pass"}.get(lane, "resync")
        try:
            run(
                handler,
                functools.partial(
                    reconciler.reconcile_named,
                    namespace,
                    owner,
                    reads="resync" if resync else "event",
                ),
            )
        except (kopf.PermanentError, kopf.TemporaryError) as exc:
            # The owner's own handlers and the resync retry; a queued pass cannot.
            logger.warning("%s pass of %s/%s: %s", handler, namespace, owner, exc)
        finally:
            passed(key, resync=resync)

    owners: WorkQueue[tuple[str, str]] = WorkQueue(
        reconcile_owner,
        threads=operator.worker_threads,
        name="partyquiz-pass",
        lanes=lane_threads(operator.worker_threads),
    )

    @kopf.on.resume(*pq, registry=registry, id="reconcile")
    @kopf.on.create(*pq, registry=registry, id="reconcile")
    @kopf.on.update(*pq, registry=registry, id="reconcile")
    def reconcile_changed(body: kopf.Body, reason: str, **_: Any) -> None:
        # At start-up (resume) the watch cache is still filling: read the API server.
        from_cache = reason != kopf.Reason.RESUME
        # A new instance's first pass stops once its data stores are started (see
        # Reconciler.reconcile); the rest follows on the child queue's threads.
        stores_first = reason == kopf.Reason.CREATE
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        try:
            outcome = run(
                "changed",
                lambda: reconciler.reconcile(
                    body, from_cache=from_cache, stores_first=stores_first
                ),
            )
        finally:
            passed(key)
        if outcome.dirty:
            # A child changed during the pass (its event was coalesced into this pass, which
            # may have read the child before the change): go again, off kopf's threads.
            owners.add(key, CHILD_LANE)
        elif outcome.follow_up:
            # The pass stopped once the data stores were started; the rest follows behind
            # the passes children asked for (a child's change moves it up).
            owners.add(key, FIRST_PASS_LANE)

    stop_resync = threading.Event()

    def resync_forever() -> None:
        """Have every instance reconciled at least each ``resync_seconds`` (the safety net).

        Every ``resync_seconds`` the watched children are relisted into the watch cache (which
        repairs what a watch missed); every half of it, each instance whose last pass ended
        ``resync_seconds`` ago or earlier (or whose last resync pass ended
        ``RESYNC_AT_LEAST_EVERY`` times that ago) is queued on the resync lane, behind
        every event-driven pass. One loop for all instances instead of a kopf timer per object:
        per-object timers make kopf put a finalizer on every PartyQuiz, and a finalizer is
        exactly what must not be there when nothing needs cleaning up (see docs/operator.md,
        "Deletion").
        """
        namespaces = operator.namespace_list()
        relisted_at: float | None = None
        seeded = False
        while not seeded and not stop_resync.is_set():
            # Once at start: afterwards the watches keep the cache complete.
            try:
                reconciler.seed_children(namespaces, CACHED_KINDS)
                relisted_at = time.monotonic()
                seeded = True
            except TransientError as exc:
                logger.warning("cannot list the watched kinds yet: %s", exc)
                stop_resync.wait(min(operator.resync_seconds, 5.0))
        while not stop_resync.wait(operator.resync_seconds / 2):
            alive.beat(time.monotonic())
            try:
                instances = reconciler.list_instances(namespaces)
                now = time.monotonic()
                if relisted_at is None or now - relisted_at >= operator.resync_seconds * 0.99:
                    relisted_at = now
                    for body in reconciler.relist_children(namespaces, CACHED_KINDS):
                        owner = owner_of(body)
                        namespace = body.get("metadata", {}).get("namespace", "")
                        if owner is not None and namespace:
                            owners.add((namespace, owner))
            except TransientError as exc:
                logger.warning("resync: cannot list: %s", exc)
                continue
            now = time.monotonic()
            alive.listed(instances, now)
            with last_pass_guard:
                keys = [(ns, name) for ns, name, _ in instances if due((ns, name), now)]
            for key in keys:
                owners.add(key, RESYNC_LANE)

    @kopf.on.startup(registry=registry)
    def start_resync(**_: Any) -> None:
        owners.start()
        threading.Thread(target=resync_forever, name="partyquiz-resync", daemon=True).start()

    @kopf.on.cleanup(registry=registry)
    def stop_resync_loop(**_: Any) -> None:
        stop_resync.set()
        owners.stop()
        reconciler.close()

    @kopf.on.delete(
        *pq,
        registry=registry,
        id="cleanup",
        timeout=operator.cleanup_timeout_seconds,
        when=lambda spec, **_: not spec.get("retainDataOnDelete", True),
    )
    def clean_up(body: kopf.Body, **_: Any) -> None:
        removed = run("delete", lambda: reconciler.clean_up(body))
        logger.info("clean-up of %s removed %s", body["metadata"]["name"], removed or "nothing")

    # Async, like child_changed: bookkeeping only, so it needs no thread of kopf's pool.
    @kopf.on.event(*pq, registry=registry, id="instance-event")
    async def instance_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        meta = body.get("metadata", {})
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if type == "DELETED":
            metrics.forget_instance(namespace, name)
            alive.watched(namespace, name, None)
            reconciler.forget_instance(namespace, name)
            with last_pass_guard:
                last_pass.pop((namespace, name), None)
                last_resync.pop((namespace, name), None)
            if cache is not None:
                cache.forget(api.KIND, namespace, name)
        else:
            alive.watched(namespace, name, meta.get("resourceVersion"))
            if cache is not None:
                # Passes read the PartyQuiz here; kopf reuses its Body views, so keep a copy.
                cache.put(api.KIND, copy.deepcopy(dict(body)))

    def child_handler(kind: str) -> Callable[..., Any]:
        async def child_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
            meta = body.get("metadata", {})
            namespace, name = meta.get("namespace", ""), meta.get("name", "")
            if not builders.is_managed(body):
                # Not ours (or no longer labelled as ours): only its name is noted, so a pass
                # never takes the name for free. kopf watches every object of the kind anyway
                # (its label filters act on its side), so this costs no extra traffic.
                if cache is not None:
                    cache.foreign(kind, namespace, name, present=type != "DELETED")
                    cache.forget(kind, namespace, name)
                owner = owner_of(body)
                if owner is not None and namespace:
                    owners.add((namespace, owner))  # someone took our label off: repair it
                return
            if cache is not None:
                cache.foreign(kind, namespace, name, present=False)
                if type == "DELETED":
                    cache.forget(kind, namespace, name)
                else:
                    previous = cache.get(kind, namespace, name)
                    if previous is not None and _same_version(previous, body):
                        # The echo of the operator's own write, whose answer the cache
                        # already holds: nothing a pass has not seen.
                        return
                    # kopf reuses its Body views; keep a plain copy of this version.
                    current = copy.deepcopy(dict(body))
                    cache.put(kind, current)
                    status_only = only_status_changed(previous, current)
                    if kind in _SPEC_KINDS and status_only:
                        return
            owner = owner_of(body)
            if owner is not None and namespace:
                owners.add((namespace, owner))

        return child_changed

    for group, version, plural, kind in WATCHED_CHILDREN:
        kopf.on.event(
            group,
            version,
            plural,
            registry=registry,
            id=f"child-{plural}",
        )(child_handler(kind))

    @kopf.on.probe(registry=registry, id="alive")
    def operator_alive(**_: Any) -> str:
        """Fail liveness when the resync loop or the PartyQuiz watch stalled (see liveness)."""
        problems = alive.problems(time.monotonic())
        if problems:
            raise RuntimeError("; ".join(problems))
        return "ok"
