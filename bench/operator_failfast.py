"""B6: how soon the operator acts on the change that decides (rollback, Ready, retry).

Runs on B5's kind of plane (its own control plane, kwok, the chart's CRD and RBAC) one
PartyQuiz at a time, with an operator whose resync never comes during a run, so every figure is
a reaction to a watched change. Each run installs an instance and takes it through a failed
migration retried by annotation, a plain upgrade and a crash-looping upgrade that is rolled
back. Times are the bench process's watch-event receive times (monotonic clock); the pure
functions here turn one run's event log into the three figures and say which were not seen.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.operator_bench import (
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    NamespaceWatch,
    install_chart_access,
    own_plane,
    provide_volumes,
)
from bench.procs import BenchError
from bench.report import Cell, render_table
from bench.stats import Spread, spread_of
from bench.summary import Verdict, format_spread

BEHAVIOUR_LABEL = "kwok.partyquiz.dev/behaviour"  # hack/cluster/kwok.yaml's pod behaviours
REVISION_ANNOTATION = "partyquiz.dev/revision"
RETRY_ANNOTATION = "partyquiz.dev/retry"
# Longer than a whole run: nothing measured here may come from the periodic resync.
NO_RESYNC_SECONDS = 3600.0
STEP_TIMEOUT_SECONDS = 180.0
# Targets of the fail-fast work, in seconds (the retry has none: "at once").
ROLLBACK_TARGET_S = 5.0
READY_TARGET_S = 2.0

Event = tuple[float, str, str, Mapping[str, Any]]  # (received, plural, type, object)


def _log(message: str) -> None:
    from bench.suite import log

    log(message)


class EventLog(NamespaceWatch):
    """Every watch event of the namespace with its receive time, and waits on them."""

    def __init__(self, api_client: Any, namespace: str, *, seconds: float) -> None:
        super().__init__(api_client, namespace, seconds=seconds)
        self.events: list[Event] = []
        self._arrived = threading.Condition()

    def record(self, plural: str, event: Mapping[str, Any], now: float) -> None:
        with self._arrived:
            self.events.append((now, plural, str(event.get("type")), event.get("object") or {}))
            self._arrived.notify_all()

    def since(self, start: float) -> list[Event]:
        with self._arrived:
            return [e for e in self.events if e[0] >= start]

    def wait(self, found: Callable[[list[Event]], Any], start: float, what: str) -> Any:
        """Return ``found(events since start)`` once it is not None; fail after the timeout."""
        deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
        with self._arrived:
            while True:
                value = found([e for e in self.events if e[0] >= start])
                if value is not None:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"B6: no {what} within {STEP_TIMEOUT_SECONDS:.0f} s")
                self._arrived.wait(left)


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def _of(events: Iterable[Event], plural: str, instance: str) -> Iterable[Event]:
    for event in events:
        meta = event[3].get("metadata") or {}
        owner = (
            meta.get("name") if plural == "partyquizzes" else _labels(event[3]).get(INSTANCE_LABEL)
        )
        if event[1] == plural and owner == instance:
            yield event


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def settled(pq: Mapping[str, Any], phase: str) -> bool:
    """Whether the PartyQuiz reports ``phase`` for its current generation."""
    meta, st = pq.get("metadata") or {}, pq.get("status") or {}
    return st.get("observedGeneration") == meta.get("generation") and st.get("phase") == phase


def first_pq(
    events: Iterable[Event], instance: str, accept: Callable[[Mapping[str, Any]], bool]
) -> Event | None:
    """The first event of PartyQuiz ``instance`` whose object ``accept`` takes."""
    return next((e for e in _of(events, "partyquizzes", instance) if accept(e[3])), None)


def rolled_back(pq: Mapping[str, Any]) -> bool:
    degraded = _conditions(pq).get("Degraded") or {}
    return degraded.get("status") == "True" and degraded.get("reason") == "RolledBack"


def crash_loop_to_rollback(events: Sequence[Event], instance: str) -> float | None:
    """Seconds from the first crash-looping pod to status showing the rollback.

    The planner fails a rollout as soon as a pod of the new revision has a container waiting
    in CrashLoopBackOff, so the clock starts at the first such pod event.
    """
    decided = next(
        (
            e
            for e in _of(events, "pods", instance)
            if any(
                ((s.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
                for s in (e[3].get("status") or {}).get("containerStatuses") or []
            )
        ),
        None,
    )
    # The first rollback shown at all: one shown before the deciding pod state would come out
    # negative rather than be hidden behind a later event.
    shown = first_pq(events, instance, rolled_back)
    if decided is None or shown is None:
        return None
    return shown[0] - decided[0]


@dataclass(frozen=True)
class UpgradeTiming:
    """One upgrade: when the last new pod, both Deployments and the status became Ready."""

    pods_to_ready_s: float  # last web/ws pod of the new revision Ready -> status Ready
    deployments_to_ready_s: float  # both Deployments rolled out -> status Ready
    server_pods_to_ready_s: float  # the same as the first, from lastTransitionTime (1 s steps)


def _ready_since(obj: Mapping[str, Any]) -> datetime | None:
    ready = _conditions(obj).get("Ready") or {}
    stamp = ready.get("lastTransitionTime")
    if ready.get("status") != "True" or not stamp:
        return None
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def _rolled_out(deployment: Mapping[str, Any], revision: str) -> bool:
    meta, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    st = deployment.get("status") or {}
    want = int(spec.get("replicas", 1))
    return (
        (meta.get("annotations") or {}).get(REVISION_ANNOTATION) == revision
        and int(st.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
        and int(st.get("updatedReplicas") or 0) >= want
        and int(st.get("replicas") or 0) <= int(st.get("updatedReplicas") or 0)
        and int(st.get("availableReplicas") or 0) >= want
    )


def upgrade_to_ready(events: Sequence[Event], instance: str, old: str) -> UpgradeTiming | None:
    """Time the status's Ready against the last pod Ready and the Deployments rolled out."""
    done = first_pq(
        events,
        instance,
        lambda pq: (
            settled(pq, "Ready")
            and ((pq.get("status") or {}).get("revisions") or {}).get("current") not in (None, old)
        ),
    )
    if done is None:
        return None
    revision = done[3]["status"]["revisions"]["current"]
    before = [e for e in events if e[0] <= done[0]]
    pods: dict[str, tuple[float, datetime]] = {}
    for t, _, kind, pod in _of(before, "pods", instance):
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        name = str((pod.get("metadata") or {}).get("name"))
        since = _ready_since(pod)
        if (
            kind != "DELETED"
            and annotations.get(REVISION_ANNOTATION) == revision
            and since is not None
            and name not in pods
        ):
            pods[name] = (t, since)
    rolled: dict[str, float] = {}
    for t, _, _, deployment in _of(before, "deployments", instance):
        component = _labels(deployment).get(COMPONENT_LABEL, "")
        if _rolled_out(deployment, revision):
            rolled.setdefault(component, t)
    status_since = _ready_since(done[3])
    if not pods or set(rolled) < {"web", "ws"} or status_since is None:
        return None
    last_pod = max(pods.values())
    return UpgradeTiming(
        pods_to_ready_s=done[0] - last_pod[0],
        deployments_to_ready_s=done[0] - max(rolled["web"], rolled["ws"]),
        server_pods_to_ready_s=(status_since - max(s for _, s in pods.values())).total_seconds(),
    )


