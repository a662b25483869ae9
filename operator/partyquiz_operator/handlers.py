"""The kopf shell: settings, indexes of the children, handlers, probes, start and stop.

Owns the registration (on a registry passed in, so tests get a fresh one) and the one place
where a pass's ``Outcome`` becomes ``kopf.TemporaryError`` (with the pass's delay) or
``kopf.PermanentError``, so kopf owns the retries of the passes it starts. Children are watched
with a server-side label selector (only the operator's objects arrive) and kept in
``@kopf.index``es keyed by (namespace, instance), which is where passes read them. Every handler
is async: all of it runs on kopf's event loop. No decisions are made here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from partyquiz_operator import api, k8s, reaping
from partyquiz_operator.metrics import OperatorMetrics
from partyquiz_operator.passes import Outcome, Passes
from partyquiz_operator.plan.lifecycle import Key
from partyquiz_operator.render.common import FIELD_MANAGER, INSTANCE_LABEL, MANAGED_BY_LABEL
from partyquiz_operator.settings import OperatorSettings
from partyquiz_operator.trigger import OwnerTrigger, resync

logger = logging.getLogger(__name__)

FINALIZER = reaping.FINALIZER
ANNOTATION_PREFIX = "partyquiz.dev"

# The children a pass reads, as (group, version, plural, kind). Watched with a label selector
# (only the operator's objects), indexed by instance, and each change triggers its instance's
# pass. Secrets are not watched: that would need the right to read every Secret.
WATCHED_CHILDREN: tuple[tuple[str, str, str, str], ...] = (
    ("", "v1", "serviceaccounts", "ServiceAccount"),
    ("", "v1", "services", "Service"),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    ("", "v1", "pods", "Pod"),
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
    ("batch", "v1", "jobs", "Job"),
    ("batch", "v1", "cronjobs", "CronJob"),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    ("networking.k8s.io", "v1", "ingresses", "Ingress"),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
)
RESYNC_BEAT_FACTOR = 3  # liveness fails after this many silent resync intervals (plus 30 s)


def configure(settings: kopf.OperatorSettings, operator: OperatorSettings) -> None:
    """Apply the operator's choices to kopf's settings."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # The passes record their own Events (transitions only); kopf's would be one per handler.
    settings.posting.enabled = False
    settings.watching.server_timeout = operator.watch_server_timeout_seconds
    settings.watching.client_timeout = operator.watch_client_timeout_seconds
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = operator.request_timeout_seconds * 2
    # Resource discovery by watching CRDs needs cluster-wide rights the chart does not grant.
    settings.scanning.disabled = True
    for group, _, plural, _ in WATCHED_CHILDREN:
        selector = (group, plural) if group else plural
        settings.watching.label_selectors[selector] = f"{MANAGED_BY_LABEL}={FIELD_MANAGER}"


def kopf_connection(credentials: k8s.Credentials) -> kopf.ConnectionInfo:
    """Return kopf's credentials from the ones the passes use."""
    token = credentials.token()
    return kopf.ConnectionInfo(
        server=credentials.server,
        ca_path=credentials.ca_path,
        insecure=credentials.insecure,
        scheme="Bearer" if token else None,
        token=token,
        certificate_path=credentials.cert_path,
        private_key_path=credentials.key_path,
    )


