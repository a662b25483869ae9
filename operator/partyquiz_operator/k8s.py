"""The operator's only door to the Kubernetes API: credentials, requests, typed failures.

Owns loading credentials (a kubeconfig or the in-cluster account, through the Kubernetes
client's config loader, the only use of that client), one aiohttp session on the operator's
event loop, server-side apply under the ``partyquiz-operator`` field manager, and the mapping of
every failed request to this tree, once (nothing else looks at status codes or message text;
a create that finds its name held returns None):

    ApiError                   a request failed; carries verb, resource, HTTP status, reason
    ├── Unavailable            no answer, a timeout, 429 or 5xx: the same request may work later
    ├── Conflict               409: a write raced another one; the next pass decides again
    ├── NamespaceTerminating   the namespace is being deleted with everything in it
    └── Rejected               any other 4xx: the request itself is refused as written

It makes no decisions.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from partyquiz_operator import api
from partyquiz_operator.metrics import OperatorMetrics
from partyquiz_operator.render.common import FIELD_MANAGER


class ApiError(Exception):
    """A Kubernetes API request failed with ``status`` (0 when no answer came)."""

    def __init__(self, verb: str, resource: str, status: int, reason: str, message: str) -> None:
        super().__init__(f"{verb} {resource}: HTTP {status} {reason}: {message}".rstrip(": "))
        self.verb, self.resource, self.status, self.reason = verb, resource, status, reason


class Unavailable(ApiError):
    """No answer, a timeout, throttling (429) or a server error (5xx)."""


class Conflict(ApiError):
    """A write raced another one (409)."""


class NamespaceTerminating(ApiError):
    """The namespace is being deleted: nothing in it can be created any more."""


class Rejected(ApiError):
    """The request is refused as written (400, 403, 422 and the like)."""


def _classify(status: int, payload: Mapping[str, Any]) -> type[ApiError]:
    causes = (payload.get("details") or {}).get("causes") or []
    if any(cause.get("reason") == "NamespaceTerminating" for cause in causes):
        return NamespaceTerminating
    if status == 409:
        return Conflict
    if status == 429 or status >= 500:
        return Unavailable
    return Rejected


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


@dataclass(frozen=True)
class Credentials:
    """How to reach and authenticate to the API server."""

    server: str
    ca_path: str | None
    cert_path: str | None
    key_path: str | None
    insecure: bool
    token: Callable[[], str | None]  # re-read on each call: projected tokens rotate


def load_credentials(kubeconfig: str | None) -> Credentials:
    """Return credentials from ``kubeconfig``, or the in-cluster account, or $KUBECONFIG."""
    cfg = k8s_client.Configuration()
    if kubeconfig is None:
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call]

    def token() -> str | None:
        auth = cfg.get_api_key_with_prefix("authorization", alias="BearerToken")
        if not auth:
            return None
        return str(auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else auth)

    return Credentials(
        server=str(cfg.host).rstrip("/"),
        ca_path=cfg.ssl_ca_cert,
        cert_path=cfg.cert_file,
        key_path=cfg.key_file,
        insecure=not cfg.verify_ssl,
        token=token,
    )


def _ssl_context(credentials: Credentials) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=credentials.ca_path)
    if credentials.cert_path and credentials.key_path:
        context.load_cert_chain(credentials.cert_path, credentials.key_path)
    if credentials.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _path(kind: Kind, namespace: str | None, name: str | None = None, sub: str = "") -> str:
    path = kind.prefix
    if namespace is not None:
        path += f"/namespaces/{quote(namespace)}"
    path += f"/{kind.plural}"
    if name is not None:
        path += f"/{quote(name)}"
    return path + (f"/{sub}" if sub else "")


CONNECTIONS = 64  # to the API server at once; more requests wait for one of them


class Api:
    """Asynchronous, typed-enough access to the objects the operator manages."""

    def __init__(
        self,
        credentials: Credentials,
        metrics: OperatorMetrics,
        *,
        timeout: float,
        connections: int = CONNECTIONS,
    ):
        self._credentials = credentials
        self._connections = connections
        self._metrics = metrics
        # The timeout is the request's own: connecting, then waiting for the server's answer
        # (each read). Not a total: that would count the wait for a pooled connection, so a
        # burst of passes would time out requests that never reached the API server.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Open the session (on the running event loop)."""
        connector = aiohttp.TCPConnector(
            ssl=_ssl_context(self._credentials), limit=self._connections
        )
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self,
        verb: str,
        method: str,
        kind: Kind,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        missing_ok: bool = False,
        exists_ok: bool = False,
    ) -> dict[str, Any] | None:
        if self._session is None:
            raise RuntimeError("the API session is not open")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        token = self._credentials.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body)
        try:
            async with self._session.request(
                method,
                self._credentials.server + path,
                params=dict(query or {}),
                data=data,
                headers=headers,
            ) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._metrics.kube_api_requests.labels(verb, kind.plural, "error").inc()
            raise Unavailable(verb, kind.plural, 0, type(exc).__name__, str(exc)) from exc
        self._metrics.kube_api_requests.labels(verb, kind.plural, str(status)).inc()
        if status == 404 and missing_ok:
            return None
        try:
            payload: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"message": raw[:300].decode(errors="replace")}
        if status == 409 and exists_ok and payload.get("reason") == "AlreadyExists":
            return None
        if status >= 400:
            error = _classify(status, payload)
            raise error(
                verb, kind.plural, status, payload.get("reason", ""), payload.get("message", "")
            )
        return payload

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Return the object or None when it does not exist."""
        k = KINDS[kind]
        return await self._request("get", "GET", k, _path(k, namespace, name), missing_ok=True)

    async def list(
        self, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Return the objects of ``kind`` matching ``label_selector`` (every namespace: None)."""
        k = KINDS[kind]
        query = {"labelSelector": label_selector} if label_selector else None
        found = await self._request("list", "GET", k, _path(k, namespace), query=query)
        items = list((found or {}).get("items", []))
        for item in items:
            item.setdefault("kind", k.kind)
            item.setdefault("apiVersion", k.api_version)
        return items

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply ``manifest`` under the operator's field manager, taking conflicts."""
        k = KINDS[manifest["kind"]]
        meta = manifest["metadata"]
        applied = await self._request(
            "apply",
            "PATCH",
            k,
            _path(k, meta["namespace"], meta["name"]),
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=manifest,
            content_type="application/apply-patch+yaml",
        )
        return applied or {}

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create ``manifest`` under the operator's field manager; None when its name is taken.

        An object that already holds the name is left as it is.
        """
        k = KINDS[manifest["kind"]]
        meta = manifest["metadata"]
        return await self._request(
            "create",
            "POST",
            k,
            _path(k, meta["namespace"]),
            query={"fieldManager": FIELD_MANAGER},
            body=manifest,
            exists_ok=True,
        )

    async def merge_patch(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any], *, sub: str = ""
    ) -> dict[str, Any] | None:
        """JSON-merge-patch an object (or its ``sub``resource); None when it is gone."""
        k = KINDS[kind]
        return await self._request(
            "patch",
            "PATCH",
            k,
            _path(k, namespace, name, sub),
            query={"fieldManager": FIELD_MANAGER},
            body=patch,
            content_type="application/merge-patch+json",
            missing_ok=True,
        )

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete an object (dependents in the background); False when it was already gone."""
        k = KINDS[kind]
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        path = _path(k, namespace, name)
        result = await self._request("delete", "DELETE", k, path, body=options, missing_ok=True)
        return result is not None

    async def served_kinds(self, api_version: str) -> set[str]:
        """Return the kinds the API server serves in ``api_version`` (none when it is absent)."""
        discovery = Kind(api_version, "APIResourceList", "discovery")
        found = await self._request("get", "GET", discovery, discovery.prefix, missing_ok=True)
        resources = (found or {}).get("resources", [])
        return {str(r["kind"]) for r in resources if "/" not in str(r.get("name", ""))}

    async def create_event(
        self, involved: Mapping[str, Any], *, type_: str, reason: str, message: str, now: datetime
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
        await self._request("create", "POST", k, _path(k, meta["namespace"]), body=event)
