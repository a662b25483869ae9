"""The operator image runs against the local Kubernetes control plane, when one is running.

Starting a control plane is the e2e tier's job; this test only uses one that is already healthy
(``make cluster-up``) and is skipped with the reason otherwise. The operator runs hardened, as
uid 10001 on a read-only root, with a kubeconfig mounted read-only, watching one fresh
namespace, and must become live, serve metrics and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config

from tests.images.podman import REPO, http_status, podman, running, wait_healthy
from tests.servers import free_port

STATUS = REPO / "hack" / "cluster" / "status.sh"


@pytest.fixture
def kubeconfig() -> Iterator[Path]:
    """A copy of the running plane's admin kubeconfig that uid 10001 can read."""
    if not STATUS.exists():
        pytest.skip("hack/cluster/status.sh is missing")
    status = subprocess.run([str(STATUS)], capture_output=True, text=True, check=False)
    match = re.search(r"KUBECONFIG=(\S+)", status.stdout)
    if status.returncode != 0 or match is None:
        pytest.skip(f"no healthy local control plane (make cluster-up): {status.stdout.strip()}")
    root = Path(tempfile.mkdtemp(prefix="pq-images-kube-"))
    try:
        copy = root / "kubeconfig"
        shutil.copyfile(match.group(1), copy)
        copy.chmod(0o600)
        shutil.chown(copy, 10001, 10001)
        yield copy
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def watched_namespace(kubeconfig: Path) -> Iterator[str]:
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    name = f"pq-images-{uuid.uuid4().hex[:8]}"
    api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        api.delete_namespace(name)
        api.api_client.close()


def test_operator_image_becomes_live_on_the_control_plane_and_stops_on_sigterm(
    images: dict[str, str],
    kubeconfig: Path,
    watched_namespace: str,
    image_report: dict[str, str],
) -> None:
    health_port, metrics_port = free_port(), free_port()
    env = {
        "PARTYQUIZ_OPERATOR_HEALTH_PORT": str(health_port),
        "PARTYQUIZ_OPERATOR_METRICS_PORT": str(metrics_port),
    }
    with running(
        images["operator"],
        "run", "--kubeconfig", "/etc/partyquiz/kubeconfig", "--namespace", watched_namespace,
        env=env,
        volumes={str(kubeconfig): "/etc/partyquiz/kubeconfig"},
        prefix="pq-operator",
    ) as operator:  # fmt: skip
        seconds = wait_healthy(operator, f"http://127.0.0.1:{health_port}/healthz", timeout=60)
        image_report["start-to-live operator"] = f"{seconds:.2f} s wall (kopf liveness)"
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert "partyquiz_operator_" in metrics.text
        stopped_at = time.monotonic()
        podman("stop", "--time", "30", operator.name, timeout=60)
        stop_seconds = time.monotonic() - stopped_at
        state = podman("inspect", "--format", "{{.State.ExitCode}}", operator.name)
        logs = operator.logs()
    image_report["operator SIGTERM-to-exit"] = f"{stop_seconds:.1f} s"
    # Exit code 0: kopf stopped by itself on SIGTERM (a kill after the timeout would be 137).
    assert state.stdout.strip() == "0", logs[-3000:]
    assert "Signal SIGTERM is received" in logs
    assert http_status(f"http://127.0.0.1:{health_port}/healthz") is None
