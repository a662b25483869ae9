"""Alert rules: generated from one source, accepted by promtool, and each alert fires on its
problem and stays silent on a healthy installation (promtool unit tests in alerts_test.yaml)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from partyquiz_operator import monitoring
from partyquiz_operator.generate import __main__ as generate
from partyquiz_operator.generate import dashboard
from partyquiz_operator.metrics import OperatorMetrics
from partyquiz_operator.render import common, network
from partyquiz_operator.render import monitoring as rendered
from partyquiz_web.metrics import WebMetrics
from partyquiz_ws.metrics import WsMetrics

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ALERT_TESTS = HERE / "alerts_test.yaml"
OPERATIONS_DOC = REPO / "docs" / "operations.md"


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        pytest.fail("promtool is missing: run `hack/bootstrap.sh test` (Debian package prometheus)")
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def catalogue() -> set[str]:
    """Every series name the three services expose, plus what Prometheus adds itself."""
    names = {"up"}
    for registry in (OperatorMetrics().registry, WebMetrics().registry, WsMetrics().registry):
        for metric in registry.collect():
            names.add(metric.name)
            names.update(sample.name for sample in metric.samples)
            if metric.type == "histogram":
                names.update(f"{metric.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
            if metric.type == "counter":
                names.add(f"{metric.name}_total")
    return names


_FUNCTIONS = {
    "absent",
    "and",
    "by",
    "histogram_quantile",
    "increase",
    "max",
    "max_over_time",
    "min",
    "on",
    "or",
    "rate",
    "sum",
    "unless",
    "vector",
    "count",
    "without",
}


def metric_names(expr: str) -> set[str]:
    """Return the metric names an expression selects (identifiers before `{`, `[` or `)`)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_matchers = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", without_strings)
    without_groupings = re.sub(r"\b(by|on|without)\s*\([^)]*\)", "", without_matchers)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_groupings))
    return {w for w in words if w not in _FUNCTIONS and not w.startswith("__")} - {"le"}


def test_generated_rules_and_dashboard_match_their_source() -> None:
    for path, content in generate.expected_files(REPO).items():
        assert path.read_text() == content, (
            f"{path.relative_to(REPO)} is out of date: "
            "run `uv run python -m partyquiz_operator.generate`"
        )


def test_check_mode_reports_stale_files_and_write_mode_fixes_them(tmp_path: Path) -> None:
    assert generate.main(["--root", str(tmp_path), "--check"]) == 1
    assert generate.main(["--root", str(tmp_path)]) == 0
    assert generate.main(["--root", str(tmp_path), "--check"]) == 0


