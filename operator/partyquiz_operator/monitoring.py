"""The alert catalogue of PartyQuiz: every alert defined once, with where its copies ship.

Owns the alerts about the operator and about each installation, in one place: rendered into
each instance's PrometheusRule (``render.monitoring``) and into the chart's static rules file
(``generate``), and the paths of the files the chart ships. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

# Labels the ServiceMonitor puts on every web and ws series (from the Service's labels), so
# rules and dashboard panels select one installation without knowing Service names.
INSTANCE_LABEL: Final = "partyquiz"
COMPONENT_LABEL: Final = "component"
# The operator's job: the chart's Service is "<release>-partyquiz-operator" unless overridden.
OPERATOR_JOB_MATCHER: Final = 'job=~".*partyquiz-operator.*"'

RUNBOOK_BASE_URL: Final = "https://github.com/partyquiz/partyquiz/blob/main/docs/operations.md"
RULES_FILE: Final = Path("charts/partyquiz-operator/files/prometheus-rules.yaml")
DASHBOARD_FILE: Final = Path("charts/partyquiz-operator/files/grafana-dashboard.json")
OPERATOR_GROUP: Final = "partyquiz-operator"
INSTANCES_GROUP: Final = "partyquiz-instances"

Severity = Literal["critical", "warning"]


@dataclass(frozen=True)
class Scope:
    """Which installations a rule set watches: one (namespace and name) or, when unset, all."""

    namespace: str | None = None
    name: str | None = None

    def workload(self, *matchers: str) -> str:
        """Return a selector for web/ws series of the scope, plus ``matchers``."""
        own = [] if self.name is None else [f'{INSTANCE_LABEL}="{self.name}"']
        return _selector(*self._namespace(), *own, *matchers)

    def instance(self, *matchers: str) -> str:
        """Return a selector for the operator's per-instance series of the scope."""
        own = [] if self.name is None else [f'name="{self.name}"']
        return _selector(*self._namespace(), *own, *matchers)

    def _namespace(self) -> list[str]:
        return [] if self.namespace is None else [f'namespace="{self.namespace}"']


def _selector(*matchers: str) -> str:
    present = [m for m in matchers if m]
    return "{" + ",".join(present) + "}" if present else ""


@dataclass(frozen=True)
class Alert:
    """One alerting rule with what a person paged by it needs to read."""

    name: str
    expr: str
    for_: str
    severity: Severity
    summary: str
    description: str

    @property
    def runbook_url(self) -> str:
        """Return the link to the alert's runbook section in docs/operations.md."""
        return f"{RUNBOOK_BASE_URL}#{self.name.lower()}"

    def rule(self) -> dict[str, Any]:
        """Return the alert as a Prometheus rule mapping."""
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": self.runbook_url,
            },
        }


_WEB = f'{COMPONENT_LABEL}="web"'
_WS = f'{COMPONENT_LABEL}="ws"'
_WEB_OR_WS = f'{COMPONENT_LABEL}=~"web|ws"'
_BY_INSTANCE = f"by (namespace, {INSTANCE_LABEL})"


