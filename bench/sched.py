"""Run a command with a short scheduler slice: ``python bench/sched.py SLICE_US -- CMD ARGS...``.

Owns asking Linux (6.12 or later) for a custom slice for this process (``sched_setattr``'s
``sched_runtime`` on a fair-class task; no privilege needed) before it execs CMD, which keeps
it, as does every process CMD forks. A task that wakes with a shorter slice than the one
running on its core takes the core at once instead of waiting for the running task's slice to
end at a scheduler tick (4 ms apart at HZ=250). Changes nothing else (policy and nice value are
kept); where the kernel refuses, CMD runs with the default slice and a line on stderr says so.
Standard library only: it runs before the benchmark's environment matters.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

# sched_setattr's syscall number; Python's os module has no wrapper for it.
SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}
# struct sched_attr, first version: size, policy, flags, nice, priority, runtime, deadline, period.
SCHED_ATTR = struct.Struct("IIQiIQQQ")
FAIR_POLICIES = (os.SCHED_OTHER, os.SCHED_BATCH)


def set_slice(slice_ns: int) -> str | None:
    """Ask for a ``slice_ns`` slice for this process; the reason when it was refused."""
    number = SYS_SCHED_SETATTR.get(platform.machine())
    if number is None:
        return f"no sched_setattr number for {platform.machine()}"
    policy = os.sched_getscheduler(0)
    if policy not in FAIR_POLICIES:
        return f"policy {policy} has no custom slice"
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    attr = SCHED_ATTR.pack(SCHED_ATTR.size, policy, 0, nice, 0, slice_ns, 0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, 0, ctypes.create_string_buffer(attr, len(attr)), 0) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit("usage: sched.py SLICE_US -- CMD [ARGS...]")
    refused = set_slice(int(argv[0]) * 1000)
    if refused:
        print(f"sched.py: default scheduler slice kept ({refused})", file=sys.stderr)
    os.execvp(argv[2], argv[2:])  # noqa: S606 - the command line the harness built


if __name__ == "__main__":
    main(sys.argv[1:])
