"""Workloads: the web and game pods, their Deployments, the revision, what scales and shields them.

Owns the pod templates of web and ws (env, probes, drain), the revision hash over everything
that changes those pods, the Deployments rendered at a revision, the PodDisruptionBudgets, the
web autoscaler and the pods' ServiceAccount. Pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from partyquiz_operator import api
from partyquiz_operator.render.common import (
    COMPONENT_WEB,
    COMPONENT_WS,
    REVISION_ANNOTATION,
    TMP_MOUNT,
    WEB_PORT,
    WS_PORT,
    Instance,
    Manifest,
    common_labels,
    container_security_context,
    empty_dir,
    http_probes,
    metadata,
    pod_spec,
    resources,
    secret_env,
    selector_labels,
    service_account_name,
    web_name,
    ws_name,
)
from partyquiz_operator.render.network import public_ws_url, trusted_proxies, web_internal_url
from partyquiz_operator.render.stores import database_ref, jwt_ref, redis_ref

APP_UID = 10001
# Seconds a terminating game pod waits before SIGTERM so Services stop routing to it first;
# reconnecting players then land on another replica instead of the draining one.
WS_PRE_STOP_SECONDS = 3
# Seconds the game service waits for a client to answer its close frame (the websockets
# library's close timeout, which it keeps) once the drain has asked everyone to reconnect.
WS_CLOSE_SECONDS = 10
# Seconds left after that for the process to close its listeners and exit.
WS_EXIT_MARGIN_SECONDS = 2


def web_image(spec: api.PartyQuizSpec) -> str:
    """Return the web image: the override or the official image tagged with the version."""
    return spec.images.web or f"{api.DEFAULT_WEB_IMAGE_REPOSITORY}:{spec.version}"


def ws_image(spec: api.PartyQuizSpec) -> str:
    """Return the game image: the override or the official image tagged with the version."""
    return spec.images.ws or f"{api.DEFAULT_WS_IMAGE_REPOSITORY}:{spec.version}"


def build_service_account(inst: Instance) -> Manifest:
    """Return the pods' ServiceAccount; pods get no API token."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(inst, service_account_name(inst), "serviceaccount"),
        "automountServiceAccountToken": False,
    }


def web_env(inst: Instance) -> list[dict[str, Any]]:
    """Return the environment of the web (and migration) container.

    The browsers' WebSocket URL is given only when it is known (configured, or an Ingress
    with TLS); otherwise the web service derives it from each request (the page's own host and
    scheme, path /ws). Behind an Ingress it takes the client's address and scheme from the
    trusted proxies' forwarded headers.
    """
    env = [
        secret_env("PARTYQUIZ_WEB_DATABASE_URL", *database_ref(inst)),
        secret_env("PARTYQUIZ_WEB_REDIS_URL", *redis_ref(inst)),
        secret_env("PARTYQUIZ_WEB_JWT_SECRET", *jwt_ref(inst)),
    ]
    browsers = public_ws_url(inst)
    if browsers is not None:
        env.append({"name": "PARTYQUIZ_WEB_PUBLIC_WS_URL", "value": browsers})
    proxies = trusted_proxies(inst)
    if proxies is not None:
        env.append({"name": "PARTYQUIZ_WEB_FORWARDED_ALLOW_IPS", "value": proxies})
    return env


def ws_env(inst: Instance) -> list[dict[str, Any]]:
    """Return the environment of the game container."""
    env = [
        secret_env("PARTYQUIZ_WS_REDIS_URL", *redis_ref(inst)),
        secret_env("PARTYQUIZ_WS_JWT_SECRET", *jwt_ref(inst)),
        {"name": "PARTYQUIZ_WS_WEB_INTERNAL_URL", "value": web_internal_url(inst)},
        {"name": "PARTYQUIZ_WS_DRAIN_SECONDS", "value": str(inst.spec.ws.drain_seconds)},
    ]
    proxies = trusted_proxies(inst)
    if proxies is not None:
        env.append({"name": "PARTYQUIZ_WS_FORWARDED_ALLOW_IPS", "value": proxies})
    return env


def _template(
    inst: Instance,
    component: str,
    container: dict[str, Any],
    *,
    port: int,
    needs: api.Resources,
    grace_seconds: int,
) -> dict[str, Any]:
    """Return a web or game pod template around ``container`` (its own fields, in front)."""
    spec = inst.spec
    port_name = "http" if component == COMPONENT_WEB else component
    container = {
        "name": component,
        "imagePullPolicy": spec.images.pull_policy,
        **container,
        "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}],
        **http_probes(port_name),
        "resources": resources(needs),
        "securityContext": container_security_context(APP_UID),
        "volumeMounts": [dict(TMP_MOUNT)],
    }
    labels = {**spec.pod_labels, **common_labels(inst, component)}
    labels["app.kubernetes.io/version"] = spec.version
    meta: dict[str, Any] = {"labels": labels}
    if spec.pod_annotations:
        meta["annotations"] = dict(spec.pod_annotations)
    volumes = [empty_dir("tmp")]
    return {
        "metadata": meta,
        "spec": pod_spec(
            inst, [container], uid=APP_UID, volumes=volumes, grace_seconds=grace_seconds
        ),
    }