@dataclass(frozen=True)
class RetryTiming:
    """One retry: from the annotation (as the API server sent it) to the operator's reaction."""

    seen_to_reaction_s: float
    call_to_reaction_s: float  # from the start of ``kubectl annotate`` (includes its start-up)
    reaction: str


def retry_reaction(
    events: Sequence[Event], instance: str, value: str, called: float
) -> RetryTiming | None:
    """Time the first sign the operator acted on ``retry=value``.

    A sign is the status recording the value it acted upon, or the failed migration Job being
    deleted (what a retry does first), whichever the watches delivered first.
    """
    seen = first_pq(
        events,
        instance,
        lambda pq: (
            ((pq.get("metadata") or {}).get("annotations") or {}).get(RETRY_ANNOTATION) == value
        ),
    )
    if seen is None:
        return None
    after = [e for e in events if e[0] >= seen[0]]
    signs: list[tuple[float, str]] = []
    recorded = first_pq(after, instance, lambda pq: (pq.get("status") or {}).get("retry") == value)
    if recorded is not None:
        signs.append((recorded[0], "status.retry"))
    for t, _, kind, job in _of(after, "jobs", instance):
        going = kind == "DELETED" or (job.get("metadata") or {}).get("deletionTimestamp")
        if going and _labels(job).get(COMPONENT_LABEL) == "migration":
            signs.append((t, "failed migration Job deleted"))
            break
    if not signs:
        return None
    at, reaction = min(signs)
    return RetryTiming(at - seen[0], at - called, reaction)


