"""Runs the whole test suite as independent groups at the same time (what `make test` runs).

Most of the suite waits (a control plane, a real kubelet, Chromium, podman, servers starting),
so the tiers run as three pytest processes side by side:

    services   tests/unit tests/integration      needs Debian's packages only
    cluster    tests/e2e tests/images            the kwok control plane, the images
    realnode   tests/realnode tests/browser      the real node, the images; then Chromium

The groups are balanced by measured durations (docs/development.md, "How long `make test`
takes"). tests/images stays with tests/e2e: its operator-image test runs against the control
plane the e2e tier holds for the whole session. The browser tier runs last in its process
(tests/conftest.py orders the tiers). The cluster and realnode groups never meet: the e2e tier
uses PARTYQUIZ_CLUSTER_DIR and PARTYQUIZ_CLUSTER_PORT_BASE as they are, the real-node tier a
state dir and port base derived from them (tests/realnode/harness.py), so two runs with
different settings do not collide either.

The one-off builds happen once, here, before the groups that need them start: the control-plane
and node binaries (hack/cluster/build.sh, a no-op when cached) and the images
(hack/images/build.sh, layer-cached); the groups then run with PARTYQUIZ_IMAGES_PREBUILT=1. The
services group needs none of them and starts at once, so on a fresh machine it runs while the
binaries build.

Every line a group prints is shown with the group's name in front and kept in a log of the
group's own (the folder is printed at the start and the end). At the end come the failure
sections of each failed group, a table of every group's counts and time, and one closing line
with the totals. The exit status is non-zero when a build or any group fails, and when a group
ran no test at all.

    hack/test_all.py [--group NAME]... [PYTEST ARGS...]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

REPO = Path(__file__).resolve().parents[1]
# Every image the images and real-node tiers use, in dependency order (the test web images are
# built on the web image).
IMAGES = (
    "web",
    "ws",
    "operator",
    "test-postgres",
    "test-redis",
    "test-caddy",
    "test-web-upgrade",
    "test-web-never-ready",
)


@dataclass(frozen=True)
class Step:
    """A one-off build some groups need; each is a no-op when its result is cached."""

    name: str
    argv: tuple[str, ...]


# Builds run niced so that a fresh machine's long Go builds slow the tests running beside them
# as little as possible. They run in this order, one after another; the images in parallel.
BUILD_CHAINS: tuple[tuple[Step, ...], ...] = (
    (
        Step("control-plane", ("nice", "-n", "10", "hack/cluster/build.sh")),
        Step("node", ("nice", "-n", "10", "hack/cluster/build.sh", "--node")),
    ),
    (Step("images", ("nice", "-n", "10", "hack/images/build.sh", *IMAGES)),),
)


@dataclass(frozen=True)
class Group:
    name: str
    paths: tuple[str, ...]
    needs: tuple[str, ...]


GROUPS = (
    Group("services", ("tests/unit", "tests/integration"), ()),
    Group("cluster", ("tests/e2e", "tests/images"), ("control-plane", "images")),
    Group("realnode", ("tests/realnode", "tests/browser"), ("node", "images")),
)

_FAILURE_SECTION = re.compile(r"^=+ (FAILURES|ERRORS) =+$")


@dataclass
class Counts:
    tests: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    @property
    def passed(self) -> int:
        return self.tests - self.failed - self.errors - self.skipped


@dataclass
class Outcome:
    group: Group
    log: Path
    junit: Path
    status: str = "not run"
    exit_code: int | None = None
    seconds: float = 0.0
    counts: Counts = field(default_factory=Counts)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.counts.tests > 0


class Printer:
    """Writes whole lines from several threads without interleaving them."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()


def _stream(proc: subprocess.Popen[str], prefix: str, log: Path, printer: Printer) -> None:
    assert proc.stdout is not None
    with log.open("w") as keep:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            keep.write(line + "\n")
            keep.flush()
            printer.line(f"{prefix} {line}")


