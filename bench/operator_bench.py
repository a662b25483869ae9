"""B5: the operator against a real local control plane (kwok makes the pods Ready).

Owns a control plane of its own (separate state directory and ports, so no other operator
reconciles these objects), the chart's CRD and RBAC, one operator process run as the chart's
ServiceAccount, and the measurement: apply N PartyQuiz objects, watch them and their children
to time apply -> Ready and split each object's critical path into the operator's own steps and
the waits for Kubernetes (controller-manager, scheduler, kwok), count API writes over
steady-state resyncs, and the operator's memory per object. It stops only the plane and
processes it started.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from bench.procs import BenchError
from bench.stats import percentile
from bench.targets import REPO_ROOT

CLUSTER_SCRIPTS = REPO_ROOT / "hack" / "cluster"
# B5's own plane: the e2e plane uses the default 17000; two B5 runs at once need two bases.
PORT_BASE = os.environ.get("PARTYQUIZ_BENCH_CLUSTER_PORT_BASE", "27000")
BENCH_NAMESPACE = "partyquiz-operator-bench"
OPERATOR_RESYNC_SECONDS = 5.0  # what tests.e2e.operator.harness.OperatorProcess runs with


def _log(message: str) -> None:
    from bench.suite import log

    log(message)


def _script(name: str, env: dict[str, str], *args: str, timeout: float) -> str:
    done = subprocess.run(
        [str(CLUSTER_SCRIPTS / name), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(
            f"hack/cluster/{name} failed ({done.returncode}):\n"
            f"{done.stderr[-2000:]}\n{done.stdout[-1000:]}"
        )
    return done.stdout


@contextmanager
def own_plane(state_dir: Path, scenario: str = "B5") -> Iterator[Any]:
    """Start a control plane in ``state_dir`` on its own ports; stop it afterwards."""
    from tests.e2e.kube import Cluster

    env = {"PARTYQUIZ_CLUSTER_DIR": str(state_dir), "PARTYQUIZ_CLUSTER_PORT_BASE": PORT_BASE}
    _script("build.sh", env, timeout=1800)
    _log(f"starting a control plane for {scenario}")
    try:
        _script("up.sh", env, timeout=300)
        yield Cluster.from_env_lines(_script("status.sh", env, "--env", timeout=60))
    finally:
        try:
            _script("down.sh", env, timeout=120)
        except BenchError as exc:
            _log(f"could not stop the {scenario} control plane: {exc}")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# What B5 watches in the bench namespace: (plural, API path of the namespace's collection).
WATCHED = (
    ("partyquizzes", "/apis/partyquiz.dev/v1alpha1/namespaces/{ns}/partyquizzes"),
    ("statefulsets", "/apis/apps/v1/namespaces/{ns}/statefulsets"),
    ("jobs", "/apis/batch/v1/namespaces/{ns}/jobs"),
    ("deployments", "/apis/apps/v1/namespaces/{ns}/deployments"),
    ("pods", "/api/v1/namespaces/{ns}/pods"),
)
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _deployment_available(obj: Mapping[str, Any]) -> bool:
    """The rollout is complete the way ``kubectl rollout status`` (and the operator) decide."""
    meta, spec, st = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status") or {}
    updated = _int(st.get("updatedReplicas"))
    return (
        _int(st.get("observedGeneration")) >= _int(meta.get("generation"))
        and updated >= _int(spec.get("replicas", 1))
        and _int(st.get("replicas")) <= updated
        and _int(st.get("availableReplicas")) >= updated
    )


def _true(obj: Mapping[str, Any], condition: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == condition and c.get("status") == "True" for c in conditions)


def states_of(plural: str, obj: Mapping[str, Any]) -> list[str]:
    """Return the states B5 times that this version of a watched object is in."""
    meta, st = obj.get("metadata", {}), obj.get("status") or {}
    states = ["created"]
    if plural == "statefulsets":
        if _int(st.get("readyReplicas")) >= _int(obj.get("spec", {}).get("replicas", 1)):
            states.append("ready")
    elif plural == "jobs":
        if _true(obj, "Complete"):
            states.append("complete")
    elif plural == "deployments":
        if _deployment_available(obj):
            states.append("available")
    elif plural == "pods":
        if _true(obj, "Ready"):
            states.append("ready")
    elif plural == "partyquizzes":
        current = st.get("observedGeneration") == meta.get("generation")
        if current and st.get("phase") == "Ready":
            states.append("ready")
    return states


class NamespaceWatch:
    """Local monotonic times at which objects of one namespace first reached each state.

    One API watch per watched kind, each read by its own thread; a watch counts as started
    once the API server answered its request (it then sends every later change). Keys are
    (plural, instance, component, name, state); ``instance`` is the PartyQuiz the object
    belongs to (its own name for a PartyQuiz).
    """

    def __init__(self, api_client: Any, namespace: str, *, seconds: float) -> None:
        self._api = api_client
        self._namespace = namespace
        self._seconds = seconds  # the API server ends each watch after this long
        self._lock = threading.Lock()
        self.first: dict[tuple[str, str, str, str, str], float] = {}
        self._responses: list[Any] = []
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def start(self) -> None:
        for plural, path in WATCHED:
            serialized = self._api.param_serialize(
                method="GET",
                resource_path=path.format(ns=self._namespace)
                + f"?watch=true&timeoutSeconds={self._seconds:.0f}",
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(serialized[0], serialized[1], header_params=serialized[2])
            if int(response.status) != 200:
                raise BenchError(f"cannot watch {plural}: HTTP {response.status}")
            self._responses.append(response)
            thread = threading.Thread(
                target=self._read, args=(plural, response), name=f"b5-watch-{plural}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _read(self, plural: str, response: Any) -> None:
        buffer = b""
        try:
            for chunk in response.response.stream(decode_content=True):
                now = time.monotonic()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self.record(plural, json.loads(line), now)
        except Exception as exc:  # a closed connection ends the watch; anything else is reported
            if not self._stopping:
                _log(f"B5: the {plural} watch ended: {type(exc).__name__}: {exc}")

    def record(self, plural: str, event: Mapping[str, Any], now: float) -> None:
        """Note the states of one watch event's object that were not seen before ``now``."""
        if event.get("type") not in ("ADDED", "MODIFIED"):
            return
        obj = event["object"]
        meta = obj.get("metadata", {})
        labels = meta.get("labels") or {}
        name = str(meta.get("name", ""))
        instance = name if plural == "partyquizzes" else str(labels.get(INSTANCE_LABEL, ""))
        component = str(labels.get(COMPONENT_LABEL, ""))
        with self._lock:
            for state in states_of(plural, obj):
                self.first.setdefault((plural, instance, component, name, state), now)

    def when(self, plural: str, instance: str, component: str, state: str) -> float | None:
        """Latest first-time of ``state`` over the instance's objects of this kind and component.

        None unless at least one such object reached it (the latest, because the operator waits
        for all of them).
        """
        with self._lock:
            times = [
                t
                for (p, i, c, _, s), t in self.first.items()
                if (p, i, c, s) == (plural, instance, component, state)
            ]
        return max(times) if times else None

    def ready_times(self, names: list[str], started: float) -> dict[str, float]:
        """Seconds from ``started`` until each PartyQuiz in ``names`` was Ready, so far."""
        with self._lock:
            return {
                i: t - started
                for (p, i, _, _, s), t in self.first.items()
                if p == "partyquizzes" and s == "ready" and i in names
            }

    def pod_starts(self) -> list[float]:
        """Seconds from each pod's ADDED event to its Ready condition (kwok's part)."""
        with self._lock:
            created = {
                key[3]: t
                for key, t in self.first.items()
                if key[0] == "pods" and key[4] == "created"
            }
            return [
                t - created[key[3]]
                for key, t in self.first.items()
                if key[0] == "pods" and key[4] == "ready" and key[3] in created
            ]

    def stop(self) -> None:
        self._stopping = True
        for response in self._responses:
            with suppress(AttributeError, OSError):
                response.response.shutdown()
            response.response.close()
        for thread in self._threads:
            thread.join(timeout=10)


