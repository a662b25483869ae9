"""B5: the operator against a real local control plane (kwok makes the pods Ready).

Owns a control plane of its own (separate state directory and ports, so no other operator
reconciles these objects), the chart's CRD and RBAC, one operator process run as the chart's
ServiceAccount, and the measurement: apply N PartyQuiz objects, time apply -> Ready, count API
writes over steady-state resyncs, and the operator's memory per object. It stops only the
plane and processes it started.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.procs import BenchError
from bench.stats import percentile
from bench.targets import REPO_ROOT

CLUSTER_SCRIPTS = REPO_ROOT / "hack" / "cluster"
PORT_BASE = "27000"  # the e2e plane uses the default 17000
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
def own_plane(state_dir: Path) -> Iterator[Any]:
    """Start a control plane in ``state_dir`` on its own ports; stop it afterwards."""
    from tests.e2e.kube import Cluster

    env = {"PARTYQUIZ_CLUSTER_DIR": str(state_dir), "PARTYQUIZ_CLUSTER_PORT_BASE": PORT_BASE}
    _script("build.sh", env, timeout=1800)
    _log("starting a control plane for B5")
    try:
        _script("up.sh", env, timeout=300)
        yield Cluster.from_env_lines(_script("status.sh", env, "--env", timeout=60))
    finally:
        try:
            _script("down.sh", env, timeout=120)
        except BenchError as exc:
            _log(f"could not stop the B5 control plane: {exc}")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _ready_times(
    cluster: Any, namespace: str, started: float, expected: int, timeout: float
) -> dict[str, float]:
    """Poll until every PartyQuiz in ``namespace`` is Ready; return seconds since ``started``."""
    ready: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(ready) < expected and time.monotonic() < deadline:
        items = cluster.get_json("partyquizzes", "-n", namespace)["items"]
        now = time.monotonic()
        for pq in items:
            name = pq["metadata"]["name"]
            status = pq.get("status") or {}
            current = status.get("observedGeneration") == pq["metadata"]["generation"]
            if name not in ready and current and status.get("phase") == "Ready":
                ready[name] = now - started
        time.sleep(0.25)
    return ready


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


STAGES = ("DatabaseReady", "CacheReady", "MigrationComplete", "Ready")


def stage_medians(items: list[dict[str, Any]], applied_at: float) -> dict[str, float]:
    """Median seconds from the apply to each condition turning True (1 s resolution)."""
    from datetime import datetime

    seconds: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for pq in items:
        for cond in (pq.get("status") or {}).get("conditions", []):
            if cond.get("type") in seconds and cond.get("status") == "True":
                at = datetime.fromisoformat(cond["lastTransitionTime"].replace("Z", "+00:00"))
                seconds[cond["type"]].append(at.timestamp() - applied_at)
    return {stage: percentile(v, 50) for stage, v in seconds.items() if v}


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


def measure(cluster: Any, operator: Any, count: int, manifest: dict[str, Any]) -> dict[str, Any]:
    """Apply ``count`` PartyQuiz objects in a fresh namespace and measure B5's figures."""
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
    _log(f"B5: applying {count} PartyQuiz objects")
    started = time.monotonic()
    started_wall = time.time()
    cluster.apply(objects, namespace)
    applied = time.monotonic() - started
    ready = _ready_times(cluster, namespace, started, count, timeout=120 + count * 6)
    result: dict[str, Any] = {"count": count, "apply_call_s": applied, "ready": len(ready)}
    if ready:
        times = list(ready.values())
        result.update(
            ready_p50_s=percentile(times, 50),
            ready_p99_s=percentile(times, 99),
            ready_max_s=max(times),
        )
    items = cluster.get_json("partyquizzes", "-n", namespace)["items"]
    result["stages_p50_s"] = stage_medians(items, started_wall)
    # Steady state: let in-flight passes finish, then count writes over at least two
    # resyncs of every object.
    _wait_passes(operator, 2 * count, timeout=60 + count)
    time.sleep(1.0)
    writes_before = operator.writes()
    passes = _wait_passes(operator, 2 * count, timeout=60 + count * 2)
    result.update(resync_passes=passes, resync_writes=operator.writes() - writes_before)
    result["kib_per_object"] = (_rss_kib(operator.process.pid) - rss_before) / count
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    if volumes:
        cluster.kubectl("delete", "pv", *volumes, "--wait=false", "--ignore-not-found", check=False)
    return result


def run_operator_bench(counts: tuple[int, ...], run_dir: Path) -> list[dict[str, Any]]:
    """B5 for each object count; returns one result per count."""
    try:
        return _run(counts, run_dir)
    except (AssertionError, subprocess.SubprocessError, OSError, KeyError) as exc:
        # tests.e2e.kube reports failed kubectl calls and waits as AssertionError subclasses.
        raise BenchError(f"B5 could not complete: {type(exc).__name__}: {exc}") from exc


def _run(counts: tuple[int, ...], run_dir: Path) -> list[dict[str, Any]]:
    from tests.e2e.operator.harness import OperatorProcess, load_example, render_chart

    results: list[dict[str, Any]] = []
    with own_plane(run_dir / "cluster") as cluster:
        cluster.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BENCH_NAMESPACE}},
            BENCH_NAMESPACE,
        )
        objects = render_chart(cluster, BENCH_NAMESPACE, "rbac.clusterWide=true")
        for crd in (o for o in objects if o["kind"] == "CustomResourceDefinition"):
            cluster.kubectl(
                "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(crd)
            )
            cluster.wait(
                f"crd/{crd['metadata']['name']}", "condition=Established", None, timeout=60
            )
        cluster.apply(
            [o for o in objects if o["kind"] not in ("CustomResourceDefinition", "Deployment")],
            BENCH_NAMESPACE,
        )
        account = next(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount")
        kubeconfig = cluster.service_account_kubeconfig(
            BENCH_NAMESPACE, account, run_dir / "operator-kubeconfig"
        )
        operator = OperatorProcess(kubeconfig=kubeconfig, log_path=run_dir / "operator.log")
        operator.start()
        try:
            manifest = load_example("minimal.yaml")[0]
            for count in counts:
                results.append(measure(cluster, operator, count, manifest))
                _log(f"B5 {count}: {results[-1]}")
        finally:
            operator.stop()
    return results