@dataclass(frozen=True)
class RunFigures:
    """One run's three figures; None where the run did not show it."""

    rollback_s: float | None
    upgrade: UpgradeTiming | None
    retry: RetryTiming | None
    load: float


def summarize(runs: Sequence[RunFigures]) -> dict[str, Spread | None]:
    """Median, minimum and maximum over the runs of every figure."""
    return {
        "rollback_s": spread_of(r.rollback_s for r in runs),
        "pods_to_ready_s": spread_of(
            None if r.upgrade is None else r.upgrade.pods_to_ready_s for r in runs
        ),
        "deployments_to_ready_s": spread_of(
            None if r.upgrade is None else r.upgrade.deployments_to_ready_s for r in runs
        ),
        "server_pods_to_ready_s": spread_of(
            None if r.upgrade is None else r.upgrade.server_pods_to_ready_s for r in runs
        ),
        "retry_seen_s": spread_of(
            None if r.retry is None else r.retry.seen_to_reaction_s for r in runs
        ),
        "retry_call_s": spread_of(
            None if r.retry is None else r.retry.call_to_reaction_s for r in runs
        ),
    }


def worst_run(spread: Spread | None, runs: int, target_s: float) -> tuple[bool | None, str]:
    """Whether every run met ``target_s``, and the verdict as the docs print it.

    A run that did not show the figure counts against the target: it is a missed reaction.
    """
    if spread is None:
        return None, "not measured"
    missing = runs - spread.runs
    if missing:
        return False, f"MISSED: {missing} of {runs} runs never showed it"
    if spread.high <= target_s:
        return True, f"met (worst {spread.high:.2f} s ≤ {target_s:g} s)"
    return False, f"MISSED by {spread.high - target_s:.2f} s (worst {spread.high:.2f} s)"


# ---------------------------------------------------------------------------------------------
# Driving the plane (I/O from here on).


def _patch(cluster: Any, namespace: str, name: str, body: Mapping[str, Any]) -> None:
    cluster.kubectl("patch", "pq", name, "-n", namespace, "--type=merge", "-p", json.dumps(body))


