"""Fixtures for end-to-end tests against the local Kubernetes control plane.

Owns the plane's lifecycle inside a pytest session: builds the pinned binaries once per session
(hack/cluster/build.sh, a no-op when cached), reuses a healthy running plane, repairs a partly
running one, or starts one (hack/cluster/up.sh) and stops at session end only a plane this
session started. Everything under
tests/e2e is marked `e2e` automatically.

Fixture API (stable; other e2e suites code against it):

    cluster  (session)  -> tests.e2e.kube.Cluster
        .kubeconfig: Path   admin kubeconfig        .bin_dir: Path   kubectl, helm, kwok ...
        .kubectl: Tool      a Path, and callable:   cluster.kubectl("get", "pods", "-n", ns)
        .helm: Tool         a Path, and callable:   cluster.helm("install", "x", chart, "-n", ns)
        .state_dir, .server, .version ("v1.36.3"), .node_name, .ca_cert
        .service_account_kubeconfig(ns, name, path)   act as a ServiceAccount (RBAC applies)
        .get_json(*args) / .apply(obj_or_list, namespace) / .wait(res, cond, ns, timeout)
        .api_client()       kubernetes.client.ApiClient for the admin kubeconfig
    namespace  (function) -> str   a fresh randomly named namespace, deleted afterwards; its
        `default` ServiceAccount exists before the test starts. Parametrize indirectly with
        "restricted" to label it pod-security.kubernetes.io/enforce=restricted, or use
    restricted_namespace  (function) -> str   the same, already labelled restricted.

Waiting: `tests.e2e.kube.wait_for(predicate, timeout=..., message=...)` or `cluster.wait(...)`
(`kubectl wait`); never sleep. Pod behaviour on the fake node: set label
`kwok.partyquiz.dev/behaviour` to `fail`, `never-ready` or `crash-loop` (see docs/development.md).
Environment: PARTYQUIZ_CLUSTER_DIR / PARTYQUIZ_CLUSTER_PORT_BASE select another plane.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .kube import Cluster

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPTS = REPO / "hack" / "cluster"
E2E_DIR = Path(__file__).resolve().parent

RESTRICTED = "restricted"
STATUS_NOT_RUNNING = 3  # hack/cluster/status.sh: no component of the plane runs


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in item.path.resolve().parents and not item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the control-plane binaries before any test runs, outside per-test timeouts."""
    if session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("e2e") for item in session.items):
        return
    capture = session.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        result = subprocess.run([CLUSTER_SCRIPTS / "build.sh"], check=False)
    if result.returncode != 0:
        raise pytest.UsageError(
            "hack/cluster/build.sh failed, so the control-plane binaries are missing (output above)"
        )


def _script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLUSTER_SCRIPTS / name, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The running control plane: reused when healthy, otherwise started and later stopped."""
    env = _script("status.sh", "--env", timeout=30)
    if env.returncode != 0:
        pytest.fail(f"hack/cluster/status.sh --env failed:\n{env.stderr}")
    handle = Cluster.from_env_lines(env.stdout)

    status = _script("status.sh", timeout=60).returncode
    # Own (and later stop) the plane only if nothing of it was running; a partly running plane
    # belongs to someone else and is only repaired.
    started_here = status == STATUS_NOT_RUNNING
    if status != 0:
        up = _script("up.sh", timeout=240)
        if up.returncode != 0:
            if started_here:
                _script("down.sh", timeout=120)
            pytest.fail(
                f"hack/cluster/up.sh failed (exit {up.returncode}):\n{up.stderr}\n{up.stdout}"
            )
        # Another session may have started it while this one waited for up.sh's lock.
        started_here = started_here and "already running" not in up.stderr
    try:
        yield handle
    finally:
        if started_here:
            down = _script("down.sh", timeout=120)
            if down.returncode != 0:
                pytest.fail(f"hack/cluster/down.sh failed:\n{down.stderr}")


def _namespace(cluster: Cluster, *, restricted: bool) -> Iterator[str]:
    name = f"pq-e2e-{secrets.token_hex(4)}"
    cluster.create_namespace(name, {"partyquiz.dev/e2e": "true"}, restricted=restricted)
    try:
        yield name
    finally:
        cluster.kubectl(
            "delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False
        )


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test; `indirect` param "restricted" enforces restricted PSS."""
    param = getattr(request, "param", None)
    if param not in (None, RESTRICTED):
        raise ValueError(f"namespace fixture parameter must be {RESTRICTED!r}, got {param!r}")
    yield from _namespace(cluster, restricted=param == RESTRICTED)


@pytest.fixture
def restricted_namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace labelled pod-security.kubernetes.io/enforce=restricted."""
    yield from _namespace(cluster, restricted=True)
