"""The ``partyquiz-operator`` command: parse flags, build settings, wire the operator, run kopf.

Owns the process entry point and the only place settings are built from the environment.
It holds no reconcile logic.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import kopf
import yaml

from partyquiz_operator import handlers, k8s, reaping
from partyquiz_operator.metrics import OperatorMetrics
from partyquiz_operator.settings import OperatorSettings


def _version() -> str:
    try:
        return metadata.version("partyquiz")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``partyquiz-operator``."""
    parser = argparse.ArgumentParser(
        prog="partyquiz-operator",
        description="Kubernetes operator for PartyQuiz: reconciles PartyQuiz objects "
        "(partyquiz.dev/v1alpha1) into a running stack.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator (kopf) until interrupted")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=None,
        help="watch this namespace (repeatable); default: $PARTYQUIZ_OPERATOR_NAMESPACES",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch the whole cluster (needs the chart's ClusterRole)",
    )
    run.add_argument("--kubeconfig", help="kubeconfig path; default in-cluster or $KUBECONFIG")
    run.add_argument("--metrics-port", type=int, help="port of /metrics (0 disables)")
    run.add_argument("--health-port", type=int, help="port of /healthz (0 disables)")
    run.add_argument("--resync-seconds", type=float, help="idle resync interval")
    run.add_argument("--verbose", action="store_true", help="debug logging")
    sub.add_parser("crd", help="print the PartyQuiz CRD as YAML")
    reap = sub.add_parser(
        "release-finalizers",
        help="release the clean-up finalizer of PartyQuiz objects whose deletion waited too long "
        "(run by the chart's CronJob, for when the operator is down)",
    )
    reap_scope = reap.add_mutually_exclusive_group()
    reap_scope.add_argument("-n", "--namespace", action="append", default=None)
    reap_scope.add_argument("-A", "--all-namespaces", action="store_true")
    reap.add_argument("--kubeconfig", help="kubeconfig path; default in-cluster or $KUBECONFIG")
    reap.add_argument(
        "--older-than",
        type=float,
        required=True,
        metavar="SECONDS",
        help="only instances deleted at least this long ago",
    )
    return parser


def settings_from(args: argparse.Namespace) -> OperatorSettings:
    """Build the process settings: environment first, flags override."""
    overrides: dict[str, Any] = {}
    if args.namespace:
        overrides["namespaces"] = ",".join(args.namespace)
    if args.all_namespaces:
        overrides["namespaces"] = ""
    for field in ("kubeconfig", "metrics_port", "health_port", "resync_seconds"):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    return OperatorSettings(**overrides)


def run(settings: OperatorSettings) -> None:
    """Wire the operator from ``settings`` and run kopf until stopped."""
    metrics = OperatorMetrics()
    credentials = k8s.load_credentials(settings.kubeconfig)
    registry = kopf.OperatorRegistry()
    kopf_settings = kopf.OperatorSettings()
    handlers.configure(kopf_settings, settings)
    handlers.register(registry, settings, metrics, credentials)
    namespaces = settings.namespace_list()
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(
        registry=registry,
        settings=kopf_settings,
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``partyquiz-operator`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "crd":
        from partyquiz_operator.generate import crd  # the one runtime use of a generator

        sys.stdout.write(yaml.safe_dump(crd.build_crd(), sort_keys=False))
        return 0
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"partyquiz-operator: invalid settings: {exc}", file=sys.stderr)
        return 2
    if args.command == "release-finalizers":
        return release_finalizers(settings, older_than=args.older_than)
    run(settings)
    return 0


def release_finalizers(settings: OperatorSettings, *, older_than: float) -> int:
    """Release stale clean-up finalizers once and report what was released."""

    async def release() -> list[str]:
        session = k8s.Api(
            k8s.load_credentials(settings.kubeconfig),
            OperatorMetrics(),
            timeout=settings.request_timeout_seconds,
        )
        await session.open()
        try:
            return await reaping.release_stale_finalizers(
                session,
                settings.namespace_list(),
                now=datetime.now(UTC),
                older_than_seconds=older_than,
            )
        finally:
            await session.close()

    released = asyncio.run(release())
    print(f"released {len(released)}: {' '.join(released)}".rstrip(": "))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