def operator_alerts() -> list[Alert]:
    """Return the alerts about the operator process itself (one set per operator)."""
    reconciles = "partyquiz_operator_reconcile_total"
    return [
        Alert(
            "PartyQuizOperatorDown",
            f"absent(up{{{OPERATOR_JOB_MATCHER}}} == 1)",
            "5m",
            "critical",
            "The PartyQuiz operator is down or not scraped",
            "No PartyQuiz operator target has been up for 5 minutes. Nothing reconciles "
            "PartyQuiz objects: upgrades, rollbacks and drift repair stop.",
        ),
        Alert(
            "PartyQuizOperatorNotReconciling",
            f"sum by (job) (increase({reconciles}{{{OPERATOR_JOB_MATCHER}}}[15m])) == 0"
            f" and on (job) sum by (job) (partyquiz_operator_managed_instances"
            f"{{{OPERATOR_JOB_MATCHER}}}) > 0",
            "5m",
            "critical",
            "The PartyQuiz operator runs but has stopped reconciling",
            "{{ $labels.job }} manages PartyQuiz instances but finished no reconcile pass in "
            "15 minutes although it resyncs every instance each minute by default.",
        ),
        Alert(
            "PartyQuizReconcileErrors",
            f'sum by (job) (rate({reconciles}{{result!="ok"}}[10m]))'
            f" / sum by (job) (rate({reconciles}[10m])) > 0.25",
            "15m",
            "warning",
            "Many PartyQuiz reconcile passes fail",
            "{{ $value | humanizePercentage }} of the reconcile passes of {{ $labels.job }} "
            "ended in an error over the last 10 minutes.",
        ),
        Alert(
            "PartyQuizMigrationFailed",
            'increase(partyquiz_operator_migrations_total{result="failed"}[1h]) > 0',
            "0m",
            "critical",
            "A PartyQuiz database migration failed",
            "A migration Job failed in the last hour. The old version keeps serving; the new "
            "revision is not rolled out and not retried until the spec or the "
            "partyquiz.dev/retry annotation changes.",
        ),
        Alert(
            "PartyQuizRolledBack",
            'increase(partyquiz_operator_rollouts_total{result="rolled_back"}[1h]) > 0',
            "0m",
            "warning",
            "A PartyQuiz rollout was rolled back",
            "The {{ $labels.component }} rollout of a new revision failed in the last hour "
            "and the operator went back to the last known-good revision.",
        ),
    ]


def instance_alerts(scope: Scope) -> list[Alert]:
    """Return the alerts about PartyQuiz installations in ``scope``."""
    s = scope
    closed = "partyquiz_ws_connections_closed_total"
    abnormal = s.workload(_WS, 'code!~"1000|1001|1012"')
    suspended = s.instance('phase="Suspended"')
    moving = s.instance('phase=~"Migrating|RollingOut|RollingBack"')
    web_5xx = s.workload(_WEB, 'status=~"5.."')
    wrong_codes = s.workload(_WEB, 'result=~"not_found|rate_limited"')
    guesses = s.workload(_WS, 'reason="too_many_attempts"')
    # Password hashing (argon2) makes sign-up and log-in slow on purpose.
    timed = s.workload(_WEB, 'handler!~"/api/auth/.*"')
    return [
        Alert(
            "PartyQuizInstanceNotReady",
            f"partyquiz_operator_instance_ready{s.instance()} == 0"
            f" unless on (namespace, name) partyquiz_operator_instance_phase{suspended} == 1",
            "15m",
            "critical",
            "PartyQuiz {{ $labels.namespace }}/{{ $labels.name }} is not ready",
            "The Ready condition of PartyQuiz {{ $labels.namespace }}/{{ $labels.name }} has "
            "been False for 15 minutes (and it is not suspended).",
        ),
        Alert(
            "PartyQuizGenerationNotObserved",
            f"partyquiz_operator_instance_generation{s.instance()}"
            f" > partyquiz_operator_instance_observed_generation{s.instance()}",
            "15m",
            "warning",
            "PartyQuiz {{ $labels.namespace }}/{{ $labels.name }}: spec change not processed",
            "The operator has seen a new spec (generation) of {{ $labels.namespace }}/"
            "{{ $labels.name }} but has not reported a status for it in 15 minutes.",
        ),
        Alert(
            "PartyQuizRolloutStuck",
            f"partyquiz_operator_instance_phase{moving} == 1",
            "30m",
            "warning",
            "PartyQuiz {{ $labels.namespace }}/{{ $labels.name }} is stuck in {{ $labels.phase }}",
            "PartyQuiz {{ $labels.namespace }}/{{ $labels.name }} has been in phase "
            "{{ $labels.phase }} for 30 minutes.",
        ),
        Alert(
            "PartyQuizServiceDown",
            f"up{s.workload(_WEB_OR_WS)} == 0",
            "5m",
            "warning",
            "A PartyQuiz {{ $labels.component }} pod cannot be scraped",
            "{{ $labels.namespace }}/{{ $labels.partyquiz }}: target {{ $labels.instance }} "
            "({{ $labels.component }}) has been down for 5 minutes.",
        ),
        Alert(
            "PartyQuizWebErrorRate",
            f"sum {_BY_INSTANCE} (rate(http_requests_total{web_5xx}[5m]))"
            f" / sum {_BY_INSTANCE} (rate(http_requests_total{s.workload(_WEB)}[5m])) > 0.05",
            "10m",
            "critical",
            "PartyQuiz web answers many requests with 5xx",
            "{{ $value | humanizePercentage }} of the web requests of {{ $labels.namespace }}/"
            "{{ $labels.partyquiz }} failed with a 5xx status over the last 5 minutes.",
        ),
        Alert(
            "PartyQuizWebLatencyHigh",
            "histogram_quantile(0.95, sum by (namespace, partyquiz, le) "
            f"(rate(http_request_duration_seconds_bucket{timed}[5m]))) > 1",
            "10m",
            "warning",
            "PartyQuiz web is slow",
            "The 95th percentile web response time of {{ $labels.namespace }}/"
            "{{ $labels.partyquiz }} (log-in and sign-up excluded) is "
            "{{ $value | humanizeDuration }}.",
        ),
        Alert(
            "PartyQuizWsMassDisconnect",
            f"sum {_BY_INSTANCE} (increase({closed}{abnormal}[5m])) > 20"
            f" and sum {_BY_INSTANCE} (increase({closed}{abnormal}[5m]))"
            f" > 0.3 * sum {_BY_INSTANCE} "
            f"(max_over_time(partyquiz_ws_connections{s.workload(_WS)}[15m]))",
            "0m",
            "critical",
            "Many PartyQuiz players were disconnected at once",
            "{{ $value }} game connections of {{ $labels.namespace }}/{{ $labels.partyquiz }} "
            "closed abnormally in 5 minutes: more than 30% of the recent peak.",
        ),
        Alert(
            "PartyQuizWsBroadcastSlow",
            "histogram_quantile(0.99, sum by (namespace, partyquiz, le) "
            f"(rate(partyquiz_ws_broadcast_duration_seconds_bucket{s.workload(_WS)}[5m])))"
            " > 0.1",
            "10m",
            "warning",
            "PartyQuiz game broadcasts are slow",
            "The 99th percentile time to fan a game update out to players of "
            "{{ $labels.namespace }}/{{ $labels.partyquiz }} is {{ $value | humanizeDuration }}.",
        ),
        Alert(
            "PartyQuizJoinBruteForce",
            f"sum {_BY_INSTANCE} (rate(partyquiz_web_join_attempts_total{wrong_codes}[5m])) > 1"
            f" or sum {_BY_INSTANCE} (rate(partyquiz_ws_messages_rejected_total{guesses}[5m]))"
            " > 0.2",
            "5m",
            "warning",
            "Someone is guessing PartyQuiz join codes",
            "{{ $labels.namespace }}/{{ $labels.partyquiz }} sees a sustained rate of wrong or "
            "rate-limited join codes ({{ $value | humanize }}/s).",
        ),
        Alert(
            "PartyQuizDependencyDown",
            f"max by (namespace, partyquiz, dependency) "
            f"(partyquiz_web_dependency_up{s.workload(_WEB)}) == 0",
            "2m",
            "critical",
            "PartyQuiz web cannot reach its {{ $labels.dependency }}",
            "The web readiness check of {{ $labels.namespace }}/{{ $labels.partyquiz }} has "
            "not reached {{ $labels.dependency }} for 2 minutes (without the database web pods "
            "are not ready; without Redis live games stop).",
        ),
    ]


def all_alerts() -> list[Alert]:
    """Return every alert of the static rules file (operator plus every installation)."""
    return [*operator_alerts(), *instance_alerts(Scope())]


def rule_groups() -> dict[str, Any]:
    """Return the static rules file: the operator group and the all-installations group."""
    return {
        "groups": [
            {"name": OPERATOR_GROUP, "rules": [a.rule() for a in operator_alerts()]},
            {"name": INSTANCES_GROUP, "rules": [a.rule() for a in instance_alerts(Scope())]},
        ]
    }
