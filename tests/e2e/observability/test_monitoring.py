"""Monitoring on the local control plane: a PartyQuiz asking for it gets its ServiceMonitor and
PrometheusRule once the Prometheus Operator CRDs exist, and a clear condition while they do not;
the operator's /metrics passes promtool, agrees with the status, and feeds the dashboard.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
import yaml
from tests.e2e.kube import Cluster, wait_for
from tests.e2e.operator.harness import (
    CHART,
    OperatorProcess,
    get_pq,
    load_example,
    provide_volumes,
    wait_for_phase,
)
from tests.integration.observability.prometheus import (
    PROMTOOL,
    Target,
    check_metrics,
    dashboard_expressions,
    run_prometheus,
)

from partyquiz_operator import monitoring

REPO = Path(__file__).resolve().parents[3]
MONITORING_CRDS = Path(__file__).resolve().parent / "monitoring-crds.yaml"
# A release of its own: the operator suite's release and namespace come and go with its runs.
RELEASE = "pq-obs"
OPERATOR_NAMESPACE = "partyquiz-observability-e2e"
SERVICE_ACCOUNT = f"{RELEASE}-partyquiz-operator"
CRD_NAMES = ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com")
MONITORED: dict[str, Any] = {
    "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
}


def remove_monitoring_crds(cluster: Cluster) -> None:
    cluster.kubectl("delete", "crd", *CRD_NAMES, "--ignore-not-found", "--wait=true")


def install_monitoring_crds(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(MONITORING_CRDS))
    for name in CRD_NAMES:
        cluster.wait(f"crd/{name}", "condition=Established", None, timeout=60)


def render_release(cluster: Cluster, *values: str) -> list[dict[str, Any]]:
    """Render the chart as this module's own release (its names never clash with other suites)."""
    args = ["template", RELEASE, str(CHART), "-n", OPERATOR_NAMESPACE, "--include-crds"]
    args += ["--kube-version", cluster.version]
    for value in values:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(cluster.helm(*args).stdout) if doc]


@pytest.fixture(scope="module")
def operator_account(cluster: Cluster) -> Iterator[str]:
    """The chart's CRD, ServiceAccount and cluster-wide RBAC (what a release installs)."""
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        OPERATOR_NAMESPACE,
    )
    objects = render_release(cluster, "rbac.clusterWide=true")
    for crd in (o for o in objects if o["kind"] == "CustomResourceDefinition"):
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(crd)
        )
        cluster.wait(f"crd/{crd['metadata']['name']}", "condition=Established", None, timeout=60)
    rest = [o for o in objects if o["kind"] not in ("CustomResourceDefinition", "Deployment")]
    cluster.apply(rest, OPERATOR_NAMESPACE)
    yield OPERATOR_NAMESPACE
    for kind in ("clusterrolebinding", "clusterrole"):
        cluster.kubectl("delete", kind, SERVICE_ACCOUNT, "--ignore-not-found")
    cluster.kubectl("delete", "namespace", OPERATOR_NAMESPACE, "--ignore-not-found", "--wait=false")


@pytest.fixture
def monitoring_crds(cluster: Cluster) -> Iterator[None]:
    """No Prometheus Operator CRDs at the start; whatever the test installs goes afterwards."""
    remove_monitoring_crds(cluster)
    yield
    remove_monitoring_crds(cluster)


