"""Passes that kopf does not start: a child changed, an error's delay ran out, the resync.

kopf runs a handler when the PartyQuiz itself changes; it has nothing that runs the owner's
pass when one of its children changes (controller-runtime's enqueue-owner). ``OwnerTrigger`` is
that piece, kept small: one asyncio task per instance with work to do, which runs a pass, runs
exactly one more if anything asked meanwhile, and looks again after the delay a failed pass
asks for. ``resync`` is the one loop that gives every instance a pass when it had none for
``resync_seconds`` (drift of children nobody watches, rotated Secrets, monitoring CRDs that
appeared). Both run on kopf's event loop; neither decides anything about an instance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from partyquiz_operator import api
from partyquiz_operator.passes import InstanceKey, Outcome, Passes
from partyquiz_operator.plan import rollout
from partyquiz_operator.render.common import FIELD_MANAGER, INSTANCE_LABEL, MANAGED_BY_LABEL

logger = logging.getLogger(__name__)

# Kinds whose status no pass reads: a change of only their status triggers nothing (a PDB's
# counts move with every pod).
STATUS_UNREAD = frozenset(
    {
        "Service",
        "ServiceAccount",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
        "HorizontalPodAutoscaler",
        "CronJob",
    }
)
# Kinds whose status a pass reads only in part: the replica counts and the conditions (a Job's
# verdict and message, a rollout's reason). Their controllers rewrite the rest of the status
# (revisions, timestamps, collision counts, active/ready pod tallies) far more often.
STATUS_READ_IN_PART = frozenset({"StatefulSet", "Deployment", "Job"})
WORKLOAD_STATUS_READ = (
    "observedGeneration",
    "replicas",
    "readyReplicas",
    "updatedReplicas",
    "availableReplicas",
)
CONDITION_FIELDS_READ = ("type", "status", "reason", "message")
FILTERED_KINDS = STATUS_UNREAD | STATUS_READ_IN_PART | {"Pod", "PersistentVolumeClaim"}


def _essence(kind: str, body: Mapping[str, Any]) -> Any:
    """Return what a pass reads of a child whose every change does not matter.

    Of most kinds everything but the status; of a StatefulSet, Deployment or Job that and the
    replica counts and conditions of its status; of a pod only what the rollout verdict and the
    stall diagnosis read (a container waiting for a reason other than starting, a failure to be
    scheduled): its readiness reaches the passes through its Deployment's or StatefulSet's
    status, so a pod that starts as it should runs no pass at all; of a claim its size, marks and
    phase. A change that leaves it equal cannot change a plan, so it runs no pass. It holds the
    body's own parts (no copy: the index holds the same), so comparing is cheap where hashing a
    serialised spec was not.
    """
    meta = body.get("metadata", {})
    if kind == "PersistentVolumeClaim":
        spec = body.get("spec") or {}
        kept: Any = [
            meta.get("annotations"),
            meta.get("deletionTimestamp"),
            (spec.get("resources") or {}).get("requests"),
            (body.get("status") or {}).get("phase"),
        ]
    elif kind == "Pod":
        st = body.get("status") or {}
        statuses = [*(st.get("initContainerStatuses") or []), *(st.get("containerStatuses") or [])]
        waiting = [((c.get("state") or {}).get("waiting") or {}).get("reason") for c in statuses]
        unscheduled = [
            c.get("message") or c.get("reason")
            for c in st.get("conditions") or []
            if c.get("type") == "PodScheduled" and c.get("status") == "False"
        ]
        problems = [
            reason for reason in waiting if reason and reason not in rollout.STARTING_REASONS
        ]
        kept = [meta.get("deletionTimestamp"), problems, unscheduled]
    else:
        kept = {k: v for k, v in body.items() if k not in ("metadata", "status")}
        kept["metadata"] = [
            meta.get(k)
            for k in ("labels", "annotations", "ownerReferences", "deletionTimestamp", "generation")
        ]
        if kind in STATUS_READ_IN_PART:
            st = body.get("status") or {}
            kept["status"] = [st.get(k) for k in WORKLOAD_STATUS_READ] + [
                [c.get(f) for f in CONDITION_FIELDS_READ] for c in st.get("conditions") or []
            ]
    return kept


QUIET_POD = _essence("Pod", {})  # a new pod that shows nothing a pass reads


def _controlling_partyquiz(meta: Mapping[str, Any]) -> str | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == api.KIND and str(ref.get("apiVersion", "")).startswith(api.GROUP):
            return str(ref.get("name"))
    return None


class PassRunner(Protocol):
    """What the trigger needs of ``Passes``: hold an instance, run its pass, spot echoes."""

    def exclusive(self, key: InstanceKey) -> AbstractAsyncContextManager[None]:
        """Hold the instance: no other pass of it runs meanwhile."""

    async def run_held(self, key: InstanceKey, handler: str) -> Outcome:
        """Run one pass of an instance already held."""

    def watched(self, key: InstanceKey, kind: str, body: Mapping[str, Any], *, gone: bool) -> bool:
        """Note a child's watch event; return whether it only brings back an own write."""


