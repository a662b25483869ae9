"""The ``PartyQuiz`` API (``partyquiz.dev/v1alpha1``): spec and status as pydantic models.

This module is the single source of truth for the CRD: ``crdgen`` turns these models, their
field descriptions and the CEL rules attached here into the CRD YAML and the reference docs.
It holds no logic beyond parsing and must not import kopf or the Kubernetes client.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

GROUP = "partyquiz.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PartyQuiz"
PLURAL = "partyquizzes"
SINGULAR = "partyquiz"
SHORT_NAMES = ("pq",)
# Setting this annotation on a PartyQuiz to a new value retries a failed revision.
RETRY_ANNOTATION = "partyquiz.dev/retry"
CATEGORIES = ("partyquiz",)

DEFAULT_WEB_IMAGE_REPOSITORY = "ghcr.io/partyquiz/partyquiz-web"
DEFAULT_WS_IMAGE_REPOSITORY = "ghcr.io/partyquiz/partyquiz-ws"
DEFAULT_POSTGRES_IMAGE = "docker.io/library/postgres:16.4"
DEFAULT_REDIS_IMAGE = "docker.io/library/redis:7.4"

# Children are named "<instance>-<suffix>"; the longest suffix is "-postgres-headless" and Service
# names are DNS-1035 labels of at most 63 characters, with room left for StatefulSet pod names.
MAX_NAME_LENGTH = 40

# The version labels every pod (a label value: at most 63 characters, no "+"), so a semantic
# version without build metadata.
SEMVER_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]*[0-9A-Za-z])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - a regex, not a secret
# An image reference as the container runtimes parse it: [registry[:port]/]path[:tag][@digest].
_PATH_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_HOST_PART = r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?"
_REGISTRY = rf"{_HOST_PART}(\.{_HOST_PART})*(:[0-9]+)?"
IMAGE_PATTERN = (
    rf"^({_REGISTRY}/)?{_PATH_COMPONENT}(/{_PATH_COMPONENT})*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[a-z0-9]+([+._-][a-z0-9]+)*:[0-9a-fA-F]{32,})?$"
)
KEY_PATTERN = (  # a label or annotation key: [DNS subdomain prefix/]name
    "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_KEY_CEL = f"self.all(k, k.matches('{KEY_PATTERN}'))"


# RFC 1918 and unique-local networks: where cluster pod networks, and so ingress controllers, live.
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


def _rules(*rules: dict[str, str]) -> dict[str, Any]:
    """Attach CEL validation rules (``x-kubernetes-validations``) to a schema."""
    return {"x-kubernetes-validations": list(rules)}


def _extra(description: str, *, most: int, rules: dict[str, Any]) -> Any:
    """Return the field of extra labels or annotations (none by default)."""
    return Field(
        default_factory=dict, max_length=most, description=description, json_schema_extra=rules
    )


def _dns_name(description: str, *, required: bool = False) -> Any:
    """Return the field of a DNS subdomain name (a Kubernetes object's or a host's)."""
    bounds: dict[str, Any] = {"min_length": 1} if required else {"default": None}
    return Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description=description, **bounds)


def _image(default: str | None, description: str) -> Any:
    """Return the field of a container image reference (tag or digest)."""
    return Field(default=default, max_length=512, pattern=IMAGE_PATTERN, description=description)


class _Model(BaseModel):
    """Base for API types: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class SecretKeyRef(_Model):
    """A key in a Secret in the PartyQuiz's namespace."""

    name: str = _dns_name(
        "Name of the Secret, in the same namespace as the PartyQuiz.", required=True
    )
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="Key inside the Secret whose value is used.",
    )


QUANTITY_RULE = {
    "rule": "isQuantity(self)",
    "message": "must be a Kubernetes quantity such as 250m, 1, 256Mi or 10Gi",
}


def _at_most(limit: str, what: str) -> dict[str, str]:
    return {
        "rule": f"!isQuantity(self) || quantity(self).compareTo(quantity('{limit}')) <= 0",
        "message": f"{what} must be at most {limit}",
    }