def _kept(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the index keeps of a child: all of it, but only what passes read of a pod."""
    kept = {**body, "kind": kind}
    if kind == "Pod":
        meta, st = body.get("metadata", {}), body.get("status") or {}
        kept = {
            "kind": kind,
            "metadata": {
                k: meta.get(k) for k in ("name", "labels", "annotations", "deletionTimestamp")
            },
            "status": {
                k: st.get(k)
                for k in ("phase", "conditions", "containerStatuses", "initContainerStatuses")
            },
        }
    return kept


def _key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body["metadata"]
    return str(meta["namespace"]), str(meta["name"])


def _raise(outcome: Outcome) -> None:
    if outcome.permanent:
        raise kopf.PermanentError(outcome.message)
    if outcome.retry_after is not None:
        raise kopf.TemporaryError(outcome.message, delay=outcome.retry_after)


class Shell:
    """What the handlers share once the operator started: the API session, passes, trigger."""

    def __init__(self) -> None:
        self.passes: Passes | None = None
        self.trigger: OwnerTrigger | None = None
        self.beat: dict[str, float] = {"resync": time.monotonic()}
        self.tasks: list[asyncio.Task[Any]] = []
        self.closers: list[Callable[[], Awaitable[None]]] = []


def register(
    registry: kopf.OperatorRegistry,
    operator: OperatorSettings,
    metrics: OperatorMetrics,
    credentials: k8s.Credentials,
) -> None:
    """Register every handler of the operator on ``registry``."""
    pq = (api.GROUP, api.VERSION, api.PLURAL)
    shell = Shell()
    indexes: dict[str, Any] = {}

    def children(namespace: str, name: str) -> dict[Key, Mapping[str, Any]]:
        found: dict[Key, Mapping[str, Any]] = {}
        for *_, kind in WATCHED_CHILDREN:
            for body in indexes[kind].get((namespace, name), []):
                found[(kind, body["metadata"]["name"])] = body
        return found

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf_connection(credentials)

    @kopf.index(*pq, registry=registry, id="partyquizzes")
    async def instances(body: kopf.Body, **_: Any) -> dict[tuple[str, str], bool]:
        return {_key(body): True}

    for group, version, plural, kind in WATCHED_CHILDREN:

        def index_child(kind: str = kind) -> Any:
            async def child(
                body: kopf.Body, namespace: str, labels: Mapping[str, str], **_: Any
            ) -> Any:
                instance = labels.get(INSTANCE_LABEL)
                return {(namespace, instance): _kept(kind, body)} if instance else {}

            return child

        kopf.index(group, version, plural, registry=registry, id=f"children-{plural}")(
            index_child()
        )

        def on_child(kind: str = kind) -> Any:
            async def changed(type: str | None, body: kopf.Body, **_: Any) -> None:
                if shell.trigger is not None:
                    shell.trigger.child_changed(kind, type, body)

            return changed

        kopf.on.event(group, version, plural, registry=registry, id=f"child-{plural}")(on_child())

    @kopf.on.startup(registry=registry)
    async def start(**kwargs: Any) -> None:
        for *_, plural, kind in WATCHED_CHILDREN:
            indexes[kind] = kwargs[f"children-{plural}"]
        session = k8s.Api(credentials, metrics, timeout=operator.request_timeout_seconds)
        await session.open()
        shell.closers.append(session.close)
        shell.passes = Passes(session, metrics, children)
        shell.trigger = OwnerTrigger(shell.passes)
        shell.tasks.append(
            asyncio.create_task(
                resync(
                    shell.trigger,
                    shell.passes,
                    kwargs["partyquizzes"],
                    every=operator.resync_seconds,
                    beat=shell.beat,
                ),
                name="partyquiz-resync",
            )
        )
        if operator.metrics_port:
            runner = await serve_metrics(metrics, operator.metrics_port)
            shell.closers.append(runner.cleanup)

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        for task in shell.tasks:
            task.cancel()
        if shell.trigger is not None:
            await shell.trigger.stop()
        for close in reversed(shell.closers):
            await close()

    @kopf.on.resume(*pq, registry=registry, id="reconcile")
    @kopf.on.create(*pq, registry=registry, id="reconcile")
    @kopf.on.update(*pq, registry=registry, id="reconcile")
    async def reconcile(body: kopf.Body, **_: Any) -> None:
        assert shell.passes is not None
        _raise(await shell.passes.run(_key(body), "changed"))

    @kopf.on.event(*pq, registry=registry, id="instance-gone")
    async def instance_gone(type: str, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED" and shell.passes is not None and shell.trigger is not None:
            shell.trigger.forget(_key(body))
            shell.passes.forget(_key(body))

    @kopf.on.delete(
        *pq,
        registry=registry,
        id="cleanup",
        timeout=operator.cleanup_timeout_seconds,
        when=lambda spec, **_: not spec.get("retainDataOnDelete", True),
    )
    async def clean_up(body: kopf.Body, **_: Any) -> None:
        assert shell.passes is not None
        namespace, name = _key(body)
        removed = await shell.passes.clean_up(body, children(namespace, name))
        logger.info("clean-up of %s/%s removed %s", namespace, name, removed or "nothing")

    @kopf.on.probe(registry=registry, id="alive")
    async def alive(**_: Any) -> str:
        """Fail liveness when the resync loop stopped coming round."""
        silence = time.monotonic() - shell.beat["resync"]
        if silence > RESYNC_BEAT_FACTOR * operator.resync_seconds + 30:
            raise RuntimeError(f"no resync for {silence:.0f}s")
        if any(task.done() for task in shell.tasks):
            raise RuntimeError("the resync loop ended")
        return "ok"


async def serve_metrics(metrics: OperatorMetrics, port: int) -> web.AppRunner:
    """Serve ``/metrics`` on ``port`` from the event loop; return the runner to stop it."""

    async def scrape(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 - pods listen on all
    return runner