@pytest.fixture
def operator(
    cluster: Cluster, operator_account: str, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator as the chart's ServiceAccount, watching only this test's namespace."""
    kubeconfig = cluster.service_account_kubeconfig(
        operator_account, SERVICE_ACCOUNT, tmp_path / "kubeconfig"
    )
    handle = OperatorProcess(
        kubeconfig=kubeconfig, log_path=tmp_path / "operator.log", namespaces=(namespace,)
    )
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


def monitored_quiz(cluster: Cluster, namespace: str, monitoring_spec: dict[str, Any]) -> None:
    manifest = copy.deepcopy(load_example("minimal.yaml")[0])
    manifest["spec"]["monitoring"] = monitoring_spec
    provide_volumes(cluster, namespace, ["data-quiz-postgres-0", "data-quiz-redis-0"])
    cluster.apply(manifest, namespace)


def condition(pq: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in pq["status"].get("conditions", []) if c["type"] == type_), None)


def wait_for_condition(
    cluster: Cluster, namespace: str, type_: str, status: str | None, reason: str | None = None
) -> dict[str, Any]:
    """Wait until the condition has ``status`` (and ``reason``), or is absent for None."""

    def reached() -> dict[str, Any] | None:
        pq = get_pq(cluster, namespace, "quiz")
        found = condition(pq, type_) if "status" in pq else None
        if status is None:
            return pq if "status" in pq and found is None else None
        if found is None or found["status"] != status:
            return None
        return pq if reason is None or found["reason"] == reason else None

    result: dict[str, Any] = wait_for(
        reached, timeout=90, interval=0.5, message=f"{type_}={status} ({reason})"
    )
    return result


def owned_by(obj: dict[str, Any], pq: dict[str, Any]) -> bool:
    return any(o["uid"] == pq["metadata"]["uid"] for o in obj["metadata"]["ownerReferences"])


def test_monitoring_objects_follow_the_crds_and_the_spec(
    cluster: Cluster, namespace: str, monitoring_crds: None, operator: OperatorProcess
) -> None:
    monitored_quiz(cluster, namespace, MONITORED)

    # Without the CRDs the installation still becomes Ready and says what is missing.
    pq = wait_for_phase(cluster, namespace, "quiz", "Ready", timeout=180)
    missing = wait_for_condition(
        cluster, namespace, "MonitoringReady", "False", "PrometheusOperatorCRDsMissing"
    )
    found = condition(missing, "MonitoringReady")
    assert found is not None
    assert "ServiceMonitor" in found["message"]
    assert "PrometheusRule" in found["message"]
    assert condition(missing, "Ready") == condition(pq, "Ready")
    events = cluster.get_json(
        "events", "-n", namespace, "--field-selector", "involvedObject.kind=PartyQuiz"
    )["items"]
    assert "MonitoringReadyFalse" in {e["reason"] for e in events}

    # Installing the CRDs is picked up by the next resync.
    install_monitoring_crds(cluster)
    pq = wait_for_condition(cluster, namespace, "MonitoringReady", "True", "Applied")
    monitor = cluster.get_json("servicemonitor", "quiz", "-n", namespace)
    rule = cluster.get_json("prometheusrule", "quiz", "-n", namespace)
    for obj in (monitor, rule):
        assert owned_by(obj, pq)
        assert obj["metadata"]["labels"]["release"] == "prom"
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"http", "ws"}
    services = cluster.get_json("services", "-n", namespace)["items"]
    ports = {p["name"] for s in services for p in s["spec"]["ports"]}
    assert {"http", "ws"} <= ports
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {a.name for a in monitoring.instance_alerts(monitoring.Scope())}
    rules_file = Path(operator.log_path).parent / "stored-rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    still_ready = condition(pq, "Ready")
    assert still_ready is not None
    assert still_ready["status"] == "True"

    # Applied once: later passes find both objects up to date and write nothing.
    writes = operator.writes()
    operator.wait_passes(2)
    assert operator.writes() == writes

    # Asking for nothing removes both objects and the condition.
    cluster.kubectl(
        "patch",
        "pq",
        "quiz",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps(
            {
                "spec": {
                    "monitoring": {
                        "serviceMonitor": {"enabled": False},
                        "prometheusRule": {"enabled": False},
                    }
                }
            }
        ),
    )
    wait_for_condition(cluster, namespace, "MonitoringReady", None)

    def monitoring_objects() -> str:
        kinds = "servicemonitors,prometheusrules"
        return str(cluster.kubectl("get", kinds, "-n", namespace, "-o", "name").stdout.strip())

    wait_for(lambda: monitoring_objects() == "", timeout=60, message=monitoring_objects)
    assert condition(get_pq(cluster, namespace, "quiz"), "MonitoringReady") is None


def test_operator_metrics_agree_with_the_status_and_feed_the_dashboard(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    monitored_quiz(cluster, namespace, {})
    pq = wait_for_phase(cluster, namespace, "quiz", "Ready", timeout=180)
    operator.wait_passes(1)

    with urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as response:
        exposition = response.read()
    checked = check_metrics(exposition)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    samples = operator.metrics()
    ident = (("name", "quiz"), ("namespace", namespace))
    ready = condition(pq, "Ready")
    assert ready is not None
    assert samples[("partyquiz_operator_instance_ready", ident)] == (ready["status"] == "True")
    phase = (*ident, ("phase", "Ready"))
    assert samples[("partyquiz_operator_instance_phase", phase)] == 1
    generation = pq["metadata"]["generation"]
    assert samples[("partyquiz_operator_instance_generation", ident)] == generation
    assert samples[("partyquiz_operator_instance_observed_generation", ident)] == generation

    target = Target(
        "partyquiz-operator", f"127.0.0.1:{operator.metrics_port}", {}, honor_labels=True
    )
    with run_prometheus([target]) as prometheus:
        prometheus.wait_for('up{job="partyquiz-operator"} == 1')
        # Two scrapes with a pass between them, so every rate has something to compare.
        prometheus.wait_for(
            'increase(partyquiz_operator_reconcile_total{result="ok"}[15s]) > 0', timeout=90
        )
        operator_queries = [
            e
            for e in dashboard_expressions(REPO / monitoring.DASHBOARD_FILE)
            if "partyquiz_operator" in e or "partyquiz-operator" in e
        ]
        assert len(operator_queries) >= 8
        empty = []
        for expr in operator_queries:
            try:
                prometheus.wait_for(expr, timeout=30)
            except AssertionError:
                empty.append(expr)
        assert empty == [], f"operator dashboard queries without data: {empty}"
        # The instance's alerts from its PrometheusRule are silent on a Ready installation,
        # and so are the operator's own (it is up and reconciling).
        scope = monitoring.Scope(namespace=namespace, name="quiz")
        for alert in [*monitoring.instance_alerts(scope), *monitoring.operator_alerts()]:
            if "partyquiz_operator" in alert.expr or "partyquiz-operator" in alert.expr:
                assert prometheus.query(alert.expr) == [], alert.name
        ready_now = prometheus.query(
            f'partyquiz_operator_instance_ready{{namespace="{namespace}",name="quiz"}}'
        )
        assert [r["value"][1] for r in ready_now] == ["1"]


def test_chart_ships_the_dashboard_and_the_operator_alerts(
    cluster: Cluster, tmp_path: Path
) -> None:
    objects = render_release(
        cluster,
        "grafanaDashboard.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "metrics.serviceMonitor.enabled=true",
    )
    by_kind = {o["kind"]: o for o in objects}
    dashboard = by_kind["ConfigMap"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(dashboard["data"]["partyquiz.json"])
    assert shipped == json.loads((REPO / monitoring.DASHBOARD_FILE).read_text())
    rule = by_kind["PrometheusRule"]
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert alerts == [a.name for a in monitoring.operator_alerts()]
    path = tmp_path / "operator-rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    monitor = by_kind["ServiceMonitor"]
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    # Without the options, none of it is rendered.
    kinds = {o["kind"] for o in render_release(cluster)}
    assert not kinds & {"ConfigMap", "PrometheusRule", "ServiceMonitor"}
    assert CHART.exists()
