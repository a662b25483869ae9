"""Release the clean-up finalizer of PartyQuiz objects whose deletion has waited too long.

Owns the last-resort path for deletions while the operator is not running: the chart runs it as
a CronJob, separate from the operator Deployment. Releasing loses nothing because the garbage
collector removes the children and, through the StatefulSets' PVC retention policy, the data
PVCs. I/O through ``k8s.Api`` only; it makes no other decision.
"""

from __future__ import annotations

import logging
from datetime import datetime

from partyquiz_operator import api
from partyquiz_operator.k8s import Api
from partyquiz_operator.plan.lifecycle import parse_time

logger = logging.getLogger(__name__)

FINALIZER = "partyquiz.dev/cleanup"


async def release_stale_finalizers(
    cluster: Api, namespaces: list[str], *, now: datetime, older_than_seconds: float
) -> list[str]:
    """Drop ``FINALIZER`` from instances deleted more than ``older_than_seconds`` ago."""
    scopes: list[str | None] = list(namespaces) or [None]
    bodies = [b for ns in scopes for b in await cluster.list(api.KIND, ns)]
    released = []
    for body in bodies:
        meta = body["metadata"]
        deleted_at = parse_time(meta.get("deletionTimestamp"))
        finalizers = list(meta.get("finalizers") or [])
        if deleted_at is None or FINALIZER not in finalizers:
            continue
        waited = (now - deleted_at).total_seconds()
        if waited < older_than_seconds:
            continue
        remaining = [f for f in finalizers if f != FINALIZER]
        await cluster.merge_patch(
            api.KIND,
            meta["namespace"],
            meta["name"],
            {"metadata": {"finalizers": remaining, "resourceVersion": meta["resourceVersion"]}},
        )
        logger.warning(
            "released %s on %s/%s after %.0fs of waiting for the operator",
            FINALIZER,
            meta["namespace"],
            meta["name"],
            waited,
        )
        released.append(f"{meta['namespace']}/{meta['name']}")
    return released