def web_pod_template(inst: Instance) -> dict[str, Any]:
    """Return the web pod template without its revision annotation."""
    spec = inst.spec
    container = {
        "image": web_image(spec),
        # Arguments, not a command: the image's entrypoint keeps tini as PID 1, which
        # forwards SIGTERM from the first instant and reaps children.
        "args": ["serve"],
        "env": web_env(inst),
    }
    return _template(
        inst, COMPONENT_WEB, container, port=WEB_PORT, needs=spec.web.resources, grace_seconds=30
    )


def ws_termination_grace_seconds(spec: api.PartyQuizSpec) -> int:
    """Return the game pods' grace period: the pre-stop pause, the drain, the last close
    handshakes and a margin to exit, so the kubelet never kills a pod that is still draining."""
    return WS_PRE_STOP_SECONDS + spec.ws.drain_seconds + WS_CLOSE_SECONDS + WS_EXIT_MARGIN_SECONDS


def ws_pod_template(inst: Instance) -> dict[str, Any]:
    """Return the game pod template without its revision annotation."""
    spec = inst.spec
    container = {
        "image": ws_image(spec),
        # No command or args: the image's entrypoint is tini + partyquiz-ws.
        "env": ws_env(inst),
        "lifecycle": {"preStop": {"sleep": {"seconds": WS_PRE_STOP_SECONDS}}},
    }
    grace = ws_termination_grace_seconds(spec)
    return _template(
        inst, COMPONENT_WS, container, port=WS_PORT, needs=spec.ws.resources, grace_seconds=grace
    )


def compute_revision(inst: Instance, secret_digests: Mapping[str, str]) -> str:
    """Return the revision: a short hash of everything that changes the web and ws pods.

    ``secret_digests`` maps each referenced user Secret key ("name/key") to a digest of its
    value, so rotating an external URL or JWT secret is a new revision too.
    """
    material = {
        "web": web_pod_template(inst),
        "ws": ws_pod_template(inst),
        "secrets": dict(sorted(secret_digests.items())),
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def _deployment(
    inst: Instance,
    name: str,
    component: str,
    template: dict[str, Any],
    *,
    replicas: int | None,
    revision: str,
) -> Manifest:
    annotations = {**template["metadata"].get("annotations", {}), REVISION_ANNOTATION: revision}
    spec: dict[str, Any] = {
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": inst.spec.rollout.progress_deadline_seconds,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "selector": {"matchLabels": selector_labels(inst, component)},
        "template": {**template, "metadata": {**template["metadata"], "annotations": annotations}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    meta = metadata(inst, name, component, annotations={REVISION_ANNOTATION: revision})
    meta["labels"]["app.kubernetes.io/version"] = inst.spec.version
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def build_web_deployment(inst: Instance, revision: str) -> Manifest:
    """Return the web Deployment rendered at ``revision``; replicas are left to the HPA if set."""
    replicas = None if inst.spec.web.autoscaling is not None else inst.spec.web.replicas
    template = web_pod_template(inst)
    return _deployment(
        inst, web_name(inst), COMPONENT_WEB, template, replicas=replicas, revision=revision
    )


def build_ws_deployment(inst: Instance, revision: str) -> Manifest:
    """Return the game Deployment rendered at ``revision``."""
    template = ws_pod_template(inst)
    replicas = inst.spec.ws.replicas
    return _deployment(
        inst, ws_name(inst), COMPONENT_WS, template, replicas=replicas, revision=revision
    )


def _pdb(inst: Instance, name: str, component: str) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(inst, name, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(inst, component)},
        },
    }


def build_disruption_budgets(inst: Instance) -> list[Manifest]:
    """Return the web and game PodDisruptionBudgets (one pod voluntarily disrupted at a time)."""
    return [_pdb(inst, web_name(inst), COMPONENT_WEB), _pdb(inst, ws_name(inst), COMPONENT_WS)]


def build_web_autoscaler(inst: Instance) -> Manifest:
    """Return the web HorizontalPodAutoscaler (CPU utilisation)."""
    autoscaling = inst.spec.web.autoscaling
    if autoscaling is None:
        raise ValueError("autoscaling is off")
    target = {
        "type": "Utilization",
        "averageUtilization": autoscaling.target_cpu_utilization_percentage,
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(inst, web_name(inst), COMPONENT_WEB),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": web_name(inst),
            },
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
        },
    }