NOT_NEGATIVE_RULE = {
    "rule": "!isQuantity(self) || quantity(self).compareTo(quantity('0')) >= 0",
    "message": "must not be negative",
}


class ResourceList(_Model):
    """Amounts of CPU and memory."""

    cpu: str | None = Field(
        default=None,
        max_length=32,
        description="CPU as a Kubernetes quantity, for example 250m or 2.",
        json_schema_extra=_rules(QUANTITY_RULE, NOT_NEGATIVE_RULE, _at_most("1k", "cpu")),
    )
    memory: str | None = Field(
        default=None,
        max_length=32,
        description="Memory as a Kubernetes quantity, for example 256Mi or 1Gi.",
        json_schema_extra=_rules(QUANTITY_RULE, NOT_NEGATIVE_RULE, _at_most("64Ti", "memory")),
    )


class Resources(_Model):
    """Compute resources of a container; requests are what scheduling reserves."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": "!has(self.requests) || !has(self.limits) || "
                "!has(self.requests.memory) || !has(self.limits.memory) || "
                "quantity(self.requests.memory).compareTo(quantity(self.limits.memory)) <= 0",
                "message": "resources.requests.memory must not exceed resources.limits.memory",
            },
            {
                "rule": "!has(self.requests) || !has(self.limits) || "
                "!has(self.requests.cpu) || !has(self.limits.cpu) || "
                "quantity(self.requests.cpu).compareTo(quantity(self.limits.cpu)) <= 0",
                "message": "resources.requests.cpu must not exceed resources.limits.cpu",
            },
        )
    )

    requests: ResourceList | None = Field(
        default=None, description="Minimum resources reserved for the container."
    )
    limits: ResourceList | None = Field(
        default=None, description="Maximum resources the container may use."
    )


def _resources(cpu: str, memory: str, memory_limit: str) -> Resources:
    return Resources(
        requests=ResourceList(cpu=cpu, memory=memory),
        limits=ResourceList(memory=memory_limit),
    )


class Images(_Model):
    """Container images; each defaults to the official image tagged with ``spec.version``."""

    web: str | None = _image(
        None,
        "Web image reference (tag or digest). "
        "Default: ghcr.io/partyquiz/partyquiz-web:<spec.version>.",
    )
    ws: str | None = _image(
        None,
        "Game (ws) image reference (tag or digest). "
        "Default: ghcr.io/partyquiz/partyquiz-ws:<spec.version>.",
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent",
        description="Image pull policy for the web, ws and migration containers.",
    )


class Autoscaling(_Model):
    """Horizontal autoscaling of the web Deployment on CPU utilisation."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": "self.minReplicas <= self.maxReplicas",
                "message": "web.autoscaling.minReplicas must not exceed maxReplicas",
            }
        )
    )

    min_replicas: int = Field(default=2, ge=1, le=100, description="Lower bound of replicas.")
    max_replicas: int = Field(default=10, ge=1, le=100, description="Upper bound of replicas.")
    target_cpu_utilization_percentage: int = Field(
        default=75,
        ge=10,
        le=100,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU utilisation (percent of requests) the autoscaler aims for.",
    )


class Web(_Model):
    """The web service (HTTP API and pages)."""

    replicas: int = Field(
        default=2,
        ge=0,
        le=50,
        description="Number of web pods. Ignored while autoscaling is set.",
    )
    resources: Resources = Field(
        default_factory=lambda: _resources("100m", "256Mi", "512Mi"),
        description="Resources of the web container.",
    )
    autoscaling: Autoscaling | None = Field(
        default=None,
        description="Enables a HorizontalPodAutoscaler for the web Deployment when set.",
    )
    public_ws_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^wss?://[^\s]+$",
        alias="publicWsUrl",
        description="WebSocket URL players' browsers open (ws:// or wss://). Unset: the page's "
        "own host and scheme with path /ws, which the Ingress routes to the game service.",
    )


