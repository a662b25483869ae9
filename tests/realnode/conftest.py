"""Fixtures of the real-node tier: a real kubelet running the project's own images.

Before the first test (outside per-test timeouts) the tier builds what it needs, each a no-op
when cached: the cluster binaries with the node (hack/cluster/build.sh --node) and the images
(hack/images/build.sh, which also exports them to the OCI archives the node imports from;
PARTYQUIZ_IMAGES_PREBUILT=1 uses them as they are).

Fixture API (the shape of the e2e tier's):

    node  (session)  -> tests.realnode.harness.RealNode   the node and its control plane,
        reused when healthy, otherwise started and stopped at the end of the session; its state
        dir and port base derive from PARTYQUIZ_CLUSTER_DIR / PARTYQUIZ_CLUSTER_PORT_BASE
        (harness.node_location), so it runs beside the e2e tier's kwok plane.
    cluster  (session) -> tests.e2e.kube.Cluster   node.cluster
    images  (session) -> dict[str, str]   image references by name (web, ws, operator, postgres,
        redis and the test-built web-upgrade, web-never-ready), imported into the node; the
        PostgreSQL and Redis test images under tags naming their versions (15, 7.0)
    namespace  (function) -> str   a fresh namespace labelled
        pod-security.kubernetes.io/enforce=restricted, deleted afterwards (and, if a session
        was interrupted before that, when the next session takes the node)
    host_before  (session) -> HostState   the host's routes, firewall and sysctls before any
        node of this session started

Everything under tests/realnode is marked `realnode`.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.kube import Cluster
from tests.realnode.harness import (
    CLUSTER_SCRIPTS,
    IMAGE_SCRIPTS,
    STATUS_NOT_RUNNING,
    RealNode,
    node_location,
    run_script,
    script_env,
    unique,
)
from tests.realnode.host import HostState, host_state
from tests.realnode.images import BUILT, STORE_VERSIONS, image_refs, store_ref

REALNODE_DIR = Path(__file__).resolve().parent
# On every namespace the tier makes.
TIER_LABEL = "partyquiz.dev/realnode"
_HOST_BEFORE = pytest.StashKey[HostState]()
_REPORT = pytest.StashKey[dict[str, str]]()


def _selected(session: pytest.Session) -> bool:
    return any(REALNODE_DIR in item.path.resolve().parents for item in session.items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the node's binaries and the images before any test runs."""
    if session.config.option.collectonly or not _selected(session) or _unusable_reason():
        return
    # Before anything of this session could have touched the host.
    session.config.stash[_HOST_BEFORE] = host_state()
    steps = [[str(CLUSTER_SCRIPTS / "build.sh"), "--node"], [str(IMAGE_SCRIPTS / "bootstrap.sh")]]
    if os.environ.get("PARTYQUIZ_IMAGES_PREBUILT") != "1":
        # In dependency order: the test web images are built on the web image.
        steps.append([str(IMAGE_SCRIPTS / "build.sh"), *BUILT.values()])
    else:
        steps.append([str(IMAGE_SCRIPTS / "archive.sh"), *image_refs().values()])
    capture = session.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        for step in steps:
            if subprocess.run(step, check=False).returncode != 0:
                raise pytest.UsageError(f"{' '.join(step)} failed (output above)")


def _unusable_reason() -> str | None:
    """Why a real node cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "a real node needs root (network namespaces, mounts, cgroups)"
    return None


@pytest.fixture(scope="session")
def host_before(request: pytest.FixtureRequest) -> HostState:
    return request.config.stash[_HOST_BEFORE]


@pytest.fixture(scope="session")
def report(request: pytest.FixtureRequest) -> dict[str, str]:
    """Measurements to print at the end of the run, keyed by what was measured."""
    return request.config.stash.setdefault(_REPORT, {})


def with_load(seconds: float) -> str:
    """A measured duration for the report, with the machine's 1-minute load average then."""
    return f"{seconds:.1f} s (load {os.getloadavg()[0]:.1f})"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    measured = config.stash.get(_REPORT, {})
    if measured:
        terminalreporter.section("PartyQuiz real node")
        width = max(len(key) for key in measured)
        for key, value in measured.items():
            terminalreporter.write_line(f"{key:<{width}}  {value}")


@pytest.fixture(scope="session")
def node(report: dict[str, str]) -> Iterator[RealNode]:
    """The real node: reused when healthy, otherwise started here and stopped at the end."""
    reason = _unusable_reason()
    if reason is not None:
        pytest.skip(reason)
    state_dir, port_base = node_location()
    env = script_env(state_dir, port_base)
    status = run_script(CLUSTER_SCRIPTS / "status.sh", env=env, timeout=60).returncode
    started_here = status != 0
    if status not in (0, STATUS_NOT_RUNNING):
        # Partly running: a crash or an interrupted session of this run; start it afresh.
        RealNode.attach(env).stop()
    started = time.monotonic()
    handle = RealNode.start(state_dir, port_base) if started_here else RealNode.attach(env)
    if started_here:
        report["node bring-up (up.sh)"] = with_load(time.monotonic() - started)
    # Namespaces an interrupted earlier session left: their pods would run on, loading the node.
    handle.cluster.kubectl(
        "delete", "namespace", "-l", f"{TIER_LABEL}=true", "--wait=false", check=False
    )
    try:
        yield handle
    finally:
        if started_here:
            started = time.monotonic()
            handle.stop()
            report["node teardown (down.sh)"] = with_load(time.monotonic() - started)


@pytest.fixture(scope="session")
def cluster(node: RealNode) -> Cluster:
    return node.cluster


@pytest.fixture(scope="session")
def images(node: RealNode, report: dict[str, str]) -> dict[str, str]:
    """The images the tier runs, by name, imported into the node from their archives."""
    refs = image_refs()
    started = time.monotonic()
    node.load_images(*refs.values())
    report["image import (skipped when present)"] = with_load(time.monotonic() - started)
    for part in STORE_VERSIONS:
        versioned = store_ref(refs[part], part)
        node.tag_image(refs[part], versioned)
        refs[part] = versioned
    return refs


def make_namespace(cluster: Cluster, prefix: str = "pq-rn") -> str:
    name = unique(prefix)
    cluster.create_namespace(name, {TIER_LABEL: "true"}, restricted=True)
    return name


def delete_namespace(cluster: Cluster, name: str) -> None:
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace enforcing Pod Security "restricted", deleted after the test."""
    name = make_namespace(cluster)
    try:
        yield name
    finally:
        delete_namespace(cluster, name)