# The critical path of one PartyQuiz from apply to Ready for examples/minimal.yaml: kubectl
# creates it (one apply creates the N objects one after another), the operator acts (creates the
# data stores), Kubernetes starts PostgreSQL, the operator creates the migration Job, Kubernetes
# runs it, the operator creates the Deployments, Kubernetes rolls them out (and Redis, started
# with PostgreSQL, is ready by then), the operator reports Ready.
# Each step: (label, who, kind, component, state that ends it).
STEPS: tuple[tuple[str, str, str, str, str], ...] = (
    ("apply → PartyQuiz created", "kubectl", "partyquizzes", "", "created"),
    ("→ StatefulSets created", "operator", "statefulsets", "", "created"),
    ("→ PostgreSQL ready", "kubernetes", "statefulsets", "database", "ready"),
    ("→ migration Job created", "operator", "jobs", "migration", "created"),
    ("→ Job complete", "kubernetes", "jobs", "migration", "complete"),
    ("→ Deployments created", "operator", "deployments", "", "created"),
    ("→ Deployments available, Redis ready", "kubernetes", "deployments", "", "available"),
    ("→ status Ready", "operator", "partyquizzes", "", "ready"),
)


def critical_path(watch: NamespaceWatch, name: str, started: float) -> list[float] | None:
    """Seconds of each of ``STEPS`` for PartyQuiz ``name``; None if a step was not seen."""

    def when(plural: str, component: str, state: str) -> float | None:
        if component:
            return watch.when(plural, name, component, state)
        # "" means every component of that kind: both StatefulSets, both Deployments.
        components = {
            "statefulsets": ("database", "cache"),
            "deployments": ("web", "ws"),
            "partyquizzes": ("",),
        }[plural]
        times = [watch.when(plural, name, c, state) for c in components]
        return None if None in times else max(t for t in times if t is not None)

    ends: list[float] = []
    for _, _, plural, component, state in STEPS:
        end = when(plural, component, state)
        if end is None:
            return None
        ends.append(end)
    # The rollout wait ends when everything the final step needs is there, Redis included.
    redis_ready = watch.when("statefulsets", name, "cache", "ready")
    if redis_ready is None:
        return None
    ends[6] = max(ends[6], redis_ready)
    marks = [started, *ends]
    return [b - a for a, b in itertools.pairwise(marks)]


