"""kopf handlers: thin adapters from kopf's causes to ``reconcile.Reconciler`` calls.

Owns the registration (on a registry passed in, so tests get a fresh one), the kopf settings,
and the one place where operator errors become ``kopf.PermanentError`` / ``kopf.TemporaryError``.
The PartyQuiz handlers are sync functions, so kopf runs the blocking reconcile in its thread
pool and the event loop never blocks; child events only queue their owner on a ``WorkQueue``
whose own threads reconcile it, so they never wait for (or hold) kopf's pool. No decisions are
made here.
"""

from __future__ import annotations

import copy
import functools
import logging
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
# Secrets and ServiceAccounts are repaired by the periodic resync instead: watching Secrets
# would mean reading every Secret in the watched namespaces.
WATCHED_CHILDREN: tuple[tuple[str, str, str, str], ...] = (
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
    ("batch", "v1", "jobs", "Job"),
    ("", "v1", "services", "Service"),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    ("networking.k8s.io", "v1", "ingresses", "Ingress"),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
)


# Kinds whose status a pass reads. A change to only the status of any other watched child (a
# PodDisruptionBudget's counts change with every pod) cannot change what a pass decides, so it
# triggers no pass.
STATUS_READ_KINDS = frozenset({"Deployment", "StatefulSet", "Job"})


def new_watch_cache() -> WatchCache:
    """Return an empty cache of the kinds in ``WATCHED_CHILDREN``."""
    return WatchCache(frozenset(kind for *_, kind in WATCHED_CHILDREN))


T = TypeVar("T")


def configure(settings: kopf.OperatorSettings, operator: OperatorSettings) -> None:
    """Apply the operator's choices to kopf's settings."""
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

    def reconcile_owner(key: tuple[str, str]) -> None:
        namespace, owner = key
        try:
            run(
                "child",
                functools.partial(reconciler.reconcile_named, namespace, owner, from_cache=True),
            )
        except (kopf.PermanentError, kopf.TemporaryError) as exc:
            # The owner's own handlers and the resync retry; a child event cannot.
            logger.warning("reconcile of %s/%s after a child change: %s", namespace, owner, exc)

    owners: WorkQueue[tuple[str, str]] = WorkQueue(
        reconcile_owner, threads=operator.worker_threads, name="partyquiz-child"
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
        outcome = run(
            "changed",
            lambda: reconciler.reconcile(body, from_cache=from_cache, stores_first=stores_first),
        )
        if outcome.dirty or outcome.follow_up:
            # A child changed during the pass (its event was coalesced into this pass, which
            # may have read the child before the change), or the pass stopped early. Go
            # again, off kopf's threads.
            owners.add((body["metadata"]["namespace"], body["metadata"]["name"]))

    stop_resync = threading.Event()

    def resync_forever() -> None:
        """Reconcile every instance each ``resync_seconds`` (the drift safety net).

        One loop for all instances instead of a kopf timer per object: per-object timers make
        kopf put a finalizer on every PartyQuiz, and a finalizer is exactly what must not be
        there when nothing needs cleaning up (see docs/operator.md, "Deletion").
        """
        while not stop_resync.wait(operator.resync_seconds):
            alive.beat(time.monotonic())
            try:
                instances = reconciler.list_instances(operator.namespace_list())
            except TransientError as exc:
                logger.warning("resync: cannot list PartyQuiz objects: %s", exc)
                continue
            alive.listed(instances, time.monotonic())
            for namespace, name, _ in instances:
                try:
                    run("resync", functools.partial(reconciler.reconcile_named, namespace, name))
                except (kopf.PermanentError, kopf.TemporaryError) as exc:
                    logger.warning("resync of %s/%s: %s", namespace, name, exc)

    @kopf.on.startup(registry=registry)
    def start_resync(**_: Any) -> None:
        owners.start()
        threading.Thread(target=resync_forever, name="partyquiz-resync", daemon=True).start()

    @kopf.on.cleanup(registry=registry)
    def stop_resync_loop(**_: Any) -> None:
        stop_resync.set()
        owners.stop()

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
    @kopf.on.event(*pq, registry=registry)
    async def instance_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        meta = body.get("metadata", {})
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if type == "DELETED":
            metrics.forget_instance(namespace, name)
            alive.watched(namespace, name, None)
        else:
            alive.watched(namespace, name, meta.get("resourceVersion"))

    def child_handler(kind: str) -> Callable[..., Any]:
        async def child_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
            meta = body.get("metadata", {})
            namespace, name = meta.get("namespace", ""), meta.get("name", "")
            if cache is not None:
                if type == "DELETED":
                    cache.forget(kind, namespace, name)
                else:
                    previous = cache.get(kind, namespace, name)
                    # kopf reuses its Body views; keep a plain copy of this version.
                    current = copy.deepcopy(dict(body))
                    cache.put(kind, current)
                    if kind not in STATUS_READ_KINDS and only_status_changed(previous, current):
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
            labels={"app.kubernetes.io/managed-by": builders.FIELD_MANAGER},
        )(child_handler(kind))

    @kopf.on.probe(registry=registry, id="alive")
    def operator_alive(**_: Any) -> str:
        """Fail liveness when the resync loop or the PartyQuiz watch stalled (see liveness)."""
        problems = alive.problems(time.monotonic())
        if problems:
            raise RuntimeError("; ".join(problems))
        return "ok"
