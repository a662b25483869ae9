"""Network: Services, the NetworkPolicies that fence the data stores, the Ingress, URLs.

Owns how each component is reached (in the cluster and from browsers) and who may reach the
data stores: PostgreSQL only from web, migration and backup pods; Redis only from web and game
pods. Pure.
"""

from __future__ import annotations

from typing import Any

from partyquiz_operator import api
from partyquiz_operator.render.common import (
    APP_NAME,
    COMPONENT_BACKUP,
    COMPONENT_CACHE,
    COMPONENT_DATABASE,
    COMPONENT_MIGRATION,
    COMPONENT_WEB,
    COMPONENT_WS,
    INSTANCE_LABEL,
    POSTGRES_PORT,
    REDIS_PORT,
    WEB_PORT,
    WS_PATH,
    WS_PORT,
    Instance,
    Manifest,
    metadata,
    postgres_name,
    redis_name,
    selector_labels,
    web_name,
    ws_name,
)
from partyquiz_operator.render.stores import headless_name


def web_internal_url(inst: Instance) -> str:
    """Return the in-cluster URL of the web service."""
    return f"http://{web_name(inst)}.{inst.namespace}.svc:{WEB_PORT}"


def ws_internal_url(inst: Instance) -> str:
    """Return the in-cluster websocket URL of the game service."""
    return f"ws://{ws_name(inst)}.{inst.namespace}.svc:{WS_PORT}{WS_PATH}"


def public_url(inst: Instance) -> str | None:
    """Return the public base URL when an Ingress is configured."""
    ingress = inst.spec.ingress
    if ingress is None:
        return None
    scheme = "https" if ingress.tls_secret_name else "http"
    return f"{scheme}://{ingress.host}"


def public_ws_url(inst: Instance) -> str | None:
    """Return the WebSocket URL browsers are known to reach, or None.

    Set in the spec, it is that; otherwise browsers derive it from the page (same host, path
    /ws), and it is known only behind an Ingress with TLS (an Ingress without TLS may still be
    behind a load balancer that ends TLS, so its scheme is the page's to say).
    """
    if inst.spec.web.public_ws_url is not None:
        return inst.spec.web.public_ws_url
    ingress = inst.spec.ingress
    if ingress is None or ingress.tls_secret_name is None:
        return None
    return f"wss://{ingress.host}{WS_PATH}"


def trusted_proxies(inst: Instance) -> str | None:
    """Return the proxies web and ws take client addresses from (None: only loopback)."""
    ingress = inst.spec.ingress
    return None if ingress is None else ",".join(ingress.trusted_proxies)


def endpoints(inst: Instance) -> api.Endpoints:
    """Return the addresses the status reports; the browser's WebSocket URL only when known."""
    return api.Endpoints(
        web=web_internal_url(inst),
        ws=ws_internal_url(inst),
        public=public_url(inst),
        public_ws=public_ws_url(inst),
    )


def _service(
    inst: Instance, name: str, component: str, port_name: str, port: int, *, headless: bool = False
) -> Manifest:
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector_labels(inst, component),
        "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}],
    }
    if headless:
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(inst, name, component),
        "spec": spec,
    }


def build_services(inst: Instance) -> list[Manifest]:
    """Return every Service: the data stores' (client and headless), then web and ws."""
    services = []
    for managed, name, component, port_name, port in (
        (
            inst.spec.database.managed,
            postgres_name(inst),
            COMPONENT_DATABASE,
            "postgres",
            POSTGRES_PORT,
        ),
        (inst.spec.redis.managed, redis_name(inst), COMPONENT_CACHE, "redis", REDIS_PORT),
    ):
        if managed is not None:
            services.append(_service(inst, name, component, port_name, port))
            services.append(
                _service(inst, headless_name(name), component, port_name, port, headless=True)
            )
    services.append(_service(inst, web_name(inst), COMPONENT_WEB, "http", WEB_PORT))
    services.append(_service(inst, ws_name(inst), COMPONENT_WS, "ws", WS_PORT))
    return services


def network_policy(
    inst: Instance, name: str, component: str, clients: list[str], port: int
) -> Manifest:
    """Return a NetworkPolicy admitting the ``clients`` components to ``component``'s port."""
    peers = {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/name": APP_NAME, INSTANCE_LABEL: inst.name},
            "matchExpressions": [
                {"key": "app.kubernetes.io/component", "operator": "In", "values": clients}
            ],
        }
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(inst, name, component),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(inst, component)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [peers], "ports": [{"protocol": "TCP", "port": port}]}],
        },
    }


def build_network_policies(inst: Instance) -> list[Manifest]:
    """Return the NetworkPolicies of the managed data stores (they must exist before pods)."""
    policies = []
    if inst.spec.database.managed is not None:
        clients = [COMPONENT_WEB, COMPONENT_MIGRATION]
        policies.append(
            network_policy(inst, postgres_name(inst), COMPONENT_DATABASE, clients, POSTGRES_PORT)
        )
    if inst.spec.redis.managed is not None:
        clients = [COMPONENT_WEB, COMPONENT_WS]
        policies.append(
            network_policy(inst, redis_name(inst), COMPONENT_CACHE, clients, REDIS_PORT)
        )
    return policies


def backup_network_policy_name(inst: Instance) -> str:
    """Return the name of the NetworkPolicy letting backup pods reach PostgreSQL."""
    return f"{postgres_name(inst)}-backup"


def build_backup_network_policy(inst: Instance) -> Manifest:
    """Return the NetworkPolicy admitting backup pods to PostgreSQL (policies add up)."""
    name = backup_network_policy_name(inst)
    return network_policy(inst, name, COMPONENT_DATABASE, [COMPONENT_BACKUP], POSTGRES_PORT)


def build_ingress(inst: Instance) -> Manifest:
    """Return the Ingress: the game service at /ws, the web service at /."""
    ingress = inst.spec.ingress
    if ingress is None:
        raise ValueError("no ingress configured")

    def path(prefix: str, service: str, port: int) -> dict[str, Any]:
        return {
            "path": prefix,
            "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": port}}},
        }

    paths = [path(WS_PATH, ws_name(inst), WS_PORT), path("/", web_name(inst), WEB_PORT)]
    spec: dict[str, Any] = {"rules": [{"host": ingress.host, "http": {"paths": paths}}]}
    if ingress.class_name is not None:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name is not None:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(inst, inst.name, "ingress", annotations=ingress.annotations),
        "spec": spec,
    }