def _wait_passes(operator: Any, count: float, timeout: float) -> float:
    """Wait until ``count`` more reconcile passes finished; return how many did."""
    start = operator.passes()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = float(operator.passes() - start)
        if done >= count:
            return done
        time.sleep(0.5)
    return float(operator.passes() - start)


# One fake node holds what kwok.yaml gives it (32 CPUs); the minimal example requests about one
# CPU per PartyQuiz, so B5 adds nodes rather than leave pods Pending on a full node.
OBJECTS_PER_NODE = 20


def ensure_nodes(cluster: Any, count: int) -> None:
    """Make sure ``count`` fake nodes exist and are Ready (kwok manages annotated nodes)."""
    for i in range(1, count):
        name = f"kwok-bench-node-{i}"
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
            },
            "default",
        )
        cluster.wait(f"node/{name}", "condition=Ready", None, timeout=120)


def provide_volumes(cluster: Any, namespace: str, claims: list[str]) -> list[str]:
    """Create PersistentVolumes pre-bound to ``claims`` in one apply (no provisioner here)."""
    volumes = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": f"{namespace}-{claim}"[:63],
                "labels": {"partyquiz.dev/bench": "true"},
            },
            "spec": {
                "capacity": {"storage": "50Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": f"/tmp/{namespace}-{claim}"[:63]},
                "claimRef": {"namespace": namespace, "name": claim},
            },
        }
        for claim in claims
    ]
    cluster.apply(volumes, namespace)
    return [v["metadata"]["name"] for v in volumes]  # type: ignore[index]


