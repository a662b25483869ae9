"""Settings of one operator process (``PARTYQUIZ_OPERATOR_*``), built once in ``cli``.

Owns the knobs of the process: scope, ports, intervals, timeouts. Nothing reads the environment
at import time; the entry point builds ``OperatorSettings`` and passes it down.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Process settings; every field can be set as ``PARTYQUIZ_OPERATOR_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="PARTYQUIZ_OPERATOR_", extra="ignore")

    namespaces: str = Field(
        default="",
        description="Comma-separated namespaces to watch; empty means the whole cluster "
        "(needs the chart's ClusterRole).",
    )
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="Port of /metrics; 0 off.")
    health_port: int = Field(
        default=8081, ge=0, le=65535, description="Port of kopf's /healthz liveness; 0 off."
    )
    resync_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between full reconciles of an idle instance (drift safety net; "
        "changes to owned children trigger a reconcile immediately).",
    )
    watch_server_timeout_seconds: int = Field(
        default=300,
        gt=0,
        description="Server-side timeout of each watch request; watches are re-opened after it, "
        "so a silently dropped connection never stalls the operator for long.",
    )
    watch_client_timeout_seconds: int = Field(
        default=330, gt=0, description="Client-side timeout of each watch request."
    )
    request_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of each non-watch API request."
    )
    cleanup_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Longest time deletion clean-up may keep retrying before the finalizer is "
        "released anyway, so a broken clean-up never wedges a deletion.",
    )
    kubeconfig: str | None = Field(
        default=None,
        description="Path of a kubeconfig; in-cluster credentials or $KUBECONFIG when unset.",
    )

    def namespace_list(self) -> list[str]:
        """Return the watched namespaces (empty: cluster-wide)."""
        return [ns.strip() for ns in self.namespaces.split(",") if ns.strip()]