class Runner:
    def __init__(self, groups: tuple[Group, ...], pytest_args: list[str], logs: Path) -> None:
        self.groups = groups
        self.pytest_args = pytest_args
        self.logs = logs
        self.printer = Printer(sys.stdout)
        self.steps: dict[str, threading.Event] = {}
        self.step_failed: dict[str, str] = {}
        self.procs: list[subprocess.Popen[str]] = []
        self.procs_lock = threading.Lock()
        self.stopping = threading.Event()
        self.outcomes = [
            Outcome(g, logs / f"{g.name}.log", logs / f"{g.name}.junit.xml") for g in groups
        ]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PARTYQUIZ_IMAGES_PREBUILT"] = "1"
        # Failed browser tests save screenshots and page records here, beside the group logs.
        env["PARTYQUIZ_TEST_LOGS"] = str(self.logs)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _popen(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[str] | None:
        with self.procs_lock:
            if self.stopping.is_set():
                return None
            proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                # Ctrl-C reaches the children through this runner, once, in order.
                start_new_session=True,
            )
            self.procs.append(proc)
            return proc

    def build(self, chain: tuple[Step, ...]) -> None:
        for i, step in enumerate(chain):
            started = time.monotonic()
            proc = self._popen(list(step.argv), dict(os.environ))
            code = (
                -1
                if proc is None
                else self._wait_streaming(proc, f"[build:{step.name}]", step.name)
            )
            took = _minutes(time.monotonic() - started)
            if code != 0:
                log = self.logs / f"build-{step.name}.log"
                for later in chain[i:]:
                    self.step_failed[later.name] = f"{' '.join(step.argv)} failed; log: {log}"
                    self.steps[later.name].set()
                self.printer.line(f"[build:{step.name}] FAILED after {took} (log: {log})")
                return
            self.printer.line(f"[build:{step.name}] done in {took}")
            self.steps[step.name].set()

    def _wait_streaming(self, proc: subprocess.Popen[str], prefix: str, name: str) -> int:
        _stream(proc, prefix, self.logs / f"build-{name}.log", self.printer)
        return proc.wait()

    def run_group(self, outcome: Outcome) -> None:
        group = outcome.group
        for need in group.needs:
            self.steps[need].wait()
            if need in self.step_failed:
                outcome.status = f"not started: {self.step_failed[need]}"
                return
        argv = [
            sys.executable,
            "-m",
            "pytest",
            *group.paths,
            f"--junitxml={outcome.junit}",
            "--durations=10",
            *self.pytest_args,
        ]
        started = time.monotonic()
        proc = self._popen(argv, self.env())
        if proc is None:
            outcome.status = "not started: interrupted"
            return
        self.printer.line(f"[{group.name}] started: {' '.join(argv[1:])}")
        _stream(proc, f"[{group.name}]", outcome.log, self.printer)
        outcome.exit_code = proc.wait()
        outcome.seconds = time.monotonic() - started
        outcome.counts = _junit_counts(outcome.junit)
        if outcome.ok:
            outcome.status = "passed"
        elif outcome.exit_code == 0 or outcome.exit_code == 5 or outcome.counts.tests == 0:
            outcome.status = f"FAILED: no test ran (pytest exit {outcome.exit_code})"
        else:
            outcome.status = f"FAILED (pytest exit {outcome.exit_code})"
        self.printer.line(f"[{group.name}] finished in {_minutes(outcome.seconds)}")

    def interrupt(self, signum: int, frame: FrameType | None) -> None:
        """Pass an interrupt on to every child once, so each tears down what it started."""
        del frame
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.printer.line(f"interrupted ({signal.Signals(signum).name}); stopping every group")
        with self.procs_lock:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)

    def run(self) -> int:
        needed = {need for g in self.groups for need in g.needs}
        chains = [tuple(s for s in chain if _wanted(s, chain, needed)) for chain in BUILD_CHAINS]
        chains = [chain for chain in chains if chain]
        if os.environ.get("PARTYQUIZ_IMAGES_PREBUILT") == "1":
            chains = [tuple(s for s in c if s.name != "images") for c in chains]
            chains = [c for c in chains if c]
        for step in (s for chain in BUILD_CHAINS for s in chain):
            self.steps[step.name] = threading.Event()
            if not any(step in chain for chain in chains):
                self.steps[step.name].set()
        started = time.monotonic()
        threads = [threading.Thread(target=self.build, args=(c,)) for c in chains]
        threads += [threading.Thread(target=self.run_group, args=(o,)) for o in self.outcomes]
        for thread in threads:
            thread.start()
        for thread in threads:
            # join() with a timeout keeps the main thread able to take signals.
            while thread.is_alive():
                thread.join(timeout=1)
        return self.report(time.monotonic() - started)

    def report(self, seconds: float) -> int:
        out = self.printer
        for outcome in self.outcomes:
            if outcome.ok or not outcome.log.exists():
                continue
            out.line("")
            out.line(f"{'=' * 30} group {outcome.group.name}: {outcome.status} {'=' * 30}")
            for line in _failure_part(outcome.log):
                out.line(line)
        out.line("")
        build_failures = sorted(set(self.step_failed.values()))
        for failure in build_failures:
            out.line(f"build failed: {failure}")
        columns = " ".join(f"{c:>7}" for c in ("passed", "failed", "errors", "skipped"))
        out.line(f"{'group':<10} {columns} {'time':>8}  result")
        total = Counts()
        for o in self.outcomes:
            c = o.counts
            total.tests += c.tests
            total.failed += c.failed
            total.errors += c.errors
            total.skipped += c.skipped
            out.line(
                f"{o.group.name:<10} {c.passed:>7} {c.failed:>7} {c.errors:>7} {c.skipped:>7}"
                f" {_minutes(o.seconds):>8}  {o.status}"
            )
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        out.line(f"wall clock {_minutes(seconds)}, load average now {load}; logs in {self.logs}")
        ok = all(o.ok for o in self.outcomes) and not build_failures
        # A group that failed without a failing test (no test ran, a build or pytest itself
        # failed) counts as one failure, so the closing line never hides it.
        failed = total.failed + total.errors
        failed += sum(
            1 for o in self.outcomes if not o.ok and o.counts.failed + o.counts.errors == 0
        )
        out.line(f"total: {total.passed} passed, {failed} failed, {total.skipped} skipped")
        return 0 if ok else 1


