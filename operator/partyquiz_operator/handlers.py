"""The kopf shell: settings, indexes of the children, handlers, probes, start and stop.

Owns the registration (on a registry passed in, so tests get a fresh one) and the one place
where a pass's ``Outcome`` becomes ``kopf.TemporaryError`` (with the pass's delay) or
``kopf.PermanentError``, so kopf owns the retries of the passes it starts. Children are kept in
``@kopf.index``es keyed by (namespace, instance), which is where passes read them. Every handler
is async: all of it runs on kopf's event loop. No decisions are made here.

What a child event costs. Every watch event of every child goes through kopf's processing of an
object; an instance on its way to Ready brings dozens of them (pods, and its workloads' status)
against a handful of passes, so on a busy operator that processing, more than the passes, is
what the event loop spends its time on. A child event therefore does as little as kopf allows:

- Pods and claims are watched with a server-side label selector (only the operator's arrive).
  Of the kinds it creates by name every object arrives, so a pass knows a free name without
  asking and never takes over someone else's object.
- The index function is the one handler a change runs: it keeps what passes read and hands the
  change to the owner trigger, which runs no pass when nothing a pass reads moved (see
  ``trigger._essence``). kopf calls it for every event but a deletion, before any other
  handler, and starts the first pass only once every index is filled; until then child events
  are no news (each instance's first pass reads the indexes as they are).
- A deletion reaches the trigger through ``@kopf.on.event`` with a ``when`` filter: kopf calls
  no index function for it. The filter costs one call per event where an unfiltered handler
  cost a full handler invocation.
- kopf builds a diff base for every event of every watched kind, though only the PartyQuiz has
  handlers that compare one; ``SpecDiffBase`` builds none for a child, where kopf copied the
  child's whole spec twice (its essence, then its progress storage's deep copy of it).

Not done: watching fewer kinds (a pass would read by name what the indexes now hold, a request
per child and pass), and kopf's field filters on the index (an index must see every change to
stay true; the trigger filters on what it keeps).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, cast

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
# kopf's own bookkeeping annotations. Not "partyquiz.dev/": kopf leaves every annotation under
# its prefix out of the changes it reacts to, and partyquiz.dev/retry must be one of them.
KOPF_PREFIX = "kopf.partyquiz.dev"
# What kopf kept under partyquiz.dev/ before; removed on the first pass that sees it.
FORMER_KOPF_ANNOTATIONS = (
    "partyquiz.dev/kopf-managed",
    "partyquiz.dev/last-handled-configuration",
    "partyquiz.dev/reconcile",
    "partyquiz.dev/cleanup",
)

# The children a pass reads, as (group, version, plural, kind, every object). Of pods and claims
# (never created by a name another object could hold first, or created once) only the
# operator's are watched. Secrets are not watched: that would need the right to read them all.
WATCHED_CHILDREN: tuple[tuple[str, str, str, str, bool], ...] = (
    ("", "v1", "serviceaccounts", "ServiceAccount", True),
    ("", "v1", "services", "Service", True),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", False),
    ("", "v1", "pods", "Pod", False),
    ("apps", "v1", "deployments", "Deployment", True),
    ("apps", "v1", "statefulsets", "StatefulSet", True),
    ("batch", "v1", "jobs", "Job", True),
    ("batch", "v1", "cronjobs", "CronJob", True),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", True),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True),
)
EVERY_OBJECT_KINDS = frozenset(kind for *_, kind, every in WATCHED_CHILDREN if every)
CHILD_KINDS = frozenset(kind for *_, kind, _ in WATCHED_CHILDREN)
RESYNC_BEAT_FACTOR = 3  # liveness fails after this many silent resync intervals (plus 30 s)


class SpecDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation diff base, built without deep-copying what it throws away.

    kopf compares every PartyQuiz event with the last handled configuration: the spec, the
    labels and the annotations (less its own and kubectl's). Its ``build`` deep-copies the whole
    body first and then drops the status and the rest of the metadata; every status patch of a
    pass is such an event, so on a busy operator that copying was a large share of the event
    loop. This builds the same essence (and so kopf reacts to the same changes) from those
    parts alone, copying the spec through JSON (it came as JSON). Of a child it builds none:
    no handler of a child compares one.
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        """Return kopf's essence of ``body``: its spec, labels and annotations (a child: none)."""
        if body.get("kind") in CHILD_KINDS:
            return cast(kopf.BodyEssence, {})
        if extra_fields or self.ignored_fields:
            return super().build(body=body, extra_fields=extra_fields)
        skipped = ("apiVersion", "kind", "metadata", "status")
        essence: dict[str, Any] = json.loads(
            json.dumps({k: v for k, v in body.items() if k not in skipped})
        )
        meta = body.get("metadata", {})
        annotations = dict(meta.get("annotations") or {})
        foreign = tuple(f"{p}/" for p in self._detect_marked_prefixes(annotations))
        own = set(self.make_keys(self.key, body=body))
        own.add("kubectl.kubernetes.io/last-applied-configuration")
        kept = {k: v for k, v in annotations.items() if k not in own and not k.startswith(foreign)}
        labels = dict(meta.get("labels") or {})
        metadata = {k: v for k, v in (("labels", labels), ("annotations", kept)) if v}
        if metadata:
            essence["metadata"] = metadata
        return cast(kopf.BodyEssence, essence)


