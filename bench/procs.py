"""Processes of a benchmark run: start pinned to a core, wait until ready, stop for sure.

Owns the fd limit, ``taskset`` pinning, readiness waits (a ``ready`` line or an HTTP probe)
and stopping only the processes it started, by pid. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx


class BenchError(RuntimeError):
    """A benchmark step failed; the message says which and carries the log tail."""


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-file limit (inherited by children) to ``needed`` or the max."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Proc:
    """One started process; its output goes to ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def start(
    name: str,
    argv: Sequence[str],
    *,
    log_dir: Path,
    cpu: int | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    nice: int = 0,
) -> Proc:
    """Start ``argv`` (pinned to ``cpu`` with taskset when given); output goes to a log file."""
    log = log_dir / f"{name}.log"
    full = ["taskset", "-c", str(cpu), *argv] if cpu is not None else list(argv)
    if nice:
        full = ["nice", "-n", str(nice), *full]
    with log.open("wb") as out:
        popen = subprocess.Popen(
            full,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    return Proc(name, popen, log)


def wait_until(what: str, proc: Proc, check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check`` until true; fail early if ``proc`` exits, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not proc.alive():
            raise BenchError(
                f"{proc.name} exited ({proc.popen.returncode}) before {what}\n{proc.tail()}"
            )
        time.sleep(0.05)
    raise BenchError(f"{proc.name}: no {what} after {timeout:.0f}s\n{proc.tail()}")


def wait_for_line(proc: Proc, line: str, timeout: float = 30.0) -> None:
    """Wait until ``proc`` printed ``line``."""
    wait_until(f"'{line}' line", proc, lambda: f"{line}\n" in proc.tail(100_000), timeout)


def wait_for_http(proc: Proc, url: str, timeout: float = 60.0) -> None:
    """Wait until GET ``url`` answers 200."""

    def ok() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(f"200 from {url}", proc, ok, timeout)