class OwnerTrigger:
    """Run an instance's pass when something asks; at most one running and one more queued.

    Events that arrive while a pass of their instance runs are coalesced into the one pass that
    follows it (it reads everything afresh), so a burst of child changes costs two passes, not
    one per event; changes a pass cannot see (see ``_essence``) cost none.
    """

    def __init__(self, passes: PassRunner) -> None:
        self._passes = passes
        self._running: dict[InstanceKey, asyncio.Task[None]] = {}
        self._again: dict[InstanceKey, str] = {}
        self._later: dict[InstanceKey, asyncio.TimerHandle] = {}
        self._essences: dict[tuple[str, str, str], str] = {}

    def child_changed(self, kind: str, event: str | None, body: Mapping[str, Any]) -> None:
        """Note a watch event of a child; run its instance's pass unless nothing it reads moved.

        Objects labelled as the operator's belong to the instance their label names; any
        other object only when a PartyQuiz controls it (someone took its labels off).
        """
        meta = body.get("metadata", {})
        labels = meta.get("labels") or {}
        namespace = meta.get("namespace")
        ours = labels.get(MANAGED_BY_LABEL) == FIELD_MANAGER
        instance = labels.get(INSTANCE_LABEL) if ours else _controlling_partyquiz(meta)
        ident = (kind, str(namespace), str(meta.get("name", "")))
        gone = event == "DELETED"
        before = self._essences.pop(ident, QUIET_POD if kind == "Pod" else None)
        essence = _essence(kind, body) if ours and not gone and kind in FILTERED_KINDS else None
        if essence is not None:
            self._essences[ident] = essence  # also of an echo: the pass that wrote it saw it
        if not namespace or not instance:
            return
        key = (namespace, instance)
        if self._passes.watched(key, kind, body, gone=gone):
            return  # nothing a pass has not seen (or will not read when it starts)
        if essence is None or essence != before:
            self.poke(key, "child")

    def poke(self, key: InstanceKey, handler: str) -> None:
        """Have the instance's pass run now, or once more after the one running."""
        if key in self._running:
            self._again.setdefault(key, handler)
            return
        self._running[key] = asyncio.create_task(self._drive(key, handler))

    def forget(self, key: InstanceKey) -> None:
        """Drop a deleted instance: no retry is pending for it any more."""
        self._cancel_retry(key)

    def _cancel_retry(self, key: InstanceKey) -> None:
        later = self._later.pop(key, None)
        if later is not None:
            later.cancel()

    def _retry(self, key: InstanceKey, delay: float) -> None:
        self._cancel_retry(key)
        loop = asyncio.get_running_loop()
        self._later[key] = loop.call_later(delay, self._retry_now, key)

    def _retry_now(self, key: InstanceKey) -> None:
        self._later.pop(key, None)
        self.poke(key, "retry")

    async def _drive(self, key: InstanceKey, handler: str) -> None:
        try:
            while True:
                async with self._passes.exclusive(key):
                    # Whatever asked until now is seen by this pass: it reads afresh.
                    self._again.pop(key, None)
                    try:
                        outcome = await self._passes.run_held(key, handler)
                    except Exception:
                        logger.exception("%s pass of %s/%s failed", handler, *key)
                        outcome = None
                if outcome is None:
                    self._retry(key, 10.0)
                elif outcome.retry_after is not None:
                    self._retry(key, outcome.retry_after)
                again = self._again.pop(key, None)
                if again is None:
                    return
                handler = again
        finally:
            self._running.pop(key, None)

    async def stop(self) -> None:
        """Cancel pending retries and wait for running passes to end."""
        for later in self._later.values():
            later.cancel()
        self._later.clear()
        await asyncio.gather(*self._running.values(), return_exceptions=True)


async def resync(
    trigger: OwnerTrigger,
    passes: Passes,
    instances: Iterable[InstanceKey],
    *,
    every: float,
    beat: dict[str, float],
) -> None:
    """Forever: give each instance whose last pass ended ``every`` seconds ago a pass.

    Only instances that had a pass are due (their first comes from kopf, once its indexes are
    filled). One loop for all instances instead of a kopf timer per object: per-object timers
    and daemons make kopf put a finalizer on every PartyQuiz, and a finalizer is exactly what
    must not be there when nothing needs cleaning up (see docs/operator.md, "Deletion").
    """
    while True:
        await asyncio.sleep(every / 2)
        now = time.monotonic()
        beat["resync"] = now
        for key in list(instances):
            ended = passes.last_pass.get(key)
            if ended is not None and now - ended >= every:
                trigger.poke(key, "resync")
