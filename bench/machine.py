"""What the benchmarks ran on: cores, CPU model, memory, load, and the versions compared.

Reads /proc and package metadata once per run; the report prints it above the numbers,
because figures from a 2-core machine mean little without it. Never changes anything.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _node_version(node: str) -> str:
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def _npm_version(node_modules: Path, package: str) -> str:
    try:
        return str(json.loads((node_modules / package / "package.json").read_text())["version"])
    except (OSError, KeyError, ValueError):
        return "not installed"


def _py_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _revision() -> str:
    root = Path(__file__).resolve().parent.parent
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--", "services", "operator"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not head:
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def _command_version(argv: list[str], pick: int = 0) -> str:
    """The first line of a tool's version output (word ``pick`` of it when given)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    line = (done.stdout or done.stderr).strip().splitlines()
    if not line:
        return "unknown"
    return line[0].split()[pick] if pick and len(line[0].split()) > pick else line[0]


def _venv_version(peers_dir: Path, dist: str) -> str:
    found = sorted(
        (peers_dir / "pysocketio" / "lib").glob(f"python*/site-packages/{dist}-*.dist-info")
    )
    return (
        found[0].name.removeprefix(f"{dist}-").removesuffix(".dist-info")
        if found
        else "not installed"
    )


def describe(node: str, peers_dir: Path) -> dict[str, str]:
    """Return the machine and the versions as display strings."""
    load = os.getloadavg()
    node_modules = peers_dir / "node_modules"
    redis_server = _command_version(["redis-server", "--version"], 2).removeprefix("v=")
    return {
        "cores": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "ram": f"{_mem_gib():.1f} GiB",
        "kernel": platform.release(),
        "load": f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        "revision": _revision(),
        "python": platform.python_version(),
        "websockets": _py_version("websockets"),
        "uvloop": _py_version("uvloop"),
        "orjson": _py_version("orjson"),
        "node": _node_version(node),
        "socket.io": _npm_version(node_modules, "socket.io"),
        "engine.io": _npm_version(node_modules, "engine.io"),
        "ws": _npm_version(node_modules, "ws"),
        "@socket.io/redis-adapter": _npm_version(node_modules, "@socket.io/redis-adapter"),
        "redis": _py_version("redis"),
        "hiredis": _py_version("hiredis"),
        "redis-server": redis_server,
        "python-socketio": _venv_version(peers_dir, "python_socketio"),
        "uvicorn": _venv_version(peers_dir, "uvicorn"),
        "centrifugo": _command_version([str(peers_dir / "centrifugo"), "version"], 1),
        "gcc": _command_version(["gcc", "--version"]),
    }
