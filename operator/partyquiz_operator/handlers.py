"""kopf handlers: thin adapters from kopf's causes to ``reconcile.Reconciler`` calls.

Owns the registration (on a registry passed in, so tests get a fresh one), the kopf settings,
and the one place where operator errors become ``kopf.PermanentError`` / ``kopf.TemporaryError``.
Handlers are sync functions, so kopf runs the blocking reconcile in its thread pool and the
event loop never blocks. No decisions are made here.
"""

from __future__ import annotations

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

logger = logging.getLogger(__name__)

FINALIZER = reaping.FINALIZER
ANNOTATION_PREFIX = "partyquiz.dev"

# Children whose changes (including deletion) trigger an immediate reconcile of their owner.
# Secrets and ServiceAccounts are repaired by the periodic resync instead: watching Secrets
# would mean reading every Secret in the watched namespaces.
WATCHED_CHILDREN: tuple[tuple[str, str, str], ...] = (
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("batch", "v1", "jobs"),
    ("", "v1", "services"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
)

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
) -> None:
    """Register every handler of the operator on ``registry``."""
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

    @kopf.on.resume(*pq, registry=registry, id="reconcile")
    @kopf.on.create(*pq, registry=registry, id="reconcile")
    @kopf.on.update(*pq, registry=registry, id="reconcile")
    def reconcile_changed(body: kopf.Body, **_: Any) -> None:
        run("changed", lambda: reconciler.reconcile(body))

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
        threading.Thread(target=resync_forever, name="partyquiz-resync", daemon=True).start()

    @kopf.on.cleanup(registry=registry)
    def stop_resync_loop(**_: Any) -> None:
        stop_resync.set()

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

    @kopf.on.event(*pq, registry=registry)
    def instance_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        meta = body.get("metadata", {})
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if type == "DELETED":
            metrics.forget_instance(namespace, name)
            alive.watched(namespace, name, None)
        else:
            alive.watched(namespace, name, meta.get("resourceVersion"))

    def child_changed(body: kopf.Body, **_: Any) -> None:
        owner = owner_of(body)
        namespace = body.get("metadata", {}).get("namespace")
        if owner is None or namespace is None:
            return
        try:
            run("child", lambda: reconciler.reconcile_named(namespace, owner))
        except (kopf.PermanentError, kopf.TemporaryError) as exc:
            # The owner's own handlers and the resync retry; an event handler cannot.
            logger.warning("reconcile of %s/%s after a child change: %s", namespace, owner, exc)

    for group, version, plural in WATCHED_CHILDREN:
        kopf.on.event(
            group,
            version,
            plural,
            registry=registry,
            id=f"child-{plural}",
            labels={"app.kubernetes.io/managed-by": builders.FIELD_MANAGER},
        )(child_changed)

    @kopf.on.probe(registry=registry, id="alive")
    def operator_alive(**_: Any) -> str:
        """Fail liveness when the resync loop or the PartyQuiz watch stalled (see liveness)."""
        problems = alive.problems(time.monotonic())
        if problems:
            raise RuntimeError("; ".join(problems))
        return "ok"
