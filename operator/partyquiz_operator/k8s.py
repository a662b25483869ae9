"""The operator's only door to the Kubernetes API (the only module importing the client).

Owns credentials, request timeouts, server-side apply under the ``partyquiz-operator`` field
manager, and the mapping of HTTP failures to ``errors.KubeApiError``. Every call is blocking:
callers run it in a worker thread, never on the event loop. It makes no decisions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import kopf
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from partyquiz_operator import api
from partyquiz_operator.builders import FIELD_MANAGER
from partyquiz_operator.errors import KubeApiError
from partyquiz_operator.metrics import OperatorMetrics


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the REST API."""

    api_version: str
    kind: str
    plural: str

    @property
    def prefix(self) -> str:
        """Return the URL prefix of the kind's API group version."""
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("v1", "Secret", "secrets"),
        Kind("v1", "Service", "services"),
        Kind("v1", "ServiceAccount", "serviceaccounts"),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        Kind("v1", "Pod", "pods"),
        Kind("v1", "Event", "events"),
        Kind("apps/v1", "Deployment", "deployments"),
        Kind("apps/v1", "StatefulSet", "statefulsets"),
        Kind("batch/v1", "Job", "jobs"),
        Kind("batch/v1", "CronJob", "cronjobs"),
        Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        Kind("networking.k8s.io/v1", "Ingress", "ingresses"),
        Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        Kind(api.API_VERSION, api.KIND, api.PLURAL),
        Kind("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors"),
        Kind("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules"),
    )
}


def _list_query(label_selector: str, any_version: bool) -> dict[str, str] | None:
    query = {"labelSelector": label_selector} if label_selector else {}
    if any_version:
        query["resourceVersion"] = "0"
    return query or None


def load_api_client(kubeconfig: str | None, *, pool_size: int | None = None) -> Any:
    """Return an API client from ``kubeconfig``, $KUBECONFIG or the in-cluster account.

    ``pool_size`` is how many connections to the API server are kept open for reuse; it should
    cover every thread that makes requests, or the busiest ones open and drop connections.
    """
    configuration = k8s_client.Configuration()
    if pool_size is not None:
        configuration.connection_pool_maxsize = pool_size
    if kubeconfig is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    return k8s_client.ApiClient(configuration)