class Ws(_Model):
    """The real-time game service (websockets)."""

    replicas: int = Field(default=2, ge=0, le=50, description="Number of game pods.")
    resources: Resources = Field(
        default_factory=lambda: _resources("100m", "128Mi", "256Mi"),
        description="Resources of the game container.",
    )
    drain_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="Seconds a terminating game pod keeps serving running games before it "
        "closes connections; the pod's grace period is this plus 15 seconds (a 3-second "
        "pre-stop pause so Services stop routing to it first, 10 for the last close "
        "handshakes and 2 to exit).",
    )


STORAGE_RULES = (
    QUANTITY_RULE,
    {
        "rule": "!isQuantity(self) || quantity(self).compareTo(quantity('1Mi')) >= 0",
        "message": "storage must be at least 1Mi",
    },
    _at_most("64Ti", "storage"),
)


def _cron_field(value: str, *, any_day: bool = False) -> str:
    start = r"\*|\?" if any_day else r"\*"
    item = rf"({start}|({value})(-({value}))?)(/[0-9]{{1,2}})?"
    return rf"{item}(,{item})*"


_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
# Five fields in their ranges (names of months and days allowed), or a macro.
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    + r"\s+".join(
        (
            _cron_field(r"[0-5]?[0-9]"),
            _cron_field(r"[01]?[0-9]|2[0-3]"),
            _cron_field(r"0?[1-9]|[12][0-9]|3[01]", any_day=True),
            _cron_field(rf"0?[1-9]|1[0-2]|{_MONTHS}|{_MONTHS.lower()}"),
            _cron_field(rf"[0-7]|{_DAYS}|{_DAYS.lower()}", any_day=True),
        )
    )
    + ")$"
)


def _volume_rules(path: str) -> dict[str, Any]:
    """Return the rules of a store's data volume at ``path``: it grows, never shrinks or moves."""
    return _rules(
        {
            "rule": "quantity(self.storage).compareTo(quantity(oldSelf.storage)) >= 0",
            "message": f"{path}.storage cannot shrink: a smaller volume would lose data; keep "
            "the old size or grow it",
        },
        {
            "rule": "has(self.storageClassName) == has(oldSelf.storageClassName) && "
            "(!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",
            "message": f"{path}.storageClassName is immutable: changing it would start on an "
            "empty volume",
        },
    )


def _storage_class(volume: str) -> Any:
    """Return the field of a volume's (immutable) StorageClass."""
    return _dns_name(f"StorageClass of {volume}; the cluster default when unset. Immutable.")


def _storage(default: str, description: str) -> Any:
    """Return the field of a volume's size: a quantity that may grow, never shrink."""
    return Field(
        default=default,
        max_length=32,
        description=description,
        json_schema_extra=_rules(*STORAGE_RULES),
    )


def _one_of_rules(store: str, instead: str) -> dict[str, Any]:
    """Return the rules of a store that is either managed or external, and stays so."""
    return _rules(
        {
            "rule": "has(self.managed) != has(self.external)",
            "message": f"set exactly one of {store}.managed or {store}.external",
        },
        {
            "rule": "has(self.managed) == has(oldSelf.managed)",
            "message": f"{store} cannot switch between managed and external; {instead}",
        },
    )


class DatabaseBackup(_Model):
    """Backups of the managed database: custom-format pg_dump files on their own volume.

    The volume also takes the dump made before each migration (``migrations.backupFirst``).
    """

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": "quantity(self.storage).compareTo(quantity(oldSelf.storage)) >= 0",
                "message": "database.managed.backup.storage cannot shrink; keep the old size "
                "or grow it",
            },
        )
    )

    schedule: str | None = Field(
        default=None,
        max_length=64,
        pattern=CRON_PATTERN,
        description="Cron schedule (UTC) of regular backups, for example '0 3 * * *'; "
        "no scheduled backups when unset.",
    )
    retain: int = Field(
        default=7,
        ge=1,
        le=365,
        description="Dumps of each kind (scheduled, before-migration) kept on the volume; "
        "each backup Job deletes the oldest beyond this count after a successful dump.",
    )
    storage: str = _storage(
        "10Gi", "Size of the backup volume (<name>-backups). May grow, never shrink."
    )