def test_promtool_accepts_the_static_rules_file() -> None:
    result = promtool("check", "rules", str(monitoring.RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(monitoring.all_alerts())} rules found" in result.stdout


def test_every_alert_fires_on_its_problem_and_none_on_a_healthy_installation() -> None:
    result = promtool("test", "rules", ALERT_TESTS.name, cwd=HERE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_promtool_tests_cover_every_alert_both_ways() -> None:
    spec = yaml.safe_load(ALERT_TESTS.read_text())
    fired: set[str] = set()
    silent_when_healthy: set[str] = set()
    for case in spec["tests"]:
        for check in case["alert_rule_test"]:
            if check["exp_alerts"]:
                fired.add(check["alertname"])
            elif case["name"].startswith("healthy"):
                silent_when_healthy.add(check["alertname"])
    names = {alert.name for alert in monitoring.all_alerts()}
    assert names - fired == set(), "alerts without a test that makes them fire"
    assert names - silent_when_healthy == set(), "alerts not checked silent when healthy"


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    doc = OPERATIONS_DOC.read_text()
    headings = {h.strip().lower() for h in re.findall(r"^### (.+)$", doc, re.MULTILINE)}
    for alert in monitoring.all_alerts():
        rule = alert.rule()
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor in headings, f"docs/operations.md has no runbook heading for {alert.name}"


def test_rules_and_dashboard_use_only_metrics_the_services_expose() -> None:
    known = catalogue()
    expressions = [a.expr for a in monitoring.all_alerts()]
    expressions += dashboard.dashboard_expressions(dashboard.build_dashboard())
    for expr in expressions:
        unknown = metric_names(expr) - known
        assert not unknown, f"{expr!r} uses metrics no service exposes: {sorted(unknown)}"


def test_label_sets_never_carry_ids_codes_or_raw_paths() -> None:
    forbidden = {"game", "game_id", "code_value", "join_code", "player", "player_id", "path"}
    for registry in (OperatorMetrics().registry, WebMetrics().registry, WsMetrics().registry):
        for metric in registry.collect():
            for sample in metric.samples:
                assert not forbidden & set(sample.labels), (metric.name, sample.labels)


def instance(namespace: str = "games", name: str = "quiz") -> common.Instance:
    from partyquiz_operator import api

    spec = api.parse_spec(
        {
            "version": "1.4.0",
            "database": {"managed": {}},
            "redis": {"managed": {}},
        }
    )
    return common.Instance(name=name, namespace=namespace, uid="uid-1", spec=spec)


def test_per_instance_rule_watches_only_its_installation_and_passes_promtool(
    tmp_path: Path,
) -> None:
    rule = rendered.build_prometheus_rule(instance(), labels={"release": "prometheus"})
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert rule["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    rules = rule["spec"]["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {
        a.name for a in monitoring.instance_alerts(monitoring.Scope())
    }
    for r in rules:
        selectors = re.findall(r"\{[^}]*\}", r["expr"])
        assert selectors, r["expr"]
        for selector in selectors:
            assert 'namespace="games"' in selector, r["expr"]
            assert 'partyquiz="quiz"' in selector or 'name="quiz"' in selector, r["expr"]
    path = tmp_path / "instance-rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_service_monitor_scrapes_the_metrics_ports_of_web_and_ws_services() -> None:
    inst = instance()
    monitor = rendered.build_service_monitor(inst, interval="15s")
    services = [
        s for s in network.build_services(inst) if s["metadata"]["name"] in ("quiz-web", "quiz-ws")
    ]
    selector = monitor["spec"]["selector"]
    ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    for service in services:
        labels = service["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in selector["matchLabels"].items())
        for expression in selector["matchExpressions"]:
            assert labels[expression["key"]] in expression["values"]
        assert {p["name"] for p in service["spec"]["ports"]} & ports
    assert all(
        e["path"] == "/metrics" and e["interval"] == "15s" for e in monitor["spec"]["endpoints"]
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["games"]}
    targets = {r["targetLabel"] for e in monitor["spec"]["endpoints"] for r in e["relabelings"]}
    assert targets == {monitoring.INSTANCE_LABEL, monitoring.COMPONENT_LABEL}


def test_spec_monitoring_decides_which_objects_are_built() -> None:
    from partyquiz_operator import api

    def objects(monitoring_spec: dict[str, Any]) -> list[str]:
        spec = api.parse_spec(
            {
                "version": "1.4.0",
                "database": {"managed": {}},
                "redis": {"managed": {}},
                "monitoring": monitoring_spec,
            }
        )
        inst = common.Instance(name="quiz", namespace="games", uid="u", spec=spec)
        return [o["kind"] for o in rendered.build_monitoring_objects(inst)]

    assert objects({}) == []
    assert objects({"serviceMonitor": {"enabled": True}}) == ["ServiceMonitor"]
    both = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
    assert objects(both) == ["ServiceMonitor", "PrometheusRule"]


def test_missing_prometheus_operator_crds_are_a_condition_not_a_failure() -> None:
    wanted = {"ServiceMonitor", "PrometheusRule"}
    status, reason, message = rendered.monitoring_condition(wanted, set())
    assert (status, reason) == ("False", "PrometheusOperatorCRDsMissing")
    assert "PrometheusRule, ServiceMonitor" in message
    status, reason, _ = rendered.monitoring_condition(wanted, {"ServiceMonitor"})
    assert (status, reason) == ("False", "PrometheusOperatorCRDsMissing")
    assert rendered.monitoring_condition(wanted, wanted | {"Probe"})[:2] == ("True", "Applied")
