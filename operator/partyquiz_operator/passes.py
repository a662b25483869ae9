"""Running a pass: read what the planner needs, let it decide, carry its plan out, report.

Owns the I/O around ``plan.lifecycle.decide``: the fresh PartyQuiz, the children from kopf's
indexes, the reads the planner asks for (all at once), then the plan in its order (a rollback's
status first; deletions, patches, each wave of applies at once; the status; the Events), the
metrics, and the one place where API failures become a pass's ``Outcome``. Passes of one
instance never overlap. It decides nothing itself.

Everything runs on kopf's event loop (asyncio): passes wait on the API server almost all the
time, so many instances move at once without threads, and a pass's independent requests go out
together.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from partyquiz_operator import api, k8s
from partyquiz_operator.metrics import OperatorMetrics
from partyquiz_operator.plan import lifecycle
from partyquiz_operator.render.monitoring import MONITORING_API_VERSION

logger = logging.getLogger(__name__)

InstanceKey = tuple[str, str]  # (namespace, name)
Children = Callable[[str, str], Mapping[lifecycle.Key, Mapping[str, Any]]]

# How long to wait before another pass when the API server failed a request.
UNAVAILABLE_RETRY_SECONDS = 5.0
NAMESPACE_GOING_RETRY_SECONDS = 30.0
FAILED_RETRY_SECONDS = 60.0
MAX_READ_ROUNDS = 4


def utc_now() -> datetime:
    """Return the current UTC time (the production clock)."""
    return datetime.now(UTC)


def new_token(entropy_bytes: int) -> str:
    """Return a URL-safe random token (the production randomness)."""
    return secrets.token_urlsafe(entropy_bytes)


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
        children: Children,
        *,
        clock: Callable[[], datetime] = utc_now,
        token_factory: Callable[[int], str] = new_token,
    ) -> None:
        self._api = api
        self._metrics = metrics
        self._children = children
        self._clock = clock
        self._new_token = token_factory
        self._locks: dict[InstanceKey, asyncio.Lock] = {}
        # When each instance's last pass ended (monotonic), for the resync.
        self.last_pass: dict[InstanceKey, float] = {}

    @asynccontextmanager
    async def exclusive(self, key: InstanceKey) -> AsyncIterator[None]:
        """Hold the instance: no other pass of it runs meanwhile."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield

    def forget(self, key: InstanceKey) -> None:
        """Drop what is kept about a deleted instance."""
        self.last_pass.pop(key, None)
        lock = self._locks.get(key)
        if lock is not None and not lock.locked():
            del self._locks[key]
        self._metrics.forget_instance(*key)

    async def run(self, key: InstanceKey, handler: str) -> Outcome:
        """Run one pass of the instance (waiting for a running one to end first)."""
        async with self.exclusive(key):
            return await self.run_held(key, handler)

    async def run_held(self, key: InstanceKey, handler: str) -> Outcome:
        """Run one pass of an instance already held with ``exclusive``."""
        started = time.perf_counter()
        try:
            outcome = await self._pass(*key)
        finally:
            self.last_pass[key] = time.monotonic()
            self._metrics.reconcile_duration.labels(handler).observe(time.perf_counter() - started)
        self._metrics.reconcile_total.labels(handler, outcome.result).inc()
        if outcome.retry_after is not None or outcome.permanent:
            logger.warning("%s pass of %s/%s: %s", handler, *key, outcome.message)
        return outcome

    async def _pass(self, namespace: str, name: str) -> Outcome:
        body: dict[str, Any] | None = None
        try:
            body = await self._api.get("PartyQuiz", namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                return Outcome(phase="Deleted")
            self._metrics.record_generation_seen(
                namespace, name, int(body["metadata"].get("generation", 1))
            )
            plan = await self._decide(body)
            await self._carry_out(body, plan)
        except k8s.NamespaceTerminating as exc:
            return Outcome("Deleting", NAMESPACE_GOING_RETRY_SECONDS, message=str(exc))
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

    async def _decide(self, body: Mapping[str, Any]) -> lifecycle.Plan:
        meta = body["metadata"]
        seen = lifecycle.Seen(indexed=self._children(meta["namespace"], meta["name"]))
        for _ in range(MAX_READ_ROUNDS):
            decided = lifecycle.decide(body, seen, now=self._clock(), new_token=self._new_token)
            if isinstance(decided, lifecycle.Plan):
                return decided
            seen = await self._read(meta["namespace"], decided, seen)
        raise RuntimeError(f"{meta['name']}: the planner kept asking for more reads")

    async def _read(
        self, namespace: str, reads: lifecycle.Reads, seen: lifecycle.Seen
    ) -> lifecycle.Seen:
        keys = sorted(reads.names)
        found = await asyncio.gather(*(self._api.get(kind, namespace, n) for kind, n in keys))
        served = seen.served
        if reads.discovery:
            served = frozenset(await self._api.served_kinds(MONITORING_API_VERSION))
        fetched = {**seen.fetched, **dict(zip(keys, found, strict=True))}
        return lifecycle.Seen(indexed=seen.indexed, fetched=fetched, served=served)

    async def _carry_out(self, body: Mapping[str, Any], plan: lifecycle.Plan) -> None:
        namespace = body["metadata"]["namespace"]
        if plan.record_first:
            await self._report(body, plan)
        await asyncio.gather(*(self._api.delete(kind, namespace, n) for kind, n in plan.deletes))
        for (kind, child), patch in plan.patches:
            await self._api.merge_patch(kind, namespace, child, patch)
        for wave in plan.waves:
            for manifest in wave:
                logger.info(
                    "applying %s %s/%s", manifest["kind"], namespace, manifest["metadata"]["name"]
                )
            await asyncio.gather(*(self._api.apply(manifest) for manifest in wave))
        if not plan.record_first:
            await self._report(body, plan)
        for tally in plan.tallies:
            if tally[0] == "migrations":
                self._metrics.migrations_total.labels(tally[1]).inc()
            else:
                self._metrics.rollouts_total.labels(tally[1], tally[2]).inc()

    async def _report(self, body: Mapping[str, Any], plan: lifecycle.Plan) -> None:
        """Write the status when it changed, then its Events (best effort: the status says it)."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        new = plan.status
        self._metrics.record_instance(namespace, name, new.phase, new.observed_generation)
        if not plan.status_changed:
            return
        await self._api.patch_status(namespace, name, new.model_dump(by_alias=True, mode="json"))
        now = self._clock()
        posted = await asyncio.gather(
            *(
                self._api.create_event(
                    body, type_=event.type, reason=event.reason, message=event.message, now=now
                )
                for event in plan.events
            ),
            return_exceptions=True,
        )
        for event, result in zip(plan.events, posted, strict=True):
            if isinstance(result, k8s.ApiError):
                logger.warning("cannot record event %s: %s", event.reason, result)
            elif isinstance(result, BaseException):
                raise result

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