def _wanted(step: Step, chain: tuple[Step, ...], needed: set[str]) -> bool:
    """A step is run when a selected group needs it or a later step of its chain."""
    later = chain[chain.index(step) :]
    return any(s.name in needed for s in later)


def _junit_counts(path: Path) -> Counts:
    counts = Counts()
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - our own pytest's report
    except (OSError, ET.ParseError):
        return counts
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        counts.tests += int(suite.get("tests", "0"))
        counts.failed += int(suite.get("failures", "0"))
        counts.errors += int(suite.get("errors", "0"))
        counts.skipped += int(suite.get("skipped", "0"))
    return counts


def _failure_part(log: Path) -> list[str]:
    """From a failed group's log: its failure sections and summary, else its last lines."""
    lines = log.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if _FAILURE_SECTION.match(line):
            return lines[i:]
    return lines[-60:]


def _minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}m {whole % 60:02d}s"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Run the test suite's groups side by side.",
        epilog="Arguments the runner does not know are passed to every pytest.",
    )
    names = [g.name for g in GROUPS]
    parser.add_argument(
        "--group", action="append", choices=names, help="run only this group (repeatable)"
    )
    args, pytest_args = parser.parse_known_args(argv)
    groups = tuple(g for g in GROUPS if not args.group or g.name in args.group)
    logs = Path(tempfile.mkdtemp(prefix="partyquiz-test-"))
    print(f"groups: {', '.join(g.name for g in groups)}; logs in {logs}", flush=True)
    runner = Runner(groups, pytest_args, logs)
    signal.signal(signal.SIGINT, runner.interrupt)
    signal.signal(signal.SIGTERM, runner.interrupt)
    return runner.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