class Cluster:
    """Blocking, typed-enough access to the objects the operator manages."""

    def __init__(self, api_client: Any, metrics: OperatorMetrics, *, timeout: float) -> None:
        self._api = api_client
        self._metrics = metrics
        self._timeout = timeout

    # --- transport -----------------------------------------------------------------------

    def _request(
        self,
        verb: str,
        method: str,
        kind: Kind,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        allow_missing: bool = False,
    ) -> dict[str, Any] | None:
        url_path = path + ("?" + urlencode(query) if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        serialized = self._api.param_serialize(
            method=method,
            resource_path=url_path,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        # The REST client JSON-encodes bodies itself for JSON content types; others go as text.
        payload = body if body is None or content_type.endswith("json") else json.dumps(body)
        try:
            response = self._api.call_api(
                serialized[0],
                serialized[1],
                header_params=serialized[2],
                body=payload,
                _request_timeout=self._timeout,
            )
            response.read()
        except Exception as exc:  # urllib3 errors: connection refused, timeouts, TLS
            self._metrics.kube_api_requests.labels(verb, kind.plural, "error").inc()
            raise KubeApiError(verb, kind.plural, 0, str(exc)) from exc
        status = int(response.status)
        self._metrics.kube_api_requests.labels(verb, kind.plural, str(status)).inc()
        data = response.data or b"{}"
        if status == 404 and allow_missing:
            return None
        if status >= 400:
            try:
                message = json.loads(data).get("message", "")
            except ValueError:
                message = data[:300].decode(errors="replace")
            raise KubeApiError(verb, kind.plural, status, message)
        parsed: dict[str, Any] = json.loads(data) if data else {}
        return parsed

    @staticmethod
    def _path(kind: Kind, namespace: str, name: str | None = None, sub: str = "") -> str:
        path = f"{kind.prefix}/namespaces/{quote(namespace)}/{kind.plural}"
        if name is not None:
            path += f"/{quote(name)}"
        return path + (f"/{sub}" if sub else "")

    # --- generic operations --------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Return the object or None when it does not exist."""
        k = KINDS[kind]
        return self._request("get", "GET", k, self._path(k, namespace, name), allow_missing=True)

    def list_labelled(
        self, kind: str, namespace: str, label_selector: str, *, any_version: bool = False
    ) -> list[dict[str, Any]]:
        """Return the objects of ``kind`` in ``namespace`` matching ``label_selector``.

        ``any_version``: let the API server answer from its watch cache (``resourceVersion=0``,
        possibly a moment behind) instead of reading etcd, which for a LIST means reading every
        object of the kind in the namespace before the label filter.
        """
        k = KINDS[kind]
        found = self._request(
            "list",
            "GET",
            k,
            self._path(k, namespace),
            query=_list_query(label_selector, any_version),
        )
        return list((found or {}).get("items", []))

    def list_all(self, kind: str) -> list[dict[str, Any]]:
        """Return the objects of ``kind`` in every namespace."""
        k = KINDS[kind]
        found = self._request("list", "GET", k, f"{k.prefix}/{k.plural}")
        return list((found or {}).get("items", []))

    def list_versioned(
        self, kind: str, namespace: str | None, label_selector: str, *, any_version: bool = False
    ) -> tuple[list[dict[str, Any]], str]:
        """Return the matching objects of ``kind`` and the list's resourceVersion.

        ``namespace`` None lists every namespace. Each item gets ``kind`` and ``apiVersion``
        (a list leaves them out), so it looks like what a watch delivers. ``any_version`` as
        for ``list_labelled``.
        """
        k = KINDS[kind]
        path = self._path(k, namespace) if namespace is not None else f"{k.prefix}/{k.plural}"
        query = _list_query(label_selector, any_version)
        found = self._request("list", "GET", k, path, query=query) or {}
        items = list(found.get("items", []))
        for item in items:
            item.setdefault("kind", k.kind)
            item.setdefault("apiVersion", k.api_version)
        return items, str(found.get("metadata", {}).get("resourceVersion", ""))

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply ``manifest`` under the operator's field manager, taking conflicts."""
        k = KINDS[manifest["kind"]]
        meta = manifest["metadata"]
        applied = self._request(
            "apply",
            "PATCH",
            k,
            self._path(k, meta["namespace"], meta["name"]),
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=manifest,
            content_type="application/apply-patch+yaml",
        )
        return applied or {}

    def merge_patch(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any], *, sub: str = ""
    ) -> dict[str, Any] | None:
        """JSON-merge-patch an object (or its ``sub``resource); None when it is gone."""
        k = KINDS[kind]
        return self._request(
            "patch",
            "PATCH",
            k,
            self._path(k, namespace, name, sub),
            query={"fieldManager": FIELD_MANAGER},
            body=patch,
            content_type="application/merge-patch+json",
            allow_missing=True,
        )

    def delete(
        self, kind: str, namespace: str, name: str, *, propagation: str = "Background"
    ) -> bool:
        """Delete an object; return False when it was already gone."""
        k = KINDS[kind]
        result = self._request(
            "delete",
            "DELETE",
            k,
            self._path(k, namespace, name),
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation},
            allow_missing=True,
        )
        return result is not None

    # --- specific operations -------------------------------------------------------------

    def served_kinds(self, api_version: str) -> set[str]:
        """Return the kinds the API server serves in ``api_version`` (none when it is absent)."""
        discovery = Kind(api_version, "APIResourceList", "discovery")
        found = self._request("get", "GET", discovery, f"{discovery.prefix}", allow_missing=True)
        return {
            str(r["kind"])
            for r in (found or {}).get("resources", [])
            if "/" not in str(r.get("name", ""))
        }

    def patch_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch the PartyQuiz's status subresource; return the object (None: gone)."""
        return self.merge_patch(api.KIND, namespace, name, {"status": status}, sub="status")

    def create_event(
        self,
        involved: Mapping[str, Any],
        *,
        type_: str,
        reason: str,
        message: str,
        now: datetime,
    ) -> None:
        """Record a core/v1 Event about ``involved`` (a PartyQuiz body)."""
        meta = involved["metadata"]
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        k = KINDS["Event"]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": api.API_VERSION,
                "kind": api.KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": f"{api.GROUP}/{FIELD_MANAGER}",
            "reportingInstance": FIELD_MANAGER,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self._request("create", "POST", k, self._path(k, meta["namespace"]), body=event)


def kopf_connection(api_client: Any) -> kopf.ConnectionInfo:
    """Return kopf's credentials from the same configuration the reconciler's client uses."""
    cfg = api_client.configuration
    token = None
    # Through the getter, so a projected in-cluster token is re-read when kopf logs in again.
    auth = cfg.get_api_key_with_prefix("authorization", alias="BearerToken")
    if auth:
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else auth
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        scheme="Bearer" if token else None,
        token=token,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )
