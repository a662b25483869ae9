"""Inputs a pass cannot control: suspend, the user's Secrets, external stores, monitoring CRDs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.operator.world import EXTERNAL, World, installed, secret, world

from partyquiz_operator.plan.lifecycle import Plan


def templates(w: World) -> tuple[str, str]:
    return w.template_revision("quiz-web"), w.template_revision("quiz-ws")


def reasons(plan: Plan) -> list[str]:
    return [event.reason for event in plan.events]


def test_suspend_changes_nothing_until_resumed() -> None:
    w, _ = installed()
    w.edit(suspend=True)
    w.step()
    assert w.st.phase == "Suspended"
    assert w.condition("Progressing").reason == "Suspended"
    del w.objects[("Service", "quiz-ws")]
    w.edit(ws={"replicas": 3})
    plan = w.step()
    assert not plan.waves
    assert not plan.deletes
    w.edit(suspend=False)
    w.step()
    assert ("Service", "quiz-ws") in w.objects
    assert w.objects[("Deployment", "quiz-ws")]["spec"]["replicas"] == 3


def external_world(*objects: dict[str, Any]) -> World:
    w = World(copy.deepcopy(EXTERNAL))
    for obj in objects:
        w.objects[(obj["kind"], obj["metadata"]["name"])] = obj
    return w


def test_external_stores_create_no_statefulset_and_point_the_pods_at_the_users_secret() -> None:
    w = external_world(secret("stores", db="postgresql+asyncpg://u:p@db/q", redis="redis://r"))
    w.install()
    assert not w.names("StatefulSet")
    assert not w.names("NetworkPolicy")
    assert w.condition("DatabaseReady").reason == "External"
    env = w.objects[("Deployment", "quiz-web")]["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in env}
    assert refs["PARTYQUIZ_WEB_DATABASE_URL"] == {"name": "stores", "key": "db"}


def test_a_missing_referenced_secret_is_reported_retried_and_recovered() -> None:
    w = external_world()
    plan = w.step()
    assert not plan.waves
    assert plan.retry_after is not None, "no watch tells when a Secret appears: look again"
    assert w.condition("Ready").reason == "SecretMissing"
    assert "Secret stores" in w.condition("Ready").message
    w.objects[("Secret", "stores")] = secret(
        "stores", db="postgresql+asyncpg://x", redis="redis://y"
    )
    w.install()


def test_a_secret_without_the_key_is_reported_by_key() -> None:
    w = external_world(secret("stores", db="postgresql+asyncpg://x"))
    w.step()
    assert "has no key 'redis'" in w.condition("Ready").message


def test_a_changed_referenced_secret_is_a_new_revision_that_rolls_out() -> None:
    w = external_world(secret("stores", db="postgresql+asyncpg://x", redis="redis://y"))
    first = w.install()
    w.objects[("Secret", "stores")] = secret(
        "stores", db="postgresql+asyncpg://rotated", redis="redis://y"
    )
    w.step()
    assert w.st.revisions.target != first
    w.settle()
    w.step()
    w.settle()
    w.step()
    assert w.condition("Ready").reason == "Baking"
    w.later(31)
    w.step()
    assert w.st.phase == "Ready"
    assert w.st.revisions.current != first


def test_a_jwt_secret_too_short_is_refused_without_touching_the_workloads() -> None:
    w = external_world(
        secret("stores", db="postgresql+asyncpg://x", redis="redis://y"), secret("jwt", key="short")
    )
    w.spec["jwtSecretRef"] = {"name": "jwt", "key": "key"}
    plan = w.step()
    assert plan.permanent
    assert "at least 32" in w.condition("Degraded").message
    assert not w.names("Deployment")


def test_an_invalid_spec_is_reported_and_never_retried() -> None:
    w = world(web={"replicas": "many"})
    plan = w.step()
    assert plan.permanent
    assert not plan.waves
    assert w.condition("Degraded").reason == "InvalidSpec"


MONITORED = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}


def test_monitoring_without_its_crds_says_so_and_the_instance_is_still_ready() -> None:
    w, _ = installed(monitoring=MONITORED)
    assert w.condition("MonitoringReady").reason == "PrometheusOperatorCRDsMissing"
    w.served = frozenset({"ServiceMonitor", "PrometheusRule"})
    w.step()
    assert w.names("ServiceMonitor") == {"quiz"}
    assert w.names("PrometheusRule") == {"quiz"}
    assert w.condition("MonitoringReady").status == "True"
    w.edit(monitoring=None)
    w.step()
    assert not w.names("ServiceMonitor")
    assert not w.names("PrometheusRule")
    assert all(c.type != "MonitoringReady" for c in w.st.conditions)


# --- what admission cannot know -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme"), [("mysql://u:p@db/q", "mysql://"), ("db.example:5432", "no scheme")]
)
def test_an_external_database_url_the_services_refuse_is_reported_without_its_secret(
    url: str, scheme: str
) -> None:
    w = external_world(secret("stores", db=url, redis="redis://r"))
    plan = w.step()
    assert not plan.waves
    degraded = w.condition("Degraded")
    assert degraded.reason == "UnsupportedURL"
    assert scheme in degraded.message
    assert "u:p" not in degraded.message
    assert plan.retry_after is not None, "a fixed Secret is noticed without a spec change"


def test_an_external_redis_url_must_be_redis() -> None:
    w = external_world(secret("stores", db="postgresql+asyncpg://x", redis="http://cache"))
    w.step()
    assert "redis URL with http://" in w.condition("Degraded").message


@pytest.mark.parametrize(
    ("store", "image"),
    [("database", "docker.io/library/postgres:9.6"), ("redis", "redis:6.2-alpine")],
)
def test_a_managed_store_image_too_old_is_refused_before_anything_starts(
    store: str, image: str
) -> None:
    w = world(**{store: {"managed": {"image": image}}})
    plan = w.step()
    assert plan.permanent
    assert not plan.waves
    assert w.condition("Degraded").reason == "UnsupportedImage"
    assert image in w.condition("Degraded").message


def test_a_store_image_without_a_version_in_its_tag_is_taken_as_it_is() -> None:
    digest = "postgres@sha256:" + "a" * 64
    w = world(database={"managed": {"image": digest}})
    w.step()
    assert w.st.phase == "Provisioning"
