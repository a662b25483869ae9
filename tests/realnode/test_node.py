"""The real node itself: pods run for real under "restricted", Services and DNS work, two runs
share the machine without meeting, and stopping a node gives the host back exactly as it was.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from tests.e2e.kube import Cluster, CommandFailed, wait_for
from tests.realnode.harness import (
    REPO,
    SECOND_NODE_PORT_OFFSET,
    RealNode,
    node_location,
    pod_manifest,
    run_to_completion,
    unique,
)
from tests.realnode.host import (
    HostState,
    cgroup_dirs,
    host_state,
    mount_lines,
    netns_names,
    processes_in_namespace,
    processes_mentioning,
)

# A tiny HTTP server in the ws image's Python: the service under test for Services and DNS.
SERVE = ["python3", "-c", (
    "import http.server as h\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'hello from a pod')\n"
    "h.ThreadingHTTPServer(('', 8080), H).serve_forever()\n"
)]  # fmt: skip
FETCH = (
    "import socket, sys, time, urllib.request\n"
    "print(socket.gethostbyname('kubernetes.default.svc.cluster.local'))\n"
    "print(socket.gethostbyname(sys.argv[1]))\n"
    # kube-proxy programs a new Service's rules a moment after the pod is ready: a client
    # retries a refused connection, as any client of a fresh Service would.
    "deadline = time.monotonic() + 30\n"
    "while True:\n"
    "    try:\n"
    "        reply = urllib.request.urlopen('http://' + sys.argv[1] + ':8080/', timeout=10)\n"
    "        break\n"
    "    except OSError:\n"
    "        if time.monotonic() > deadline:\n"
    "            raise\n"
    "        time.sleep(0.2)\n"
    "print(reply.read().decode())\n"
)


def test_a_pod_reaches_another_through_its_service_by_dns_name(
    cluster: Cluster, namespace: str, images: dict[str, str]
) -> None:
    server = pod_manifest("echo", images["ws"], SERVE, labels={"app": "echo"}, restart="Always")
    cluster.apply(
        [
            server,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "echo"},
                "spec": {"selector": {"app": "echo"}, "ports": [{"port": 8080}]},
            },
        ],
        namespace,
    )
    cluster.wait("pod/echo", "condition=Ready", namespace, timeout=120)
    client = pod_manifest("client", images["ws"], ["python3", "-c", FETCH, "echo"])
    phase, log = run_to_completion(cluster, namespace, client, timeout=120)

    service_ip = cluster.get_json("service", "echo", "-n", namespace)["spec"]["clusterIP"]
    assert phase == "Succeeded", log
    assert log.splitlines() == ["10.96.0.1", service_ip, "hello from a pod"]


def test_a_restricted_namespace_refuses_a_privileged_pod(
    cluster: Cluster, namespace: str, images: dict[str, str]
) -> None:
    pod = pod_manifest("privileged", images["ws"], ["sleep", "60"])
    pod["spec"]["containers"][0]["securityContext"].update(
        privileged=True, allowPrivilegeEscalation=True
    )

    with pytest.raises(CommandFailed) as refused:
        cluster.apply(pod, namespace)

    assert 'violates PodSecurity "restricted:latest"' in str(refused.value)


def _pause_pod(node: RealNode, name: str) -> dict[str, object]:
    # The node's own pause image, named where the node's scripts name it (not read from the
    # node's status: the kubelet lists only its 50 largest images there, and only once synced).
    image = subprocess.run(
        ["bash", "-c", 'source hack/cluster/node/lib.sh >/dev/null && echo "$PAUSE_IMAGE"'],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return pod_manifest(name, image, ["/pause"], uid=65535, restart="Always")


def test_two_nodes_share_the_machine_and_stopping_one_gives_the_host_back(
    node: RealNode, namespace: str, host_before: HostState
) -> None:
    first = _pause_pod(node, "keeps-running")
    node.cluster.apply(first, namespace)
    node.cluster.wait("pod/keeps-running", "condition=Ready", namespace, timeout=120)
    state_dir, port_base = node_location(SECOND_NODE_PORT_OFFSET, "node2")
    before = host_state()

    second = RealNode.start(state_dir, port_base)
    try:
        assert second.netns != node.netns
        assert second.cgroup_root != node.cgroup_root
        assert {node.netns, second.netns} <= netns_names()
        other = unique("pq-rn")
        second.cluster.kubectl("create", "namespace", other)
        second.cluster.apply(_pause_pod(second, "on-second-node"), other)
        second.cluster.wait("pod/on-second-node", "condition=Ready", other, timeout=120)
        assert cgroup_dirs(second.cgroup_root.strip("/"))
        netns_link = f"net:[{os.stat(f'/run/netns/{second.netns}').st_ino}]"
        # What `make cluster-down` runs: it stops everything and keeps only the state dir.
        second.stop()
        stopped = {
            "netns": second.netns in netns_names(),
            "cgroups": cgroup_dirs(second.cgroup_root.strip("/")),
            "processes": processes_mentioning(str(state_dir)),
            "in its network namespace": processes_in_namespace("net", netns_link),
            "mounts": mount_lines(str(state_dir)) + mount_lines(second.netns),
            "state kept": state_dir.is_dir(),
        }
    finally:
        second.stop(purge=True)

    assert stopped == {
        "netns": False, "cgroups": [], "processes": [], "in its network namespace": [],
        "mounts": [], "state kept": True,
    }  # fmt: skip
    assert second.netns not in netns_names()
    assert cgroup_dirs(second.cgroup_root.strip("/")) == []
    assert processes_mentioning(str(state_dir)) == []
    assert processes_in_namespace("net", netns_link) == []
    assert mount_lines(str(state_dir)) == []
    assert mount_lines(second.netns) == []
    assert not state_dir.exists()
    after = host_state()
    assert after.routes == before.routes
    assert after.firewall == before.firewall
    assert after.links == before.links
    # kubelet's kernel tunables and the networking sysctls are as they were before any node of
    # this session started.
    assert after.sysctls == host_before.sysctls
    # The first node never noticed: its pod still runs, its namespace and cgroups are there.
    assert node.netns in netns_names()
    assert cgroup_dirs(node.cgroup_root.strip("/"))
    pod = node.cluster.get_json("pod", "keeps-running", "-n", namespace)
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    wait_for(node.healthy, timeout=30, message="the first node to stay healthy")
