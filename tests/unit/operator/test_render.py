"""Renderers: every child is labelled, owned, secure and selects pods only by immutable labels."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.operator.operator_pss import hardening_violations, restricted_violations

from partyquiz_operator import api, render
from partyquiz_operator.render import common, jobs, network, stores, workloads

REPO = Path(__file__).resolve().parents[3]
SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}
RECOMMENDED = {*SELECTOR_KEYS, "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"}


def make(spec: dict[str, Any], name: str = "quiz") -> common.Instance:
    return common.Instance(
        name=name, namespace="games", uid="uid-1234", spec=api.parse_spec(spec), generation=3
    )


MINIMAL = {"version": "1.4.0", "database": {"managed": {}}, "redis": {"managed": {}}}
EXTERNAL = {
    "version": "1.4.0",
    "database": {"external": {"secretRef": {"name": "db", "key": "url"}}},
    "redis": {"external": {"secretRef": {"name": "cache", "key": "url"}}},
    "jwtSecretRef": {"name": "jwt", "key": "secret"},
}


def example_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == api.KIND:
                yield path.name, doc["spec"]


SPECS = [("minimal", MINIMAL), ("external", EXTERNAL), *example_specs()]


def counter_tokens() -> Any:
    count = iter(range(1000))

    def token(n: int) -> str:
        return f"token{next(count)}-" + "x" * n

    return token


def infrastructure(inst: common.Instance) -> list[dict[str, Any]]:
    secret = stores.build_credentials_secret(inst, {}, counter_tokens())
    waves = render.infrastructure(inst, credentials=secret, claims={})
    return [child for wave in waves for child in wave]


def all_children(inst: common.Instance) -> list[dict[str, Any]]:
    backups = [jobs.build_backup_pvc(inst)] if inst.spec.database.managed is not None else []
    rev = workloads.compute_revision(inst, {})
    return [
        *infrastructure(inst),
        *backups,
        workloads.build_web_deployment(inst, rev),
        workloads.build_ws_deployment(inst, rev),
        jobs.build_migration_job(inst, rev),
    ]


def pod_specs(children: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for child in children:
        template = child.get("spec", {}).get("template")
        if template is not None:
            yield f"{child['kind']}/{child['metadata']['name']}", template


@pytest.mark.parametrize(("label", "spec"), SPECS, ids=[label for label, _ in SPECS])
def test_every_pod_template_meets_restricted_pod_security(label: str, spec: dict[str, Any]) -> None:
    children = all_children(make(spec))
    templates = list(pod_specs(children))
    assert templates
    for name, template in templates:
        assert restricted_violations(template["spec"]) == [], name
        assert hardening_violations(template["spec"]) == [], name


def test_the_checker_catches_a_root_pod() -> None:
    bad = {"containers": [{"name": "c", "securityContext": {"runAsUser": 0}}]}
    problems = restricted_violations(bad)
    assert "c: allowPrivilegeEscalation is not false" in problems
    assert "c: runAsUser is 0" in problems
    assert "c: capabilities do not drop ALL" in problems


@pytest.mark.parametrize(("label", "spec"), SPECS, ids=[label for label, _ in SPECS])
def test_every_child_is_owned_and_labelled_but_kept_data_outlives_its_owner(
    label: str, spec: dict[str, Any]
) -> None:
    inst = make(spec)
    kept = {("Secret", "quiz-credentials"), ("PersistentVolumeClaim", "quiz-backups")}
    for child in all_children(inst):
        meta = child["metadata"]
        assert meta["namespace"] == "games"
        if (child["kind"], meta["name"]) in kept and inst.spec.retain_data_on_delete:
            assert "ownerReferences" not in meta
        else:
            assert meta["ownerReferences"] == [common.owner_reference(inst)]
        assert set(meta["labels"]) >= RECOMMENDED, child["kind"]
        assert meta["labels"]["app.kubernetes.io/instance"] == "quiz"
        assert len(meta["name"]) <= 63


@pytest.mark.parametrize(("label", "spec"), SPECS, ids=[label for label, _ in SPECS])
def test_selectors_use_only_immutable_labels_that_pods_carry(
    label: str, spec: dict[str, Any]
) -> None:
    for child in all_children(make(spec)):
        selector = child.get("spec", {}).get("selector")
        if selector is None or child["kind"] == "Job":
            continue
        match = selector.get("matchLabels", selector)
        assert set(match) == SELECTOR_KEYS, child["kind"]
        template = child["spec"].get("template")
        if template is not None:
            assert match.items() <= template["metadata"]["labels"].items()


def test_every_long_running_container_has_all_three_probes() -> None:
    for name, template in pod_specs(all_children(make(MINIMAL))):
        if name.startswith("Job/"):
            continue
        for container in template["spec"]["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{name} {container['name']} lacks {probe}"


def test_migration_job_runs_migrate_without_probes_and_never_restarts() -> None:
    inst = make(MINIMAL)
    job = jobs.build_migration_job(inst, "abc123")
    pod = job["spec"]["template"]["spec"]
    assert job["metadata"]["name"] == "quiz-migrate-abc123"
    assert pod["restartPolicy"] == "Never"
    # It keeps trying while the database does not answer yet instead of failing the attempt.
    assert pod["containers"][0]["args"] == ["migrate", "--wait", "60"]
    assert "command" not in pod["containers"][0]  # the image's entrypoint runs it
    assert not {"startupProbe", "readinessProbe", "livenessProbe"} & set(pod["containers"][0])
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] == 600


def test_managed_stack_has_statefulsets_with_volume_claims_and_aof() -> None:
    kinds = {(c["kind"], c["metadata"]["name"]) for c in all_children(make(MINIMAL))}
    assert ("StatefulSet", "quiz-postgres") in kinds
    assert ("StatefulSet", "quiz-redis") in kinds
    assert ("Service", "quiz-postgres-headless") in kinds
    redis = stores.build_redis_statefulset(make(MINIMAL))
    script = redis["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "--appendonly yes" in script
    claim = redis["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_external_stores_create_no_statefulset_and_pods_read_the_given_secrets() -> None:
    inst = make(EXTERNAL)
    children = all_children(inst)
    assert not [c for c in children if c["kind"] in ("StatefulSet", "NetworkPolicy")]
    web = workloads.build_web_deployment(inst, "r1")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in web["env"]}
    assert env["PARTYQUIZ_WEB_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "db",
        "key": "url",
    }
    assert env["PARTYQUIZ_WEB_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "cache",
        "key": "url",
    }
    assert env["PARTYQUIZ_WEB_JWT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "jwt",
        "key": "secret",
    }
    assert stores.referenced_secrets(inst) == [("db", "url"), ("cache", "url"), ("jwt", "secret")]


def test_ws_pods_get_the_web_url_drain_time_and_a_matching_grace_period() -> None:
    inst = make({**MINIMAL, "ws": {"drainSeconds": 45}})
    pod = workloads.build_ws_deployment(inst, "r1")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["PARTYQUIZ_WS_WEB_INTERNAL_URL"] == "http://quiz-web.games.svc:8000"
    assert env["PARTYQUIZ_WS_DRAIN_SECONDS"] == "45"
    # 3 s pre-stop pause + 45 s drain + 10 s for the last close handshakes + 2 s to exit
    assert pod["terminationGracePeriodSeconds"] == 60
    assert not {"command", "args"} & set(pod["containers"][0])  # the image's entrypoint


def test_game_pods_may_finish_the_drain_and_the_last_close_handshakes_before_the_kill() -> None:
    spec = make({**MINIMAL, "ws": {"drainSeconds": 30}}).spec
    grace = workloads.ws_termination_grace_seconds(spec)
    pre_stop, close_handshake = 3, 10
    assert grace > pre_stop + spec.ws.drain_seconds + close_handshake


def test_no_password_is_on_a_command_line_or_in_the_pod_spec() -> None:
    inst = make(MINIMAL)
    for sts in (stores.build_redis_statefulset(inst), stores.build_postgres_statefulset(inst)):
        container = sts["spec"]["template"]["spec"]["containers"][0]
        spelled = yaml.safe_dump(
            {k: v for k, v in container.items() if k not in ("env", "volumeMounts")}
        )
        assert "$(" not in spelled, "the kubelet would put the value on the command line"
        assert " -a " not in spelled
        assert "--requirepass" not in spelled
        env = {e["name"]: e for e in container["env"]}
        password = env.get("REDIS_PASSWORD") or env["POSTGRES_PASSWORD"]
        assert "valueFrom" in password


def test_the_stores_probes_never_kill_a_long_recovery_but_readiness_waits_for_it() -> None:
    inst = make(MINIMAL)
    postgres = stores.build_postgres_statefulset(inst)["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe"):
        assert "[ $? -le 1 ]" in postgres[probe]["exec"]["command"][2], probe
    assert postgres["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    redis = stores.build_redis_statefulset(inst)["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe"):
        assert "LOADING" in redis[probe]["exec"]["command"][2], probe
    assert "LOADING" not in redis["readinessProbe"]["exec"]["command"][2]


def test_images_default_to_the_version_and_can_be_overridden() -> None:
    web = workloads.web_pod_template(make(MINIMAL))["spec"]["containers"][0]
    assert web["image"] == "ghcr.io/partyquiz/partyquiz-web:1.4.0"
    custom = make({**MINIMAL, "images": {"ws": "registry.local/ws@sha256:" + "a" * 64}})
    ws = workloads.ws_pod_template(custom)["spec"]["containers"][0]
    assert ws["image"] == "registry.local/ws@sha256:" + "a" * 64


def test_generated_secret_keeps_existing_values_and_fills_missing_ones() -> None:
    inst = make(MINIMAL)
    first = stores.build_credentials_secret(inst, {}, counter_tokens())
    decoded = {k: base64.b64decode(v).decode() for k, v in first["data"].items()}
    assert set(decoded) == {
        "jwt-secret",
        "postgres-password",
        "redis-password",
        "database-url",
        "redis-url",
    }
    assert len(decoded["jwt-secret"].encode()) >= 32
    assert decoded["postgres-password"] in decoded["database-url"]
    assert decoded["database-url"].startswith("postgresql+asyncpg://partyquiz:")

    def forbidden(_: int) -> str:
        raise AssertionError("no new token may be generated when all values exist")

    again = stores.build_credentials_secret(inst, decoded, forbidden)
    assert again["data"] == first["data"]


def test_user_supplied_jwt_secret_is_not_generated() -> None:
    secret = stores.build_credentials_secret(make(EXTERNAL), {}, counter_tokens())
    assert secret["data"] == {}


def test_revision_changes_with_pod_inputs_but_not_with_replica_counts() -> None:
    base = workloads.compute_revision(make(MINIMAL), {})
    assert base == workloads.compute_revision(make(MINIMAL), {})
    assert len(base) == 10
    scaled = make({**MINIMAL, "web": {"replicas": 5}, "ws": {"replicas": 7}})
    assert workloads.compute_revision(scaled, {}) == base
    upgraded = make({**MINIMAL, "version": "1.5.0"})
    assert workloads.compute_revision(upgraded, {}) != base
    assert workloads.compute_revision(make(MINIMAL), {"db/url": "abc"}) != base
    labelled = make({**MINIMAL, "podLabels": {"team": "a"}})
    assert workloads.compute_revision(labelled, {}) != base


def test_deployments_roll_with_zero_unavailable_and_carry_the_revision() -> None:
    dep = workloads.build_web_deployment(make(MINIMAL), "rev1")
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert dep["spec"]["replicas"] == 2
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations[common.REVISION_ANNOTATION] == "rev1"


def test_pod_labels_and_annotations_reach_pods_but_not_selectors() -> None:
    inst = make(
        {
            **MINIMAL,
            "podLabels": {"kwok.partyquiz.dev/behaviour": "never-ready"},
            "podAnnotations": {"example.com/a": "b"},
        }
    )
    for dep in (
        workloads.build_web_deployment(inst, "r"),
        workloads.build_ws_deployment(inst, "r"),
    ):
        template = dep["spec"]["template"]
        assert template["metadata"]["labels"]["kwok.partyquiz.dev/behaviour"] == "never-ready"
        assert template["metadata"]["annotations"]["example.com/a"] == "b"
        assert "kwok.partyquiz.dev/behaviour" not in dep["spec"]["selector"]["matchLabels"]
    job = jobs.build_migration_job(inst, "r")
    assert "kwok.partyquiz.dev/behaviour" not in job["spec"]["template"]["metadata"]["labels"]


def test_autoscaling_leaves_web_replicas_to_the_autoscaler() -> None:
    inst = make({**MINIMAL, "web": {"autoscaling": {"minReplicas": 2, "maxReplicas": 4}}})
    assert "replicas" not in workloads.build_web_deployment(inst, "r")["spec"]
    hpa = workloads.build_web_autoscaler(inst)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "quiz-web"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)


def test_ingress_routes_ws_path_to_game_service_and_rest_to_web() -> None:
    inst = make({**MINIMAL, "ingress": {"host": "quiz.example.com", "tlsSecretName": "tls"}})
    ingress = network.build_ingress(inst)
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    routes = {p["path"]: p["backend"]["service"]["name"] for p in paths}
    assert routes == {"/ws": "quiz-ws", "/": "quiz-web"}
    assert ingress["spec"]["tls"] == [{"hosts": ["quiz.example.com"], "secretName": "tls"}]
    web = workloads.web_pod_template(inst)["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in web["env"]}
    assert env["PARTYQUIZ_WEB_PUBLIC_WS_URL"] == "wss://quiz.example.com/ws"


def env_of(inst: common.Instance, template: Any) -> dict[str, str | None]:
    container = template(inst)["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_behind_an_ingress_both_services_trust_the_proxies_for_client_addresses() -> None:
    inst = make({**MINIMAL, "ingress": {"host": "quiz.example.com"}})
    private = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
    assert env_of(inst, workloads.web_pod_template)["PARTYQUIZ_WEB_FORWARDED_ALLOW_IPS"] == private
    assert env_of(inst, workloads.ws_pod_template)["PARTYQUIZ_WS_FORWARDED_ALLOW_IPS"] == private
    narrowed = make(
        {**MINIMAL, "ingress": {"host": "quiz.example.com", "trustedProxies": ["10.244.3.0/24"]}}
    )
    web = env_of(narrowed, workloads.web_pod_template)
    assert web["PARTYQUIZ_WEB_FORWARDED_ALLOW_IPS"] == "10.244.3.0/24"
    direct = make(MINIMAL)
    assert "PARTYQUIZ_WEB_FORWARDED_ALLOW_IPS" not in env_of(direct, workloads.web_pod_template)
    assert "PARTYQUIZ_WS_FORWARDED_ALLOW_IPS" not in env_of(direct, workloads.ws_pod_template)


@pytest.mark.parametrize(
    ("spec", "url"),
    [
        ({}, None),
        ({"ingress": {"host": "quiz.example.com"}}, None),
        (
            {"ingress": {"host": "quiz.example.com", "tlsSecretName": "tls"}},
            "wss://quiz.example.com/ws",
        ),
        ({"web": {"publicWsUrl": "wss://games.example.com/ws"}}, "wss://games.example.com/ws"),
    ],
    ids=["no ingress", "ingress without tls", "ingress with tls", "configured"],
)
def test_browsers_are_told_a_websocket_url_only_when_it_is_known(
    spec: dict[str, Any], url: str | None
) -> None:
    inst = make({**MINIMAL, **spec})
    assert env_of(inst, workloads.web_pod_template).get("PARTYQUIZ_WEB_PUBLIC_WS_URL") == url
    assert network.endpoints(inst).public_ws == url
    assert network.endpoints(inst).ws == "ws://quiz-ws.games.svc:8001/ws"


def test_network_policies_admit_only_the_intended_clients() -> None:
    inst = make(MINIMAL)
    for build, clients, port in (
        (lambda i: network.build_network_policies(i)[0], ["web", "migration"], 5432),
        (lambda i: network.build_network_policies(i)[1], ["web", "ws"], 6379),
    ):
        policy = build(inst)["spec"]
        rule = policy["ingress"][0]
        peer = rule["from"][0]["podSelector"]
        assert peer["matchExpressions"][0]["values"] == clients
        assert peer["matchLabels"]["app.kubernetes.io/instance"] == "quiz"
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
        assert policy["policyTypes"] == ["Ingress"]


def test_data_retention_follows_the_spec_on_statefulset_claims() -> None:
    kept = stores.build_postgres_statefulset(make(MINIMAL))
    assert kept["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    dropped = stores.build_postgres_statefulset(make({**MINIMAL, "retainDataOnDelete": False}))
    assert dropped["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"


def test_existing_claim_size_is_kept_in_the_immutable_template() -> None:
    inst = make({**MINIMAL, "database": {"managed": {"storage": "20Gi"}}})
    sts = stores.build_postgres_statefulset(inst, claim="10Gi")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "10Gi"
    }


def test_service_account_has_no_token_automount() -> None:
    sa = workloads.build_service_account(make(MINIMAL))
    assert sa["automountServiceAccountToken"] is False
