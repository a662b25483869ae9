"""What a real node must leave untouched on the host, captured so tests can compare.

Owns the snapshot of host-wide state a node could change by mistake: routes, the firewall
(nftables, which iptables-nft also writes), the sysctls kubelet, kube-proxy, the CNI plugins and
kube-router would set if they ran in the host's namespaces, and the network namespaces and
cgroups of other runs. It reads only; it never changes anything.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# kubelet's kernel tunables, then what networking components write in their own namespace.
SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
)


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def sysctls() -> dict[str, str]:
    values = {}
    for name in SYSCTLS:
        path = Path("/proc/sys") / name
        values[name] = path.read_text().strip() if path.exists() else "<absent>"
    return values


@dataclass(frozen=True)
class HostState:
    routes: str
    firewall: str
    sysctls: dict[str, str]
    links: str


def host_state() -> HostState:
    """The host's routes, nftables ruleset, node-relevant sysctls and network interfaces."""
    return HostState(
        routes=_run("ip", "route", "show", "table", "all")
        + _run("ip", "-6", "route", "show", "table", "all"),
        firewall=_run("nft", "list", "ruleset"),
        sysctls=sysctls(),
        links=_run("ip", "-o", "link", "show"),
    )


def netns_names() -> set[str]:
    """Names of the host's named network namespaces (`ip netns list`)."""
    return {line.split()[0] for line in _run("ip", "netns", "list").splitlines() if line.strip()}


def cgroup_dirs(name: str) -> list[Path]:
    """Every cgroup called ``name`` at the top of a hierarchy."""
    return [p for p in Path("/sys/fs/cgroup").glob(f"*/{name}") if p.is_dir()]


def mount_lines(needle: str) -> list[str]:
    """Lines of the host's mount table that mention ``needle``."""
    return [
        line for line in Path("/proc/self/mountinfo").read_text().splitlines() if needle in line
    ]


def processes_mentioning(needle: str) -> list[str]:
    """Command lines of live processes that mention ``needle``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            found.append(f"{proc.name}: {cmdline.strip()}")
    return found


def processes_in_namespace(kind: str, link: str) -> list[str]:
    """PIDs of live processes whose /proc/<pid>/ns/<kind> is ``link`` (e.g. "net:[4026...]")."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "ns" / kind).readlink().name == link:
                found.append(proc.name)
        except OSError:
            continue
    return found