def retire(cluster: Any, namespace: str, volumes: list[str], *, timeout: float) -> None:
    """Delete a measured namespace and its volumes and return once both are gone.

    The next count must start on a plane that is done with this one: while a namespace is
    being torn down, the namespace controller and the garbage collector delete its objects and
    the operator re-applies the children removed before their PartyQuiz (each refused, the
    namespace is terminating), all on the cores and the API server the next count measures.
    """
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    if volumes:
        cluster.kubectl("delete", "pv", *volumes, "--wait=false", "--ignore-not-found", check=False)
    done = cluster.kubectl(
        "wait",
        "--for=delete",
        f"namespace/{namespace}",
        *(f"persistentvolume/{v}" for v in volumes),
        f"--timeout={timeout:.0f}s",
        timeout=timeout + 30,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(
            f"namespace {namespace} or its volumes still exist after {timeout:.0f} s: "
            f"{done.stderr[-1000:]}"
        )


def measure(
    cluster: Any, operator: Any, count: int, manifest: dict[str, Any]
) -> tuple[dict[str, Any], str, list[str]]:
    """Apply ``count`` PartyQuiz objects in a fresh namespace and measure B5's figures.

    Returns the figures, the namespace and the volumes, which the caller retires.
    """
    ensure_nodes(cluster, -(-count // OBJECTS_PER_NODE))
    namespace = f"pq-bench-{count}-{secrets.token_hex(3)}"
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, namespace
    )
    names = [f"quiz-{i}" for i in range(count)]
    volumes = provide_volumes(
        cluster,
        namespace,
        [f"data-{n}-{store}-0" for n in names for store in ("postgres", "redis")],
    )
    assert operator.process is not None
    rss_before = _rss_kib(operator.process.pid)
    objects = []
    for name in names:
        obj = json.loads(json.dumps(manifest))
        obj["metadata"]["name"] = name
        objects.append(obj)
    timeout = 120.0 + count * 6
    watch = NamespaceWatch(cluster.api_client(), namespace, seconds=timeout + 30)
    watch.start()
    load_start = os.getloadavg()[0]
    _log(f"B5: applying {count} PartyQuiz objects (1-minute load {load_start:.2f})")
    started = time.monotonic()
    try:
        cluster.apply(objects, namespace)
        applied = time.monotonic() - started
        deadline = started + timeout
        while len(watch.ready_times(names, started)) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # the watches deliver the last children's states that came before Ready
    finally:
        watch.stop()
    ready = watch.ready_times(names, started)
    result: dict[str, Any] = {
        "count": count,
        "apply_call_s": applied,
        "ready": len(ready),
        "load_start": load_start,
    }
    if ready:
        times = list(ready.values())
        result.update(
            ready_p50_s=percentile(times, 50),
            ready_p99_s=percentile(times, 99),
            ready_max_s=max(times),
        )
    paths = [p for p in (critical_path(watch, n, started) for n in names) if p is not None]
    if paths:
        own, waited = (
            [sum(s for (_, by, *_), s in zip(STEPS, p, strict=True) if by == who) for p in paths]
            for who in ("operator", "kubernetes")
        )
        result.update(
            paths=len(paths),
            operator_p50_s=percentile(own, 50),
            operator_p99_s=percentile(own, 99),
            kubernetes_p50_s=percentile(waited, 50),
            kubernetes_p99_s=percentile(waited, 99),
            steps_p50_s={
                label: percentile([p[i] for p in paths], 50) for i, (label, *_) in enumerate(STEPS)
            },
        )
    starts = watch.pod_starts()
    if starts:
        result["pod_start_p50_s"] = percentile(starts, 50)
    # Steady state: let in-flight passes finish, then count writes over at least two
    # resyncs of every object.
    _wait_passes(operator, 2 * count, timeout=60 + count)
    time.sleep(1.0)
    writes_before = operator.writes()
    passes = _wait_passes(operator, 2 * count, timeout=60 + count * 2)
    result.update(resync_passes=passes, resync_writes=operator.writes() - writes_before)
    result["kib_per_object"] = (_rss_kib(operator.process.pid) - rss_before) / count
    result["load_end"] = os.getloadavg()[0]
    return result, namespace, volumes


def run_operator_bench(counts: tuple[int, ...], run_dir: Path) -> list[dict[str, Any]]:
    """B5 for each object count; returns one result per count."""
    try:
        return _run(counts, run_dir)
    except (AssertionError, subprocess.SubprocessError, OSError, KeyError) as exc:
        # tests.e2e.kube reports failed kubectl calls and waits as AssertionError subclasses.
        raise BenchError(f"B5 could not complete: {type(exc).__name__}: {exc}") from exc


def install_chart_access(cluster: Any, kubeconfig: Path) -> Path:
    """Install the chart's CRD and RBAC (not its Deployment) and return ``kubeconfig``.

    The kubeconfig written there holds a token of the chart's ServiceAccount, so an operator
    started with it has exactly the access the chart grants.
    """
    from tests.e2e.operator.harness import render_chart

    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BENCH_NAMESPACE}},
        BENCH_NAMESPACE,
    )
    objects = render_chart(cluster, BENCH_NAMESPACE, "rbac.clusterWide=true")
    for crd in (o for o in objects if o["kind"] == "CustomResourceDefinition"):
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(crd)
        )
        cluster.wait(f"crd/{crd['metadata']['name']}", "condition=Established", None, timeout=60)
    cluster.apply(
        [o for o in objects if o["kind"] not in ("CustomResourceDefinition", "Deployment")],
        BENCH_NAMESPACE,
    )
    account = next(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount")
    cluster.service_account_kubeconfig(BENCH_NAMESPACE, account, kubeconfig)
    return kubeconfig


def _run(counts: tuple[int, ...], run_dir: Path) -> list[dict[str, Any]]:
    from tests.e2e.operator.harness import OperatorProcess, load_example

    results: list[dict[str, Any]] = []
    with own_plane(run_dir / "cluster") as cluster:
        kubeconfig = install_chart_access(cluster, run_dir / "operator-kubeconfig")
        operator = OperatorProcess(kubeconfig=kubeconfig, log_path=run_dir / "operator.log")
        operator.start()
        try:
            manifest = load_example("minimal.yaml")[0]
            for i, count in enumerate(counts):
                result, namespace, volumes = measure(cluster, operator, count, manifest)
                results.append(result)
                _log(f"B5 {count}: {result}")
                if i + 1 < len(counts):  # the plane goes down after the last count
                    _log(f"B5: waiting until namespace {namespace} is gone")
                    retire(cluster, namespace, volumes, timeout=300.0 + count * 3)
        finally:
            operator.stop()
    return results