def _one_run(cluster: Any, log: EventLog, namespace: str, name: str, manifest: Any) -> RunFigures:
    obj = json.loads(json.dumps(manifest))
    obj["metadata"]["name"] = name
    obj["spec"]["rollout"] = {"progressDeadlineSeconds": 600, "bakeSeconds": 0}
    obj["spec"]["migrations"] = {"backupFirst": False, "backoffLimit": 0}
    start = time.monotonic()
    cluster.apply(obj, namespace)
    installed = log.wait(
        lambda ev: first_pq(ev, name, lambda pq: settled(pq, "Ready")), start, "install Ready"
    )
    first_revision = installed[3]["status"]["revisions"]["current"]

    # A migration that fails, then the retry annotation once its cause is gone.
    start = time.monotonic()
    _patch(
        cluster,
        namespace,
        name,
        {"spec": {"version": "1.5.0", "migrations": {"podLabels": {BEHAVIOUR_LABEL: "fail"}}}},
    )
    log.wait(lambda ev: first_pq(ev, name, lambda pq: settled(pq, "Degraded")), start, "Degraded")
    _patch(cluster, namespace, name, {"spec": {"migrations": {"podLabels": None}}})
    value = secrets.token_hex(4)
    called = time.monotonic()
    cluster.kubectl("annotate", "pq", name, "-n", namespace, f"{RETRY_ANNOTATION}={value}")
    retried = log.wait(
        lambda ev: first_pq(
            ev,
            name,
            lambda pq: (
                settled(pq, "Ready")
                and ((pq.get("status") or {}).get("revisions") or {}).get("current")
                not in (None, first_revision)
            ),
        ),
        called,
        "Ready after the retry",
    )
    retry = retry_reaction(log.since(called - 5.0), name, value, called)
    upgraded_from = retried[3]["status"]["revisions"]["current"]

    # A plain upgrade.
    start = time.monotonic()
    _patch(cluster, namespace, name, {"spec": {"version": "1.6.0"}})
    log.wait(lambda ev: upgrade_to_ready(ev, name, upgraded_from), start, "upgrade Ready")
    upgrade = upgrade_to_ready(log.since(start), name, upgraded_from)

    # An upgrade whose pods crash-loop: rolled back.
    start = time.monotonic()
    _patch(
        cluster,
        namespace,
        name,
        {"spec": {"version": "1.7.0", "podLabels": {BEHAVIOUR_LABEL: "crash-loop"}}},
    )
    log.wait(lambda ev: crash_loop_to_rollback(ev, name), start, "rollback")
    rollback = crash_loop_to_rollback(log.since(start), name)
    cluster.kubectl("delete", "pq", name, "-n", namespace, "--wait=false")
    return RunFigures(rollback, upgrade, retry, round(os.getloadavg()[0], 2))


