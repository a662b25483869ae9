"""Decide whether a Deployment's rollout of one revision succeeded, failed or is still going.

Owns the rollout verdict: the checks of ``kubectl rollout status`` (observedGeneration,
``ProgressDeadlineExceeded``, updated/available counts) plus fail-fast on image-pull and
crash-loop states of the new revision's pods, a wall-clock timeout and a bake period. Pure:
objects and ``now`` come in as arguments; it must not read the cluster or the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from partyquiz_operator.render.common import REVISION_ANNOTATION

RolloutState = Literal["Progressing", "Baking", "Complete", "Failed"]

# Waiting reasons of a container that will not fix themselves without a new spec.
IMAGE_PULL_REASONS = frozenset(
    ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
)
CRASH_LOOP_REASONS = frozenset(("CrashLoopBackOff",))
STUCK_REASONS = IMAGE_PULL_REASONS | CRASH_LOOP_REASONS
# Waiting reasons of a container on its normal way to running.
STARTING_REASONS = frozenset(("ContainerCreating", "PodInitializing"))
# Every reason a failed rollout is reported with (``RolloutVerdict.reason`` when it failed).
FAILURE_REASONS = (
    IMAGE_PULL_REASONS | CRASH_LOOP_REASONS | {"ProgressDeadlineExceeded", "RolloutTimeout"}
)


@dataclass(frozen=True)
class RolloutVerdict:
    """The decision about one Deployment's rollout.

    ``reason`` is CamelCase and mirrors the Deployment or pod reason it comes from
    (``ProgressDeadlineExceeded``, ``ImagePullBackOff``, ``CrashLoopBackOff``) or names the
    operator's own check (``RolloutTimeout``, ``Baking``, ``NewReplicaSetAvailable``).
    ``completed_at`` is when the rollout was first seen complete (the bake starts there).
    """

    state: RolloutState
    reason: str
    message: str
    completed_at: datetime | None = None

    @property
    def failed(self) -> bool:
        """Return whether the rollout failed and should be rolled back."""
        return self.state == "Failed"

    @property
    def done(self) -> bool:
        """Return whether the rollout finished and baked."""
        return self.state == "Complete"


def _int(value: Any) -> int:
    return int(value or 0)


def _template_revision(deployment: Mapping[str, Any]) -> str | None:
    template = deployment.get("spec", {}).get("template", {})
    annotations = template.get("metadata", {}).get("annotations") or {}
    value = annotations.get(REVISION_ANNOTATION)
    return str(value) if value is not None else None


def _pod_revision(pod: Mapping[str, Any]) -> str | None:
    value = (pod.get("metadata", {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    return str(value) if value is not None else None


def waiting_problem(pod: Mapping[str, Any], stuck: Callable[[str], bool]) -> tuple[str, str] | None:
    """Return (reason, message) of the first container of ``pod`` waiting for a ``stuck`` reason."""
    name = pod.get("metadata", {}).get("name", "?")
    st = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in st.get(key) or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason, detail = str(waiting.get("reason") or ""), waiting.get("message")
            if reason and stuck(reason):
                suffix = f": {detail}" if detail else ""
                where = f"pod {name} container {container.get('name', '?')}"
                return reason, f"{where} is in {reason}{suffix}"
    return None


def stuck_pod(pods: Sequence[Mapping[str, Any]], revision: str) -> tuple[str, str] | None:
    """Return (reason, message) when a pod of ``revision`` cannot start without a new spec."""
    for pod in pods:
        if _pod_revision(pod) == revision and not pod.get("metadata", {}).get("deletionTimestamp"):
            problem = waiting_problem(pod, STUCK_REASONS.__contains__)
            if problem is not None:
                return problem
    return None


def _progress(deployment: Mapping[str, Any]) -> tuple[bool, str, str] | None:
    """Return (complete, reason, message) the way ``kubectl rollout status`` decides."""
    meta = deployment.get("metadata", {})
    spec = deployment.get("spec", {})
    st = deployment.get("status") or {}
    name = meta.get("name", "deployment")
    if _int(st.get("observedGeneration")) < _int(meta.get("generation")):
        return False, "WaitingForController", f"{name}: waiting for the controller to observe it"
    for cond in st.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return None
    desired = _int(spec.get("replicas", 1))
    updated = _int(st.get("updatedReplicas"))
    total = _int(st.get("replicas"))
    available = _int(st.get("availableReplicas"))
    if updated < desired:
        return False, "ReplicaSetUpdated", f"{name}: {updated}/{desired} replicas updated"
    if total > updated:
        return False, "ReplicaSetUpdated", f"{name}: {total - updated} old replicas terminating"
    if available < updated:
        return (
            False,
            "ReplicaSetUpdated",
            f"{name}: {available}/{updated} updated replicas available",
        )
    return True, "NewReplicaSetAvailable", f"{name}: {updated}/{desired} replicas available"


def assess_rollout(
    deployment: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    *,
    revision: str,
    now: datetime,
    started_at: datetime,
    timeout_seconds: int,
    bake_seconds: int,
    completed_at: datetime | None = None,
) -> RolloutVerdict:
    """Return the verdict on the rollout of ``revision`` in ``deployment``.

    ``pods`` are the Deployment's pods (any revision); ``started_at`` is when the operator
    applied the revision and ``completed_at`` when an earlier pass first saw it complete.
    Once complete, the rollout bakes for ``bake_seconds``: a pod of the revision that cannot
    start or the progress deadline still fails it then; a dip in availability pauses the bake.
    The wall-clock timeout covers everything up to the first completion, not the bake.
    """
    if deployment is None:
        return RolloutVerdict("Progressing", "Pending", "the Deployment does not exist yet")
    name = deployment.get("metadata", {}).get("name", "deployment")
    if _template_revision(deployment) != revision:
        return RolloutVerdict(
            "Progressing", "Pending", f"{name} does not run revision {revision} yet"
        )
    stuck = stuck_pod(pods, revision)
    if stuck is not None:
        return RolloutVerdict("Failed", stuck[0], f"{name}: {stuck[1]}")
    progress = _progress(deployment)
    if progress is None:
        return RolloutVerdict(
            "Failed",
            "ProgressDeadlineExceeded",
            f"{name}: rollout exceeded its progress deadline",
        )
    complete, reason, message = progress
    if not complete:
        if completed_at is None and (now - started_at).total_seconds() > timeout_seconds:
            return RolloutVerdict(
                "Failed",
                "RolloutTimeout",
                f"{name}: not rolled out {timeout_seconds}s after it started ({message})",
            )
        # A dip during the bake (a scale-up, a pod replaced) pauses it; pods that cannot start
        # and the progress deadline still fail it above.
        return RolloutVerdict("Progressing", reason, message, completed_at=completed_at)
    since = completed_at or now
    baked = (now - since).total_seconds()
    if baked < bake_seconds:
        return RolloutVerdict(
            "Baking",
            "Baking",
            f"{name}: rolled out, baking {int(bake_seconds - baked)}s more",
            completed_at=since,
        )
    return RolloutVerdict("Complete", reason, message, completed_at=since)