def configure(settings: kopf.OperatorSettings, operator: OperatorSettings) -> None:
    """Apply the operator's choices to kopf's settings."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = SpecDiffBase(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    # The passes record their own Events (transitions only); kopf's would be one per handler.
    settings.posting.enabled = False
    settings.watching.server_timeout = operator.watch_server_timeout_seconds
    settings.watching.client_timeout = operator.watch_client_timeout_seconds
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = operator.request_timeout_seconds * 2
    # Resource discovery by watching CRDs needs cluster-wide rights the chart does not grant.
    settings.scanning.disabled = True
    for group, _, plural, _, every in WATCHED_CHILDREN:
        if not every:
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


TAKEN = "taken"  # index key (TAKEN, namespace, name): some object of the kind holds the name


class Taken:
    """The names some object of a fully watched kind holds in one namespace (for ``in``)."""

    def __init__(self, indexes: Mapping[str, Any], namespace: str) -> None:
        self._indexes = indexes
        self._namespace = namespace

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        kind, name = key
        return (TAKEN, self._namespace, name) in self._indexes[kind]


def _deletion(type: str | None, **_: Any) -> bool:
    """Tell a deletion's watch event (kopf's ``when`` filter of the deletion handlers)."""
    return type == "DELETED"


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
) -> Shell:
    """Register every handler of the operator on ``registry``; return what they share."""
    pq = (api.GROUP, api.VERSION, api.PLURAL)
    shell = Shell()
    indexes: dict[str, Any] = {}

    def children(namespace: str, name: str) -> dict[Key, Mapping[str, Any]]:
        found: dict[Key, Mapping[str, Any]] = {}
        for *_, kind, _ in WATCHED_CHILDREN:
            for body in indexes[kind].get((namespace, name), []):
                found[(kind, body["metadata"]["name"])] = body
        return found

    def taken(namespace: str) -> Taken:
        return Taken(indexes, namespace)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf_connection(credentials)

    @kopf.index(*pq, registry=registry, id="partyquizzes")
    async def instances(body: kopf.Body, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
        return {_key(body): dict(body)}

    def instance(namespace: str, name: str) -> Mapping[str, Any] | None:
        return next(iter(indexes["PartyQuiz"].get((namespace, name), [])), None)

    def watch_child(group: str, version: str, plural: str, kind: str, every: bool) -> None:
        @kopf.index(group, version, plural, registry=registry, id=f"children-{plural}")
        async def child(body: kopf.Body, labels: Mapping[str, str], **_: Any) -> Any:
            namespace, name = _key(body)
            keys: dict[Any, Any] = {(TAKEN, namespace, name): True} if every else {}
            if labels.get(MANAGED_BY_LABEL) == FIELD_MANAGER and labels.get(INSTANCE_LABEL):
                keys[(namespace, labels[INSTANCE_LABEL])] = _kept(kind, body)
            if shell.trigger is not None:
                shell.trigger.child_changed(kind, None, body)
            return keys

        @kopf.on.event(
            group, version, plural, registry=registry, id=f"child-{plural}", when=_deletion
        )
        async def gone(body: kopf.Body, **_: Any) -> None:
            if shell.trigger is not None:
                shell.trigger.child_changed(kind, "DELETED", body)

    for watched in WATCHED_CHILDREN:
        watch_child(*watched)

    @kopf.on.startup(registry=registry)
    async def start(**kwargs: Any) -> None:
        for *_, plural, kind, _ in WATCHED_CHILDREN:
            indexes[kind] = kwargs[f"children-{plural}"]
        indexes["PartyQuiz"] = kwargs["partyquizzes"]
        session = k8s.Api(credentials, metrics, timeout=operator.request_timeout_seconds)
        await session.open()
        shell.closers.append(session.close)
        shell.passes = Passes(
            session, metrics, instance, children, taken, watched=EVERY_OBJECT_KINDS
        )
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
        if shell.passes is not None:
            await shell.passes.drain()
        for close in reversed(shell.closers):
            await close()

    @kopf.on.resume(*pq, registry=registry, id="reconcile")
    @kopf.on.create(*pq, registry=registry, id="reconcile")
    @kopf.on.update(*pq, registry=registry, id="reconcile")
    async def reconcile(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        assert shell.passes is not None
        for former in FORMER_KOPF_ANNOTATIONS:
            if former in body.metadata.annotations:
                patch.metadata.annotations[former] = None
        _raise(await shell.passes.run(_key(body), "changed"))

    @kopf.on.event(*pq, registry=registry, id="instance-gone", when=_deletion)
    async def instance_gone(body: kopf.Body, **_: Any) -> None:
        if shell.passes is not None and shell.trigger is not None:
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

    return shell


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
