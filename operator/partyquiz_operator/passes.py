"""Running a pass: read what the planner needs, let it decide, carry its plan out, report.

Owns the I/O around ``plan.lifecycle.decide``: the fresh PartyQuiz, the children from kopf's
indexes, the reads the planner asks for (all at once), then the plan in its order (a rollback's
status first; deletions, patches, each wave of applies at once; the status; the Events; a
create that finds its name held ends the plan after its wave, and the pass decides again on
what it reads there), the metrics, and the one place where API failures become a pass's
``Outcome``. Passes of one instance never overlap. It decides nothing itself.

Everything runs on kopf's event loop (asyncio): passes wait on the API server almost all the
time, so many instances move at once without threads, and a pass's independent requests go out
together. ``Precedence`` orders them across passes: the waves after a plan's last pod-starting
wave and the Events wait while any pass's pod-starting wave is answered, so instances created
together start their pods before the API server takes their other writes.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Container, Mapping
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from partyquiz_operator import api, k8s
from partyquiz_operator.metrics import OperatorMetrics
from partyquiz_operator.plan import lifecycle
from partyquiz_operator.plan.status import Transition
from partyquiz_operator.render.monitoring import MONITORING_API_VERSION

logger = logging.getLogger(__name__)

InstanceKey = tuple[str, str]  # (namespace, name)
Children = Callable[[str, str], Mapping[lifecycle.Key, Mapping[str, Any]]]
Instances = Callable[[str, str], Mapping[str, Any] | None]
Names = Callable[[str], Container[lifecycle.Key]]

# How long to wait before another pass when the API server failed a request.
UNAVAILABLE_RETRY_SECONDS = 5.0
GOING_RETRY_SECONDS = 30.0  # a namespace being deleted: no pass writes there meanwhile
FAILED_RETRY_SECONDS = 60.0
MAX_READ_ROUNDS = 4
# Writes that start no pod wait at most this long for the pod-starting waves, and go out at most
# this many at once (of k8s.CONNECTIONS): a pod-starting wave never queues behind them.
BEHIND_WAIT_SECONDS = 10.0
BEHIND_AT_ONCE = 32
UTC_NOW = partial(datetime.now, UTC)  # the production clock


def _version(body: Mapping[str, Any]) -> str | None:
    value = (body.get("metadata") or {}).get("resourceVersion")
    return None if value is None else str(value)


def _newer(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Return whether ``a`` is a later version of the object than ``b``.

    resourceVersions are etcd revisions here; when one is not a number, the watch (``b``)
    wins, as it is the API server's own order.
    """
    try:
        return int(a["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return False


class Precedence:
    """Pod-starting waves before writes that start no pod, across every pass of the loop.

    A ``behind`` request goes out once no ``urgent`` wave is in flight, or after ``wait``
    seconds (urgent waves delay it, never starve it), at most ``at_once`` of them together.
    """

    def __init__(self, wait: float = BEHIND_WAIT_SECONDS, at_once: int = BEHIND_AT_ONCE) -> None:
        self._wait, self._urgent, self._slots = wait, 0, asyncio.Semaphore(at_once)
        self._clear = asyncio.Event()
        self._clear.set()

    @asynccontextmanager
    async def urgent(self) -> AsyncIterator[None]:
        """Hold a pod-starting wave while its requests are answered."""
        self._urgent += 1
        self._clear.clear()
        try:
            yield
        finally:
            self._urgent -= 1
            if not self._urgent:
                self._clear.set()

    @asynccontextmanager
    async def behind(self) -> AsyncIterator[None]:
        """Hold a request that starts no pod until no urgent wave is in flight."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._clear.wait(), self._wait)
        async with self._slots:
            yield


@dataclass(frozen=True)
class Outcome:
    """How a pass ended: the phase it reported, and whether (when) to look again."""

    phase: str
    retry_after: float | None = None  # look again after this many seconds
    permanent: bool = False  # only a change of the spec or the cluster helps
    message: str = ""

    @property
    def result(self) -> str:
        """Return the metric label of this outcome."""
        if self.permanent:
            return "permanent_error"
        return "temporary_error" if self.retry_after is not None else "ok"


class Passes:
    """Runs the passes of every instance, one at a time per instance."""

    def __init__(
        self,
        api: k8s.Api,
        metrics: OperatorMetrics,
        instances: Instances,
        children: Children,
        taken: Names,
        *,
        watched: frozenset[str] = frozenset(),
        clock: Callable[[], datetime] = UTC_NOW,
        token_factory: Callable[[int], str] = secrets.token_urlsafe,
    ) -> None:
        self._api = api
        self._metrics = metrics
        self._instances = instances
        self._children = children
        self._taken = taken
        self._watched = watched
        self._clock = clock
        self._new_token = token_factory
        self._precedence = Precedence()
        self._locks: dict[InstanceKey, asyncio.Lock] = {}
        # When each instance's last pass ended (monotonic), for the resync.
        self.last_pass: dict[InstanceKey, float] = {}
        # Whether any pass began: kopf starts the first once every index is filled.
        self._begun = False
        # This process's own writes, read back until the watches deliver them: the PartyQuiz
        # as its last status patch returned it, and per instance each child as an apply
        # returned it (None: deleted). A watch event of exactly that version carries nothing new.
        self._written: dict[InstanceKey, dict[str, Any]] = {}
        self._own: dict[InstanceKey, dict[lifecycle.Key, Mapping[str, Any] | None]] = {}
        # Secrets are not watched: a pass a child's change asked for takes them as this process
        # last read or wrote them; every other pass reads them afresh.
        self._secrets: dict[InstanceKey, dict[lifecycle.Key, Mapping[str, Any] | None]] = {}
        self._posting: set[asyncio.Task[None]] = set()
        self._going: dict[str, float] = {}  # namespaces being deleted: when to write there again

    @asynccontextmanager
    async def exclusive(self, key: InstanceKey) -> AsyncIterator[None]:
        """Hold the instance: no other pass of it runs meanwhile."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield

    def watched(self, key: InstanceKey, kind: str, body: Mapping[str, Any], *, gone: bool) -> bool:
        """Note a child's watch event; return whether it brings a pass nothing new.

        Nothing is new before the first pass began (kopf starts it once every index is filled,
        and each instance's first pass reads them as they are), nor in an event that only
        brings back this process's write, nor while the namespace is being deleted (children go).
        Once the watch has delivered an own write (or something newer, or the deletion), the
        index is at least as new and the own copy is dropped.
        """
        if not self._begun or self._going.get(key[0], 0.0) > time.monotonic():
            return True
        own = self._own.get(key, {})
        child = (kind, str(body.get("metadata", {}).get("name", "")))
        if child not in own:
            return False
        mine = own[child]
        echo = mine is not None and _version(mine) == _version(body) and not gone
        if gone or mine is None or echo or _newer(body, mine):
            del own[child]
        return echo

    def forget(self, key: InstanceKey) -> None:
        """Drop what is kept about a deleted instance."""
        self.last_pass.pop(key, None)
        self._written.pop(key, None)
        self._own.pop(key, None)
        self._secrets.pop(key, None)
        lock = self._locks.get(key)
        if lock is not None and not lock.locked():
            del self._locks[key]
        self._metrics.forget_instance(*key)

    async def run(self, key: InstanceKey, handler: str) -> Outcome:
        """Run one pass of the instance (waiting for a running one to end first)."""
        async with self.exclusive(key):
            return await self.run_held(key, handler)

    async def run_held(self, key: InstanceKey, handler: str) -> Outcome:
        """Run one pass of an instance already held with ``exclusive``.

        ``handler`` names what asked for it ("child": a child changed; it may take the Secrets
        as last read).
        """
        started = time.perf_counter()
        self._begun = True
        try:
            outcome = await self._pass(*key, fresh=handler != "child")
        finally:
            self.last_pass[key] = time.monotonic()
            self._metrics.reconcile_duration.labels(handler).observe(time.perf_counter() - started)
        self._metrics.reconcile_total.labels(handler, outcome.result).inc()
        if outcome.retry_after is not None or outcome.permanent:
            logger.warning("%s pass of %s/%s: %s", handler, *key, outcome.message)
        return outcome

    def _instance(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """Return the PartyQuiz: as the watch delivered it, or as this process last wrote it."""
        watched = self._instances(namespace, name)
        written = self._written.get((namespace, name))
        if watched is None or written is None:
            return watched
        return written if _newer(written, watched) else watched

    async def _pass(self, namespace: str, name: str, *, fresh: bool) -> Outcome:
        body: Mapping[str, Any] | None = None
        try:
            body = self._instance(namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                return Outcome(phase="Deleted")
            if (left := self._going.get(namespace, 0.0) - time.monotonic()) > 0:
                return Outcome("Deleting", left, message=f"namespace {namespace} is being deleted")
            self._metrics.record_generation_seen(
                namespace, name, int(body["metadata"].get("generation", 1))
            )
            plan = await self._decide(body, fresh=fresh)
            held = await self._carry_out(body, plan)
            if held:
                # A child it meant to create exists already: read it and decide again on it.
                await self._read_held(namespace, name, held)
                plan = await self._decide(body, fresh=False)
                await self._carry_out(body, plan)
        except k8s.NamespaceTerminating as exc:
            self._going[namespace] = time.monotonic() + GOING_RETRY_SECONDS
            return Outcome("Deleting", GOING_RETRY_SECONDS, message=str(exc))
        except k8s.Rejected as exc:
            if body is None:
                return Outcome("Unknown", permanent=True, message=str(exc))
            return await self._rejected(body, exc)
        except k8s.ApiError as exc:
            return Outcome("Unknown", UNAVAILABLE_RETRY_SECONDS, message=str(exc))
        except Exception as exc:  # a defect: no input may take passes down; say so, look again
            logger.exception("pass of %s/%s failed", namespace, name)
            return await self._failed(body, exc)
        return Outcome(
            plan.status.phase, plan.retry_after, permanent=plan.permanent, message=plan.message
        )

    def _indexed(self, key: InstanceKey) -> dict[lifecycle.Key, Mapping[str, Any]]:
        """Return the instance's children from the watches, with its own newer writes over them."""
        indexed = dict(self._children(*key))
        for child, mine in self._own.get(key, {}).items():
            if mine is None:
                indexed.pop(child, None)
            elif child not in indexed or _newer(mine, indexed[child]):
                indexed[child] = mine
        return indexed

    async def _decide(self, body: Mapping[str, Any], *, fresh: bool) -> lifecycle.Plan:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        remembered = {} if fresh else self._secrets.get(key, {})
        indexed = self._indexed(key)
        seen = lifecycle.Seen(
            indexed=indexed,
            fetched=dict(remembered),
            watched=self._watched,
            taken=self._taken(key[0]),
        )
        for _ in range(MAX_READ_ROUNDS):
            decided = lifecycle.decide(body, seen, now=self._clock(), new_token=self._new_token)
            if isinstance(decided, lifecycle.Plan):
                self._secrets[key] = {k: v for k, v in seen.fetched.items() if k[0] == "Secret"}
                return decided
            seen = await self._read(meta["namespace"], decided, seen)
        raise RuntimeError(f"{meta['name']}: the planner kept asking for more reads")

    async def _read(
        self, namespace: str, reads: lifecycle.Reads, seen: lifecycle.Seen
    ) -> lifecycle.Seen:
        fetched = {**seen.fetched, **await self._get_all(namespace, sorted(reads.names))}
        served = seen.served
        if reads.discovery:
            served = frozenset(await self._api.served_kinds(MONITORING_API_VERSION))
        return replace(seen, fetched=fetched, served=served)

    async def _read_held(self, namespace: str, name: str, held: list[lifecycle.Key]) -> None:
        """Read the children whose names a create found held, for the next decision."""
        self._secrets.setdefault((namespace, name), {}).update(await self._get_all(namespace, held))

    async def _get_all(
        self, namespace: str, keys: list[lifecycle.Key]
    ) -> dict[lifecycle.Key, Mapping[str, Any] | None]:
        """Read ``keys`` of ``namespace`` at once (None: absent)."""
        found = await asyncio.gather(*(self._api.get(kind, namespace, n) for kind, n in keys))
        return dict(zip(keys, found, strict=True))

    async def _carry_out(
        self, body: Mapping[str, Any], plan: lifecycle.Plan
    ) -> list[lifecycle.Key]:
        """Carry the plan out; return the children it was to create whose names were held.

        When there are any, the plan stops after their wave (nothing later, no status).
        """
        namespace = body["metadata"]["namespace"]
        if plan.record_first:
            await self._report(body, plan)
        await asyncio.gather(*(self._api.delete(kind, namespace, n) for kind, n in plan.deletes))
        own = self._own.setdefault((namespace, body["metadata"]["name"]), {})
        for deleted in plan.deletes:
            own[deleted] = None
        for (kind, child), patch in plan.patches:
            await self._api.merge_patch(kind, namespace, child, patch)
        for index, wave in enumerate(plan.waves):
            for manifest in wave:
                logger.info(
                    "applying %s %s/%s", manifest["kind"], namespace, manifest["metadata"]["name"]
                )
            urgent = index < plan.later
            async with self._precedence.urgent() if urgent else nullcontext():
                applied = await asyncio.gather(*(self._write(m, plan, not urgent) for m in wave))
            held = []
            for manifest, live in zip(wave, applied, strict=True):
                if live is None:
                    held.append((manifest["kind"], manifest["metadata"]["name"]))
                else:
                    self._wrote(body, manifest, live)
            if held:
                return held
        if not plan.record_first:
            await self._report(body, plan)
        for tally in plan.tallies:
            if tally[0] == "migrations":
                self._metrics.migrations_total.labels(tally[1]).inc()
            else:
                self._metrics.rollouts_total.labels(tally[1], tally[2]).inc()
        return []

    async def _write(
        self, manifest: Mapping[str, Any], plan: lifecycle.Plan, behind: bool
    ) -> dict[str, Any] | None:
        """Apply a child, or create it when the plan says so (None: its name is held)."""
        if behind:
            async with self._precedence.behind():
                return await self._write(manifest, plan, False)
        if (manifest["kind"], manifest["metadata"]["name"]) in plan.creates:
            return await self._api.create(manifest)
        return await self._api.apply(manifest)

    async def _report(self, body: Mapping[str, Any], plan: lifecycle.Plan) -> None:
        """Write the status when it changed, then its Events (best effort: the status says it)."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        new = plan.status
        self._metrics.record_instance(namespace, name, new.phase, new.observed_generation)
        if not plan.status_changed:
            return
        written = {"status": new.model_dump(by_alias=True, mode="json")}
        patched = await self._api.merge_patch(api.KIND, namespace, name, written, sub="status")
        if patched is not None:
            self._written[(namespace, name)] = patched
        # Events are best effort (the status already says it): posted without holding the pass.
        task = asyncio.create_task(self._post_events(body, plan.events, self._clock()))
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _post_events(
        self, body: Mapping[str, Any], events: tuple[Transition, ...], now: datetime
    ) -> None:
        for event in events:
            try:
                async with self._precedence.behind():
                    await self._api.create_event(
                        body, type_=event.type, reason=event.reason, message=event.message, now=now
                    )
            except k8s.NamespaceTerminating:  # so are the rest, and the next passes' writes there
                self._going[body["metadata"]["namespace"]] = time.monotonic() + GOING_RETRY_SECONDS
                return
            except k8s.ApiError as exc:
                logger.warning("cannot record event %s: %s", event.reason, exc)

    async def drain(self) -> None:
        """Wait for the Events still being posted (at shutdown)."""
        await asyncio.gather(*self._posting, return_exceptions=True)

    def _wrote(
        self, body: Mapping[str, Any], manifest: Mapping[str, Any], live: Mapping[str, Any]
    ) -> None:
        """Remember what an apply returned: its version (an echo), a Secret's content."""
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if kind == "Secret":
            self._secrets.setdefault(key, {})[(kind, name)] = dict(live)
        else:
            self._own.setdefault(key, {})[(kind, name)] = {**live, "kind": kind}

    async def clean_up(
        self, body: Mapping[str, Any], children: Mapping[lifecycle.Key, Mapping[str, Any]]
    ) -> list[str]:
        """Delete what deleting the PartyQuiz removes; return what went."""
        namespace = body["metadata"]["namespace"]
        doomed = lifecycle.clean_up(body, children)
        gone = await asyncio.gather(*(self._api.delete(kind, namespace, n) for kind, n in doomed))
        return [f"{kind}/{n}" for (kind, n), went in zip(doomed, gone, strict=True) if went]

    async def _rejected(self, body: Mapping[str, Any], exc: k8s.Rejected) -> Outcome:
        """Report a request the API server refused as written: nothing to retry until it changes."""
        plan = await self._block(body, "ApplyRejected", str(exc), retry_after=None)
        return Outcome(plan.status.phase, permanent=True, message=str(exc))

    async def _failed(self, body: Mapping[str, Any] | None, exc: Exception) -> Outcome:
        """Report a pass that failed on a defect of the operator, and look again later."""
        message = f"the operator failed on this instance ({type(exc).__name__}); see its log"
        if body is None:
            return Outcome("Unknown", FAILED_RETRY_SECONDS, message=message)
        plan = await self._block(body, "OperatorError", message, retry_after=FAILED_RETRY_SECONDS)
        return Outcome(plan.status.phase, FAILED_RETRY_SECONDS, message=message)

    async def _block(
        self, body: Mapping[str, Any], reason: str, message: str, *, retry_after: float | None
    ) -> lifecycle.Plan:
        previous = api.parse_status(body.get("status"))
        generation = int(body["metadata"].get("generation", 1))
        plan = lifecycle.blocked(
            previous, generation, reason, message, now=self._clock(), retry_after=retry_after
        )
        try:
            await self._report(body, plan)
        except k8s.ApiError as again:
            logger.warning("cannot report %s: %s", reason, again)
        return plan