class ManagedDatabase(_Model):
    """A PostgreSQL StatefulSet run by the operator, with its data on a PersistentVolumeClaim."""

    model_config = ConfigDict(json_schema_extra=_volume_rules("database.managed"))

    storage: str = _storage("10Gi", "Size of the data volume. May grow, never shrink.")
    storage_class_name: str | None = _storage_class("the data volume")
    image: str = _image(
        DEFAULT_POSTGRES_IMAGE, "PostgreSQL image (official image layout, PostgreSQL 15 or newer)."
    )
    resources: Resources = Field(
        default_factory=lambda: _resources("250m", "256Mi", "1Gi"),
        description="Resources of the PostgreSQL container.",
    )
    backup: DatabaseBackup = Field(
        default_factory=DatabaseBackup,
        description="Backup volume, schedule and retention (see docs/operations.md).",
    )


class ExternalDatabase(_Model):
    """A PostgreSQL database run elsewhere, reached through a URL kept in a Secret."""

    secret_ref: SecretKeyRef = Field(
        description="Secret key holding the SQLAlchemy URL, "
        "for example postgresql+asyncpg://user:password@host:5432/partyquiz.",
    )


class Database(_Model):
    """Where the relational data lives: exactly one of managed or external."""

    model_config = ConfigDict(
        json_schema_extra=_one_of_rules(
            "database", "move the data first, then create a new PartyQuiz"
        )
    )

    managed: ManagedDatabase | None = Field(
        default=None, description="Run PostgreSQL as part of this PartyQuiz."
    )
    external: ExternalDatabase | None = Field(
        default=None, description="Use an existing PostgreSQL database."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Database:
        if (self.managed is None) == (self.external is None):
            raise ValueError("set exactly one of database.managed or database.external")
        return self


class ManagedRedis(_Model):
    """A Redis StatefulSet run by the operator, with an append-only file on a volume."""

    model_config = ConfigDict(json_schema_extra=_volume_rules("redis.managed"))

    storage: str = _storage("1Gi", "Size of the append-only-file volume. May grow, never shrink.")
    storage_class_name: str | None = _storage_class("the volume")
    image: str = _image(
        DEFAULT_REDIS_IMAGE, "Redis image (official image layout, Redis 7 or newer)."
    )
    resources: Resources = Field(
        default_factory=lambda: _resources("100m", "128Mi", "512Mi"),
        description="Resources of the Redis container.",
    )


class ExternalRedis(_Model):
    """A Redis run elsewhere, reached through a URL kept in a Secret."""

    secret_ref: SecretKeyRef = Field(
        description="Secret key holding the Redis URL, for example redis://:password@host:6379/0.",
    )


class Redis(_Model):
    """Where live game state and fan-out live: exactly one of managed or external."""

    model_config = ConfigDict(
        json_schema_extra=_one_of_rules("redis", "create a new PartyQuiz instead")
    )

    managed: ManagedRedis | None = Field(
        default=None, description="Run Redis as part of this PartyQuiz."
    )
    external: ExternalRedis | None = Field(default=None, description="Use an existing Redis.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Redis:
        if (self.managed is None) == (self.external is None):
            raise ValueError("set exactly one of redis.managed or redis.external")
        return self


ANNOTATION_KEY_RULE = {
    "rule": f"self.all(k, k.matches('{KEY_PATTERN}'))",
    "message": "annotation keys must be valid keys ([prefix/]name)",
}


ProxyAddress = Annotated[
    str, Field(max_length=64, description="An IP address or a CIDR network such as 10.0.0.0/8.")
]


class Ingress(_Model):
    """Public HTTP(S) entry: the web service at ``/`` and the game service at ``/ws``."""

    host: str = _dns_name("Public host name, for example quiz.example.com.", required=True)
    class_name: str | None = _dns_name("IngressClass to use; the cluster default when unset.")
    tls_secret_name: str | None = _dns_name(
        "Secret with the TLS certificate for the host; plain HTTP when unset."
    )
    annotations: dict[str, str] = _extra(
        "Extra annotations on the Ingress (for example for the ingress controller).",
        most=64,
        rules=_rules(ANNOTATION_KEY_RULE),
    )
    trusted_proxies: list[ProxyAddress] = Field(
        default_factory=lambda: list(PRIVATE_NETWORKS),
        max_length=32,
        description="Addresses or networks (CIDR) of the proxies in front of web and ws whose "
        "X-Forwarded-For names the client (rate limits are per client). The default, the "
        "private networks, holds the pod network where ingress controllers such as "
        "ingress-nginx, Traefik or HAProxy run; narrow it to your controller's pods.",
        json_schema_extra=_rules(
            {
                "rule": "self.all(p, isIP(p) || isCIDR(p))",
                "message": "trustedProxies entries must be IP addresses or CIDR networks",
            }
        ),
    )


LabelValue = Annotated[
    str,
    StringConstraints(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"),
]

POD_LABEL_RULES = _rules(
    {
        "rule": LABEL_KEY_CEL,
        "message": "podLabels keys must be valid label keys ([prefix/]name)",
    },
    {
        "rule": "self.all(k, !k.startsWith('app.kubernetes.io/'))",
        "message": "podLabels must not set app.kubernetes.io/ labels; the operator owns them",
    },
)


class Rollout(_Model):
    """How new revisions of web and ws are rolled out."""

    progress_deadline_seconds: int = Field(
        default=600,
        ge=10,
        le=3600,
        description="Seconds a Deployment may go without progress before the rollout is "
        "considered failed.",
    )
    timeout_seconds: int = Field(
        default=1200,
        ge=30,
        le=86400,
        description="Wall-clock seconds from applying a revision until web and ws must be "
        "rolled out; a rollout still incomplete then has failed.",
    )
    bake_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="Seconds a completed rollout must stay healthy (no crash-looping pods) "
        "before the revision counts as known-good.",
    )
    auto_rollback: bool = Field(
        default=True,
        description="On a failed rollout, put web and ws back on the last known-good revision "
        "(no migration runs for it). The failed revision is not retried until the spec "
        "changes or the partyquiz.dev/retry annotation gets a new value.",
    )


class Migrations(_Model):
    """The schema migration Job that runs before a new revision is rolled out."""

    backup_first: bool = Field(
        default=True,
        description="With a managed database, dump it to the backup volume before each "
        "migration; the migration waits for the dump to succeed.",
    )

    backoff_limit: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed migration pod."
    )
    active_deadline_seconds: int = Field(
        default=600,
        ge=30,
        le=86400,
        description="Wall-clock limit of the migration Job in seconds.",
    )
    pod_labels: dict[str, LabelValue] = _extra(
        "Extra labels on the migration Job's pods (spec.podLabels reaches only "
        "the web and ws pods).",
        most=32,
        rules=POD_LABEL_RULES,
    )


MONITORING_LABEL_RULES = _rules(
    {"rule": LABEL_KEY_CEL, "message": "labels keys must be valid label keys ([prefix/]name)"},
)


class ServiceMonitorSettings(_Model):
    """A Prometheus Operator ServiceMonitor scraping /metrics of web and ws."""

    enabled: bool = Field(
        default=False,
        description="Create the ServiceMonitor (needs the monitoring.coreos.com CRDs).",
    )
    interval: str = Field(
        default="30s",
        max_length=16,
        pattern=r"^[0-9]+(ms|s|m|h)$",
        description="Scrape interval, for example 30s.",
    )
    labels: dict[str, LabelValue] = _extra(
        "Extra labels on the ServiceMonitor, to match a serviceMonitorSelector.",
        most=16,
        rules=MONITORING_LABEL_RULES,
    )


class PrometheusRuleSettings(_Model):
    """A Prometheus Operator PrometheusRule with this installation's alerts."""

    enabled: bool = Field(
        default=False,
        description="Create the PrometheusRule (needs the monitoring.coreos.com CRDs).",
    )
    labels: dict[str, LabelValue] = _extra(
        "Extra labels on the PrometheusRule, to match a ruleSelector.",
        most=16,
        rules=MONITORING_LABEL_RULES,
    )


class Monitoring(_Model):
    """Prometheus Operator objects for this installation (see docs/operations.md)."""

    service_monitor: ServiceMonitorSettings = Field(
        default_factory=ServiceMonitorSettings, description="ServiceMonitor for web and ws."
    )
    prometheus_rule: PrometheusRuleSettings = Field(
        default_factory=PrometheusRuleSettings, description="PrometheusRule with the alerts."
    )


class PartyQuizSpec(_Model):
    """Desired state of a PartyQuiz installation."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": "self.version.matches('" + SEMVER_PATTERN.replace("\\", "\\\\") + "')",
                "message": "version must be a semantic version such as 1.4.0 "
                "(no leading v, no 'latest', no +build metadata)",
            }
        )
    )

    version: str = Field(
        max_length=63,
        description="PartyQuiz version to run, for example 1.4.0 (a semantic version without "
        "build metadata: it labels the pods). Image tags default to it.",
    )
    images: Images = Field(default_factory=Images, description="Image overrides.")
    web: Web = Field(default_factory=Web, description="The web service.")
    ws: Ws = Field(default_factory=Ws, description="The real-time game service.")
    database: Database = Field(
        description="PostgreSQL: managed by the operator or external (exactly one)."
    )
    redis: Redis = Field(description="Redis: managed by the operator or external (exactly one).")
    jwt_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the JWT signing secret (at least 32 bytes). "
        "Generated once and kept in <name>-credentials when unset.",
    )
    ingress: Ingress | None = Field(default=None, description="Public Ingress; none when unset.")
    rollout: Rollout = Field(default_factory=Rollout, description="Rollout settings.")
    migrations: Migrations = Field(default_factory=Migrations, description="Migration Job.")
    monitoring: Monitoring = Field(
        default_factory=Monitoring, description="ServiceMonitor and PrometheusRule."
    )
    pod_labels: dict[str, LabelValue] = _extra(
        "Extra labels on the web and ws pods (not on selectors).", most=32, rules=POD_LABEL_RULES
    )
    pod_annotations: dict[str, str] = _extra(
        "Extra annotations on the web and ws pods.", most=32, rules=_rules(ANNOTATION_KEY_RULE)
    )
    suspend: bool = Field(
        default=False,
        description="Stop reconciling: children are left exactly as they are until unset.",
    )
    retain_data_on_delete: bool = Field(
        default=True,
        description="Keep the database, Redis and backup PersistentVolumeClaims and the "
        "credentials Secret that opens them when the PartyQuiz is deleted.",
    )


Phase = Literal[
    "Pending",
    "Provisioning",
    "Migrating",
    "RollingOut",
    "Ready",
    "Degraded",
    "RollingBack",
    "Suspended",
]
PHASES: tuple[Phase, ...] = get_args(Phase)
ConditionType = Literal[
    "Ready",
    "Progressing",
    "Degraded",
    "DatabaseReady",
    "CacheReady",
    "MigrationComplete",
    "MonitoringReady",
]
CONDITION_TYPES: tuple[ConditionType, ...] = get_args(ConditionType)


class Condition(_Model):
    """One aspect of the instance's state, in the Kubernetes condition convention."""

    type: ConditionType = Field(description="Aspect this condition describes.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=1024, description="CamelCase machine-readable reason for the status."
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: str = Field(
        json_schema_extra={"format": "date-time"},
        description="When the status last changed (RFC 3339).",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed for."
    )


class ComponentStatus(_Model):
    """Pod counts of one component."""

    desired: int = Field(default=0, ge=0, description="Pods asked for.")
    ready: int = Field(default=0, ge=0, description="Pods ready.")
    updated: int = Field(default=0, ge=0, description="Pods running the target revision.")
    summary: str = Field(default="0/0", max_length=32, description="ready/desired, for display.")


class Components(_Model):
    """Pod counts per component."""

    web: ComponentStatus = Field(default_factory=ComponentStatus, description="Web pods.")
    ws: ComponentStatus = Field(default_factory=ComponentStatus, description="Game pods.")
    database: ComponentStatus | None = Field(
        default=None, description="Managed PostgreSQL pods; absent when external."
    )
    redis: ComponentStatus | None = Field(
        default=None, description="Managed Redis pods; absent when external."
    )


class Endpoints(_Model):
    """Where the services can be reached."""

    web: str | None = Field(default=None, description="In-cluster URL of the web service.")
    ws: str | None = Field(default=None, description="In-cluster URL of the game service.")
    public: str | None = Field(default=None, description="Public URL when an Ingress is set.")
    public_ws: str | None = Field(
        default=None, description="Websocket URL that browsers are told to use."
    )


class Revisions(_Model):
    """Revisions: short hashes of everything that changes the web and ws pods."""

    current: str | None = Field(default=None, description="Revision the pods run now.")
    target: str | None = Field(default=None, description="Revision the spec asks for.")
    migrated: str | None = Field(
        default=None, description="Latest revision whose migration completed."
    )
    failed: str | None = Field(
        default=None, description="Latest revision that failed; not retried automatically."
    )


class RolloutProgress(_Model):
    """The rollout of the target revision the operator is watching."""

    revision: str = Field(max_length=64, description="Revision being rolled out.")
    started_at: str = Field(
        json_schema_extra={"format": "date-time"},
        description="When the operator applied the revision to web and ws (RFC 3339).",
    )
    completed_at: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="When web and ws were first seen rolled out; the bake starts here.",
    )


class KnownGood(_Model):
    """The last revision that rolled out and baked: what a rollback re-renders."""

    revision: str = Field(max_length=64, description="Revision hash.")
    version: str = Field(max_length=64, description="spec.version of that revision.")
    spec: str = Field(
        max_length=65536,
        description="The spec of that revision as compact JSON; rollbacks render web and ws "
        "from it.",
    )


class PartyQuizStatus(_Model):
    """Observed state, written by the operator only."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status was computed for."
    )
    phase: Phase = Field(default="Pending", description="One-word summary of the lifecycle.")
    version: str | None = Field(
        default=None, max_length=64, description="Version the running pods were rendered for."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready, Progressing, Degraded, DatabaseReady, CacheReady, MigrationComplete, "
        "MonitoringReady (only when spec.monitoring asks for something).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    components: Components = Field(
        default_factory=Components, description="Pod counts per component."
    )
    endpoints: Endpoints = Field(default_factory=Endpoints, description="Service URLs.")
    revisions: Revisions = Field(default_factory=Revisions, description="Pod template revisions.")
    rollout: RolloutProgress | None = Field(
        default=None, description="Rollout in progress or baking; absent when none."
    )
    known_good: KnownGood | None = Field(
        default=None, description="Last known-good revision, the target of automatic rollbacks."
    )
    retry: str | None = Field(
        default=None,
        max_length=256,
        description="Value of the partyquiz.dev/retry annotation last acted upon.",
    )


class PartyQuiz(_Model):
    """A PartyQuiz installation: web, game service, PostgreSQL and Redis."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            {
                "rule": f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
                "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters "
                "(children append suffixes such as -postgres-headless)",
            },
            {
                "rule": "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
                "message": "metadata.name must start with a letter and contain only lowercase "
                "letters, digits and '-' (it names Services)",
            },
        )
    )

    spec: PartyQuizSpec = Field(description="Desired state.")
    status: PartyQuizStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )


def parse_spec(spec: Any) -> PartyQuizSpec:
    """Parse a spec mapping from the API server (camelCase) into the typed model."""
    return PartyQuizSpec.model_validate(dict(spec))


def parse_status(status: Any) -> PartyQuizStatus:
    """Parse a status mapping; unknown or foreign keys (e.g. kopf's) are ignored."""
    known = {k: v for k, v in dict(status or {}).items() if k in _STATUS_ALIASES}
    return PartyQuizStatus.model_validate(known)


_STATUS_ALIASES = frozenset((f.alias or name) for name, f in PartyQuizStatus.model_fields.items())
