"""Network namespaces of a test's own, so containers never touch the host's network.

Owns creating and deleting a namespace (``ip netns``), giving it loopback plus optionally one
address of its own, and running commands inside it (``nsenter --net``, which, unlike ``ip netns
exec``, leaves /sys and the cgroup mounts podman needs alone). Names carry a random suffix, so
two runs at the same time never share one. Bridges, NAT rules and DNS servers that podman makes
for a namespace's containers live and die with it; the host's routes and firewall are untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

NETNS_DIR = Path("/run/netns")


class NetnsError(RuntimeError):
    """An ``ip netns`` command failed; the message carries its output."""


@dataclass(frozen=True)
class NetworkNamespace:
    name: str
    address: str | None  # an address on the namespace's loopback that is not 127.0.0.0/8

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def command(self, *args: str) -> list[str]:
        """``args`` as a command line that runs inside this namespace."""
        return ["nsenter", f"--net={self.path}", "--", *args]

    def run(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )


def netns_unusable_reason() -> str | None:
    """Why this process cannot make network namespaces, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "nsenter") if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (iproute2, util-linux)"
    return None


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@contextlib.contextmanager
def network_namespace(prefix: str, address: str | None = None) -> Iterator[NetworkNamespace]:
    """A new namespace with loopback up (and ``address``/32 on it); deleted on exit.

    A client that connects to ``address`` from inside the namespace comes from ``address``
    too, so a server there sees a client that is not on 127.0.0.1.
    """
    namespace = NetworkNamespace(name=f"{prefix}-{uuid.uuid4().hex[:8]}", address=address)
    _ip("netns", "add", namespace.name)
    try:
        _ip("-n", namespace.name, "link", "set", "lo", "up")
        if address is not None:
            _ip("-n", namespace.name, "addr", "add", f"{address}/32", "dev", "lo")
        yield namespace
    finally:
        _ip("netns", "delete", namespace.name)


def processes_in(namespace: NetworkNamespace) -> Sequence[int]:
    """PIDs of the processes still inside ``namespace`` (podman's helpers, containers)."""
    result = subprocess.run(
        ["ip", "netns", "pids", namespace.name], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in result.stdout.split()]
