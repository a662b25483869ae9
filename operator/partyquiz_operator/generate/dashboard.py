"""The Grafana dashboard of PartyQuiz: overview, operator, web, game service, resources.

Owns the panels and their queries; the chart ships the JSON (``generate.__main__`` writes it).
Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from partyquiz_operator.monitoring import (
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    OPERATOR_JOB_MATCHER,
    RUNBOOK_BASE_URL,
)

DASHBOARD_UID: Final = "partyquiz-overview"
_DS = {"type": "prometheus", "uid": "${datasource}"}
_W = f'{INSTANCE_LABEL}=~"$instance",namespace=~"$namespace"'
_WEB_SEL = f'{{{COMPONENT_LABEL}="web",{_W}}}'
_WS_SEL = f'{{{COMPONENT_LABEL}="ws",{_W}}}'
_OP_INSTANCE_SEL = '{namespace=~"$namespace",name=~"$instance"}'
_OP_SEL = f"{{{OPERATOR_JOB_MATCHER}}}"
_RATE = "[$__rate_interval]"


@dataclass(frozen=True)
class Panel:
    """One dashboard panel: a title, a unit and its queries (expression, legend)."""

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str = "short"
    kind: Literal["timeseries", "stat"] = "timeseries"
    description: str = ""


def _rows() -> list[tuple[str, list[Panel]]]:
    web_rate = f"rate(http_requests_total{_WEB_SEL}{_RATE})"
    web_5xx = f'rate(http_requests_total{{status=~"5..",{_WEB_SEL[1:]}{_RATE})'

    def rated(labels: str, metric: str, selector: str, legend: str = "") -> tuple[str, str]:
        """A rate summed by ``labels``, its legend naming their values after ``legend``."""
        names = " ".join(f"{{{{{label.strip()}}}}}" for label in labels.split(","))
        return f"sum by ({labels}) (rate({metric}{selector}{_RATE}))", legend + names

    def quantile(q: str, metric: str, selector: str, by: str = "le") -> str:
        return f"histogram_quantile({q}, sum by ({by}) (rate({metric}_bucket{selector}{_RATE})))"

    def by(label: str, expr: str, how: str = "sum") -> tuple[str, str]:
        """``expr`` aggregated by ``label``, its legend naming the label's value."""
        return f"{how} by ({label}) ({expr})", f"{{{{{label}}}}}"

    passes = "partyquiz_operator_reconcile_duration_seconds"
    passes_p95 = quantile("0.95", passes, _OP_SEL, "le, handler")
    resources = f'{{{COMPONENT_LABEL}=~"web|ws",{_W}}}'

    def processes(metric: str, rated: bool = False) -> tuple[tuple[str, str], ...]:
        """``metric`` of each web and ws process, and of the operator's."""
        of = [f"{metric}{sel}" for sel in (resources, _OP_SEL)]
        of = [f"rate({expr}{_RATE})" for expr in of] if rated else of
        return (of[0], "{{component}} {{instance}}"), (of[1], "operator")

    return [
        (
            "Overview",
            [
                Panel(
                    "Installations ready",
                    (
                        (f"sum(partyquiz_operator_instance_ready{_OP_INSTANCE_SEL})", "ready"),
                        (f"count(partyquiz_operator_instance_ready{_OP_INSTANCE_SEL})", "total"),
                    ),
                    kind="stat",
                    description="PartyQuiz objects whose Ready condition is True.",
                ),
                Panel(
                    "Players connected",
                    ((f"sum(partyquiz_ws_active_players{_WS_SEL})", "players"),),
                    kind="stat",
                ),
                Panel(
                    "Games running",
                    ((f"sum(partyquiz_ws_owned_games{_WS_SEL})", "games"),),
                    kind="stat",
                    description="Games with an owner replica (each game counted once).",
                ),
                Panel(
                    "Web requests",
                    ((f"sum({web_rate})", "requests/s"),),
                    unit="reqps",
                    kind="stat",
                ),
                Panel("Scrape targets up", (by(COMPONENT_LABEL, f"up{resources}"),), kind="stat"),
            ],
        ),
        (
            "Operator",
            [
                Panel(
                    "Reconcile passes by result",
                    (rated("result", "partyquiz_operator_reconcile_total", _OP_SEL),),
                    unit="ops",
                ),
                Panel("Reconcile duration (p95)", ((passes_p95, "{{handler}}"),), unit="s"),
                Panel(
                    "Kubernetes API requests",
                    (rated("verb, code", "partyquiz_operator_kube_api_requests_total", _OP_SEL),),
                    unit="reqps",
                ),
                Panel(
                    "Installations by phase",
                    (by("phase", f"partyquiz_operator_managed_instances{_OP_SEL}"),),
                ),
                Panel(
                    "Installation ready",
                    (
                        (
                            f"partyquiz_operator_instance_ready{_OP_INSTANCE_SEL}",
                            "{{namespace}}/{{name}}",
                        ),
                    ),
                ),
                Panel(
                    "Migrations and rollouts (1h)",
                    (
                        (
                            "sum by (result) "
                            f"(increase(partyquiz_operator_migrations_total{_OP_SEL}[1h]))",
                            "migration {{result}}",
                        ),
                        (
                            "sum by (component, result) "
                            f"(increase(partyquiz_operator_rollouts_total{_OP_SEL}[1h]))",
                            "{{component}} {{result}}",
                        ),
                    ),
                ),
            ],
        ),
        (
            "Web (rate, errors, duration)",
            [
                Panel("Requests by route", (by("handler", web_rate),), unit="reqps"),
                Panel(
                    "5xx ratio",
                    ((f"(sum({web_5xx}) or vector(0)) / sum({web_rate})", "5xx"),),
                    unit="percentunit",
                ),
                Panel(
                    "Response time",
                    tuple(
                        (quantile(q, "http_request_duration_seconds", _WEB_SEL), f"p{q[2:]}")
                        for q in ("0.5", "0.95", "0.99")
                    ),
                    unit="s",
                ),
                Panel(
                    "Join-code lookups by result",
                    (rated("result", "partyquiz_web_join_attempts_total", _WEB_SEL),),
                    unit="ops",
                ),
                Panel(
                    "Dependencies up",
                    (by("dependency", f"partyquiz_web_dependency_up{_WEB_SEL}", "min"),),
                ),
            ],
        ),
        (
            "Game service",
            [
                Panel("Connections", ((f"sum(partyquiz_ws_connections{_WS_SEL})", "open"),)),
                Panel(
                    "Connections opened and closed",
                    (
                        rated(
                            "result", "partyquiz_ws_connections_opened_total", _WS_SEL, "opened "
                        ),
                        rated("code", "partyquiz_ws_connections_closed_total", _WS_SEL, "closed "),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Messages by type",
                    (
                        rated("type", "partyquiz_ws_messages_received_total", _WS_SEL, "in "),
                        rated("type", "partyquiz_ws_messages_sent_total", _WS_SEL, "out "),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Answers by result",
                    (rated("result", "partyquiz_ws_answers_total", _WS_SEL),),
                    unit="ops",
                ),
                Panel(
                    "Rejected messages by reason",
                    (rated("reason", "partyquiz_ws_messages_rejected_total", _WS_SEL),),
                    unit="ops",
                ),
                Panel(
                    "Broadcast and pub/sub lag (p99)",
                    (
                        (
                            quantile("0.99", "partyquiz_ws_broadcast_duration_seconds", _WS_SEL),
                            "broadcast",
                        ),
                        (quantile("0.99", "partyquiz_ws_pubsub_lag_seconds", _WS_SEL), "lag"),
                    ),
                    unit="s",
                ),
                Panel(
                    "Games and players per replica",
                    (
                        (f"partyquiz_ws_active_games{_WS_SEL}", "games {{instance}}"),
                        (f"partyquiz_ws_active_players{_WS_SEL}", "players {{instance}}"),
                    ),
                ),
                Panel(
                    "Lease takeovers",
                    (
                        (
                            f"sum(increase(partyquiz_ws_lease_takeovers_total{_WS_SEL}[1h]))",
                            "takeovers (1h)",
                        ),
                    ),
                ),
            ],
        ),
        (
            "Resources",
            [
                Panel("CPU", processes("process_cpu_seconds_total", True), unit="percentunit"),
                Panel("Resident memory", processes("process_resident_memory_bytes"), unit="bytes"),
                Panel("Open file descriptors", processes("process_open_fds")),
            ],
        ),
    ]


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": _DS,
        "query": {"query": query, "refId": f"{name}-query"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def build_dashboard() -> dict[str, Any]:
    """Return the Grafana dashboard: overview, operator, web RED, game service, resources."""
    panels: list[dict[str, Any]] = []
    next_id = 1
    y = 0
    for row_title, row_panels in _rows():
        panels.append(
            {
                "type": "row",
                "id": next_id,
                "title": row_title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += 1
        for index, panel in enumerate(row_panels):
            stat = panel.kind == "stat"
            width = 24 // len(row_panels) if stat else 8
            height = 4 if stat else 8
            x = (index * width) % 24
            if x == 0 and index:
                y += height
            panels.append(
                {
                    "type": panel.kind,
                    "id": next_id,
                    "title": panel.title,
                    "description": panel.description,
                    "datasource": _DS,
                    "gridPos": {"h": height, "w": width, "x": x, "y": y},
                    "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                    "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
                    if not stat
                    else {"reduceOptions": {"calcs": ["lastNotNull"]}},
                    "targets": [
                        {
                            "datasource": _DS,
                            "expr": expr,
                            "legendFormat": legend,
                            "refId": chr(ord("A") + i),
                        }
                        for i, (expr, legend) in enumerate(panel.queries)
                    ],
                }
            )
            next_id += 1
        y += 4 if row_panels and row_panels[-1].kind == "stat" else 8
    return {
        "uid": DASHBOARD_UID,
        "title": "PartyQuiz",
        "description": "PartyQuiz installations: operator, web, game service and resources.",
        "tags": ["partyquiz"],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "annotations": {"list": []},
        "links": [
            {
                "title": "Runbooks",
                "type": "link",
                "url": RUNBOOK_BASE_URL + "#alerts-and-runbooks",
                "targetBlank": True,
            }
        ],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                },
                _variable(
                    "namespace",
                    "Namespace",
                    f'label_values(up{{{COMPONENT_LABEL}=~"web|ws"}}, namespace)',
                ),
                _variable(
                    "instance",
                    "PartyQuiz",
                    f'label_values(up{{{COMPONENT_LABEL}=~"web|ws",namespace=~"$namespace"}}, '
                    f"{INSTANCE_LABEL})",
                ),
            ]
        },
        "panels": panels,
    }


def dashboard_expressions(dashboard: Mapping[str, Any]) -> list[str]:
    """Return every query expression of a dashboard (rows included), in panel order."""
    found: list[str] = []
    for panel in dashboard.get("panels", []):
        found += [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
        found += dashboard_expressions({"panels": panel.get("panels", [])})
    return found