def run_failfast_bench(runs: int, run_dir: Path) -> list[RunFigures]:
    """B6: ``runs`` runs, one PartyQuiz at a time; returns each run's figures."""
    from tests.e2e.operator.harness import OperatorProcess, load_example

    try:
        with own_plane(run_dir / "cluster-failfast", "B6") as cluster:
            kubeconfig = install_chart_access(cluster, run_dir / "failfast-kubeconfig")
            namespace = f"pq-failfast-{secrets.token_hex(3)}"
            cluster.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                namespace,
            )
            names = [f"quiz-{i}" for i in range(runs)]
            provide_volumes(
                cluster,
                namespace,
                [f"data-{n}-{store}-0" for n in names for store in ("postgres", "redis")],
            )
            operator = OperatorProcess(
                kubeconfig=kubeconfig,
                log_path=run_dir / "failfast-operator.log",
                namespaces=(namespace,),
                resync_seconds=NO_RESYNC_SECONDS,
            )
            operator.start()
            log = EventLog(cluster.api_client(), namespace, seconds=runs * 600)
            log.start()
            manifest = load_example("minimal.yaml")[0]
            results: list[RunFigures] = []
            try:
                for name in names:
                    results.append(_one_run(cluster, log, namespace, name, manifest))
                    _log(f"B6 {name}: {results[-1]}")
            finally:
                log.stop()
                operator.stop()
            return results
    except (AssertionError, OSError, KeyError) as exc:
        raise BenchError(f"B6 could not complete: {type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Verdicts and the docs section (pure).

# (figure key, what it is, target seconds or None); the verdict is the worst run's.
FIGURES: tuple[tuple[str, str, float | None], ...] = (
    ("rollback_s", "first pod in CrashLoopBackOff → status RolledBack", ROLLBACK_TARGET_S),
    ("pods_to_ready_s", "upgrade: last new web/ws pod Ready → status Ready", READY_TARGET_S),
    ("deployments_to_ready_s", "upgrade: both Deployments rolled out → status Ready", None),
    (
        "server_pods_to_ready_s",
        "upgrade, server clocks: pod Ready → PartyQuiz Ready lastTransitionTime (1 s steps)",
        None,
    ),
    ("retry_seen_s", "retry annotation in the API → first reaction", None),
    ("retry_call_s", "`kubectl annotate` started → first reaction", None),
)


def check_failfast_targets(runs: Sequence[RunFigures]) -> list[Verdict]:
    """B6: the worst run against each target (rollback ≤ 5 s, Ready ≤ 2 s)."""
    spreads = summarize(runs)
    verdicts = []
    for key, label, target in FIGURES:
        if target is None:
            continue
        met, _ = worst_run(spreads[key], len(runs), target)
        verdicts.append(
            Verdict(
                f"B6 {label}: every run ≤ {target:g} s", format_spread(spreads[key], " s", 2), met
            )
        )
    return verdicts


def render_failfast(
    when: str, machine: Mapping[str, str], runs: Sequence[RunFigures], load: tuple[float, float]
) -> str:
    """Return the body of the "Operator fail-fast" section (B6)."""
    spreads = summarize(runs)
    rows: list[list[Cell]] = []
    for key, label, target in FIGURES:
        s = spreads[key]
        verdict = "no target" if target is None else worst_run(s, len(runs), target)[1]
        rows.append(
            [
                label,
                "—" if target is None else f"{target:g}",
                0 if s is None else s.runs,
                None if s is None else s.median,
                None if s is None else f"{s.low:.2f}–{s.high:.2f}",  # noqa: RUF001
                verdict,
            ]
        )
    table = render_table(
        ["figure", "target s", "runs", "median s", "min–max s", "worst run"],  # noqa: RUF001
        rows,
        [0, 0, 0, 2],
    )
    reactions = sorted({r.retry.reaction for r in runs if r.retry is not None})
    loads = ", ".join(f"{r.load:.1f}" for r in runs)
    return "\n".join(
        [
            f"Measured {when} at revision {machine['revision']} by "
            f"`python -m bench --scenarios failfast --runs {len(runs)}` on the same machine "
            f"({machine['cores']} cores, {machine['cpu']}, {machine['ram']} RAM); 1-minute "
            f"load average {load[0]:.1f} at the start and {load[1]:.1f} at the end "
            f"(after each run: {loads}).",
            "",
            "B6 starts a control plane like B5's and runs the operator as the chart's "
            f"ServiceAccount with a {NO_RESYNC_SECONDS:g} s resync, so nothing below comes from "
            "the periodic resync. Each run installs one copy of examples/minimal.yaml (no bake, "
            "no backup) and takes it through a migration that fails (kwok fails the Job), the "
            "`partyquiz.dev/retry` annotation once the cause is gone, a plain upgrade, and an "
            "upgrade whose web and ws containers crash-loop (kwok reports them waiting in "
            "CrashLoopBackOff), which the operator rolls back. Times are when API watches opened "
            "by the bench process received each change (monotonic clock, sub-millisecond), so "
            "they include the API server's and the operator's watch delivery. The rollback is "
            "timed from the first pod event showing a container waiting in CrashLoopBackOff "
            "(what the planner fails a rollout on) to the first PartyQuiz event with Degraded "
            "reason RolledBack. The operator decides Ready on the Deployments (generation "
            "observed, every replica updated and available, no old one left), so an upgrade is "
            "timed both from the last new web/ws pod turning Ready and from both Deployments "
            "rolled out to the first PartyQuiz event with phase Ready for the new revision; the "
            "server-side row takes the same span from the conditions' lastTransitionTime, which "
            "has whole-second resolution (±1 s). The retry is timed from the PartyQuiz event "
            "carrying the new annotation value to the first reaction ("
            + (", ".join(reactions) or "none seen")
            + "), and from the start of the `kubectl annotate` process.",
            "",
            table,
        ]
    )
